"""`aeviz serve`: two replicas behind HAProxy with a local Redis. Two Chromium pages stay on their replicas
(cookie affinity); a replica killed with SIGKILL hands its page over to the other one; both replicas share the
room store; SIGTERM stops everything with exit code 0.

The teacher's push crossing replicas (teacher on one, student on another) needs the teacher UI: until it exists,
the store round trip below goes through two processes with the replicas' own AEVIZ_STORE.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aeviz.bench import browser as driver
from aeviz.bench.serving import ROOT, alive, serving
from aeviz.io import PRETRAINED
from aeviz.serve import find

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not find("haproxy"), reason="haproxy is not installed (apt-get install haproxy)"),
    pytest.mark.skipif(not find("redis-server"), reason="redis-server is not installed (apt-get install redis-server)"),
    pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed"),
    pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model"),
]
ARGS = [*driver.CHROMIUM_ARGS, "--disable-dev-shm-usage"]
CONNECTED = "[data-testid=stApp][data-test-connection-state=CONNECTED]"
CACHED = ("/static/", "/favicon")  # the browser may answer these from its cache, with the first replica's header
UP_MS = 240_000  # a replica's first page loads torch and the zoo: tens of seconds on a busy 2-core machine


def environ(pid: int) -> dict[str, str]:
    """A running process's environment (Linux)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def open_page(browser, url: str):
    """A page in its own context (its own cookies: another student), with the replica behind each response."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.replicas = []  # (time, replica, path) of every response through the proxy
    page.on("response", lambda r: r.url.startswith(url) and page.replicas.append(
        (time.monotonic(), r.headers.get("x-aeviz-replica"), urlsplit(r.url).path)))
    page.goto(url + "/", wait_until="domcontentloaded")
    page.wait_for_selector(driver.MAP, timeout=UP_MS)
    page.wait_for_selector(driver.IDLE, timeout=UP_MS)
    return page


def cookie(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "SERVERID")


def websockets_in_log(logs: Path) -> list[tuple[str, str]]:
    """(server, SERVERID the browser sent) of each WebSocket the proxy opened (option logasap logs it at once)."""
    lines = (logs / "haproxy.log").read_text().splitlines()
    return [(m[1], m[2]) for line in lines if "/_stcore/stream" in line
            and (m := re.search(r" replicas/(r\d+) .* (?:SERVERID=(r\d+)|-) ", line))]


STORE_WRITE = """
import json, aeviz.classroom as c
store = c.open_store()
room, secret = store.open_room()
store.push_view(room.code, secret, c.View("explorer", "ae-mlp-z2", {"digit": "3"}))
print(json.dumps({"code": room.code}))
"""
STORE_READ = """
import json, sys, aeviz.classroom as c
view, version, *_ = c.open_store().room_state(sys.argv[1])
print(json.dumps({"page": view.page, "model": view.model, "params": view.params, "version": version}))
"""


def run_with(env: dict, code: str, *argv: str) -> dict:
    run = subprocess.run([sys.executable, "-c", code, *argv], env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.skip(reason="The Explorer's latent sliders became the in-browser pad (issue 11); this test still "
                         "moves the server's sliders and waits for their image: to be ported to the pad.")
def test_two_replicas_affinity_failover_shared_store_and_a_clean_stop(tmp_path):
    from playwright.sync_api import sync_playwright

    with serving(2, tmp_path / "serve", "--no-restart") as served:
        state = served.state
        assert state["store"].startswith("redis://127.0.0.1:") and served.output().startswith(
            f"Students open http://127.0.0.1:{state['proxy']['port']}/\n")
        stores = {environ(r["pid"])["AEVIZ_STORE"] for r in state["replicas"]}
        assert stores == {state["store"]}  # both replicas were given the one local Redis

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=driver.CHROMIUM, args=ARGS)
            a = open_page(browser, served.url)
            b = open_page(browser, served.url)  # leastconn: A's WebSocket makes the other replica the emptier one
            home = {"a": cookie(a), "b": cookie(b)}
            assert sorted(home.values()) == ["r1", "r2"]
            for name, page in (("a", a), ("b", b)):  # affinity: every response came from the cookie's replica
                assert {r for _, r, _ in page.replicas} == {home[name]}, (name, page.replicas)
            sockets = websockets_in_log(served.logs)
            assert {server for server, _ in sockets} == {"r1", "r2"}
            assert all(sent in (None, server) for server, sent in sockets), sockets

            # A slider move keeps A on its replica.
            thumb = a.locator(driver.SLIDER).filter(has_text="z1").locator("input[type=range]")
            thumb.focus()
            a.keyboard.press("ArrowRight")
            a.wait_for_selector(driver.IDLE)
            assert cookie(a) == home["a"] and {r for _, r, _ in a.replicas} == {home["a"]}

            # Kill A's replica: its page reconnects through the proxy to B's, which does not know its session;
            # the replica guard (aeviz/ui/components/replica.py) reloads it there.
            killed = served.replica(home["a"])["pid"]
            os.kill(killed, signal.SIGKILL)
            t_kill = time.monotonic()
            deadline = t_kill + UP_MS / 1000
            while not any(t > t_kill and path == "/" for t, _, path in a.replicas):
                assert time.monotonic() < deadline, a.replicas[-10:]
                a.wait_for_timeout(200)
            a.wait_for_selector(CONNECTED, timeout=UP_MS)
            a.wait_for_selector(driver.MAP, timeout=UP_MS)
            a.wait_for_selector(driver.IDLE, timeout=UP_MS)
            fresh = {r for t, r, path in a.replicas if t > t_kill and not path.startswith(CACHED)}
            assert fresh == {home["b"]} and cookie(a) == home["b"]
            # The page is alive there: a latent slider (a fragment) redraws the decoded image.
            before = a.locator(driver.DECODED).get_attribute("src")
            thumb = a.locator(driver.SLIDER).filter(has_text="z1").locator("input[type=range]")
            thumb.focus()
            a.keyboard.press("ArrowLeft")
            a.wait_for_function(f"document.querySelector({driver.DECODED!r}).src !== {before!r}", timeout=60_000)
            assert a.locator("[data-testid=stException]").count() == 0
            assert b.locator("[data-testid=stException]").count() == 0 and cookie(b) == home["b"]
            browser.close()

        # The room store is shared: written with one replica's environment, read with the other's.
        env_a, env_b = ({"AEVIZ_STORE": environ(r["pid"])["AEVIZ_STORE"]} if alive(r["pid"]) else
                        {"AEVIZ_STORE": state["store"]} for r in state["replicas"])
        code = run_with(env_a, STORE_WRITE)["code"]
        assert run_with(env_b, STORE_READ, code) == {"page": "explorer", "model": "ae-mlp-z2",
                                                     "params": {"digit": "3"}, "version": 1}
        out = served.output()
        assert f"Replica {home['a']} was killed by signal 9; its students reconnect to the other replicas." in out
        assert "starting again" not in out  # --no-restart
        children = served.pids()
    assert served.exit_code == 0, served.output()
    time.sleep(0.5)
    assert [pid for pid in children if alive(pid)] == []  # no orphans: proxy, replicas and redis are gone
