"""`aeviz serve` without starting a class: the proxy template, the URL students get, a missing HAProxy, what replicas
get in their environment, and what counts as a clean stop."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from aeviz import cli, serve

SERVERS = [("r1", "127.0.0.1:9001"), ("r2", "127.0.0.1:9002")]


def test_the_template_is_filled_in_with_one_server_line_per_replica():
    text = serve.render(serve.TEMPLATE.read_text(), "0.0.0.0:8501", SERVERS)
    code = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "bind 0.0.0.0:8501" in code
    assert [line for line in code if line.startswith("server ")] == [
        "server r1 127.0.0.1:9001 cookie r1 check", "server r2 127.0.0.1:9002 cookie r2 check"]
    for line in ("cookie SERVERID insert indirect nocache httponly attr SameSite=Lax", "option redispatch 1",
                 "timeout tunnel 2h", "option httpchk GET /_stcore/health", "balance leastconn"):
        assert line in code
    assert "@" not in "\n".join(code)  # every field filled in

    def comments(t):
        return [line for line in t.splitlines() if line.lstrip().startswith("#")]

    assert comments(text) == comments(serve.TEMPLATE.read_text()) and len(comments(text)) > 20  # as written


@pytest.mark.skipif(not serve.find("haproxy"), reason="haproxy is not installed")
def test_haproxy_accepts_the_filled_in_template(tmp_path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(serve.render(serve.TEMPLATE.read_text(), "127.0.0.1:8501", SERVERS))
    check = subprocess.run([serve.find("haproxy"), "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "[WARNING]" not in check.stderr + check.stdout


def test_without_haproxy_one_sentence_names_the_package(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(serve, "SBIN", ())
    assert serve.find("haproxy") is None
    assert cli.main(["serve", "--replicas", "2"]) == 2
    assert capsys.readouterr().err == ("aeviz serve: HAProxy is not installed: install it with `apt-get install "
                                       "haproxy` (Debian, Ubuntu) and run aeviz serve again.\n")


def test_students_get_the_network_address_not_localhost(monkeypatch):
    monkeypatch.setattr(serve, "network_address", lambda: "10.1.2.3")
    assert serve.student_url("0.0.0.0", 8501) == "http://10.1.2.3:8501/"
    assert serve.student_url("127.0.0.1", 9000) == "http://127.0.0.1:9000/"
    assert not serve.network_address().startswith("127.")  # an address students can reach, or the host name


def test_haproxy_alerts_become_one_line():
    text = ("[NOTICE]   (12) : haproxy version is 2.6.12\n"
            "[ALERT]    (12) : config : parsing [x.cfg:3] : unknown keyword 'bogus' in 'global' section\n")
    assert serve._first_alert(text) == "config : parsing [x.cfg:3] : unknown keyword 'bogus' in 'global' section"


def test_without_redis_server_the_replicas_share_sqlite_in_one_sentence(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("AEVIZ_STORE", raising=False)
    monkeypatch.setenv("AEVIZ_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(serve, "find", lambda name: "/usr/sbin/haproxy" if name == "haproxy" else None)
    run = serve.Class(serve.Options(replicas=3, logs=tmp_path / "logs"))
    run._start_redis()
    assert run.store == "" and run.redis is None
    out = capsys.readouterr().out
    assert out.startswith("redis-server is not installed (apt-get install redis-server), so the 3 replicas share the "
                          "SQLite room store in ") and out.count("\n") == 1


def test_a_given_store_or_a_single_replica_starts_no_redis(monkeypatch, tmp_path):
    monkeypatch.setattr(serve, "find", lambda name: "/bin/true")
    monkeypatch.setenv("AEVIZ_STORE", "redis://10.0.0.9:6379/0")
    run = serve.Class(serve.Options(replicas=2, logs=tmp_path))
    run._start_redis()
    assert run.store == "redis://10.0.0.9:6379/0" and run.redis is None
    monkeypatch.delenv("AEVIZ_STORE")
    run = serve.Class(serve.Options(replicas=1, logs=tmp_path))
    run._start_redis()
    assert run.store == "" and run.redis is None


def test_a_busy_port_is_refused_before_anything_starts(tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["serve", "--replicas", "1", "--address", "127.0.0.1", "--port", str(port),
                         "--logs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aeviz serve: Port {port} on 127.0.0.1 is not free (") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no replica, no proxy, no log


def test_replicas_share_the_cores_for_training_and_cap_malloc_arenas(monkeypatch):
    monkeypatch.delenv("AEVIZ_WORKERS", raising=False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert serve.replica_env(2, cores=2) == {"MALLOC_ARENA_MAX": "2", "AEVIZ_WORKERS": "1"}
    assert serve.replica_env(4, cores=2)["AEVIZ_WORKERS"] == "1" and serve.replica_env(1, cores=8)["AEVIZ_WORKERS"] == "8"
    monkeypatch.setenv("AEVIZ_WORKERS", "3")  # the teacher's own setting wins
    assert serve.replica_env(2, cores=2) == {"MALLOC_ARENA_MAX": "2"}


def test_a_child_that_does_not_exit_0_on_sigterm_has_not_stopped_cleanly(tmp_path):
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit({})); print('up', flush=True); time.sleep(60)"
    for status, clean in ((0, True), (3, False)):
        child = serve.Child("r1", [sys.executable, "-c", code.format(status)], tmp_path / f"{status}.log")
        child.start()
        while "up" not in child.log.read_text():
            time.sleep(0.05)
        assert child.stop() is clean and child.proc.returncode == status
    assert serve.Child("r2", ["true"], tmp_path / "never.log").stop() is True  # never started: nothing to stop
