"""`aeviz bench class` with a few students for a few seconds, on one server and on two replicas: the JSON's keys,
nothing failed, a clean exit."""
import json
import os
import subprocess
import sys

import pytest

from aeviz import serve


def last_json(argv: list[str]) -> dict:
    run = subprocess.run([sys.executable, "-m", "aeviz.cli", "bench", *argv, "--json"], capture_output=True,
                         text=True, timeout=400)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])

KEYS = {"students", "training", "interactions", "p50_ms", "p95_ms", "max_ms", "failed", "disconnects", "exceptions",
        "server_rss_peak_mb", "server_cpu_cores", "browser_release_to_image_ms_p95", "first_screen_s_during_class",
        "exit_status", "load_avg", "students_cpu_cores", "browser_cpu_cores"}


def test_bench_class_runs_a_small_class_and_exits_cleanly():
    result = last_json(["class", "--students", "3", "--seconds", "8", "--stagger-s", "2"])
    assert set(result) >= KEYS
    assert result["students"] == 3
    assert result["failed"] == 0, result.get("error_kinds")
    assert result["exceptions"] == 0, result.get("exception_texts")
    assert result["exit_status"] == 0
    assert result["interactions"] > 0 and result["server_rss_peak_mb"] > 0
    assert result["students_cpu_cores"] > 0 and result["browser_cpu_cores"] > 0  # what the bench itself costs
    # the Chromium page, driven from a process of its own, joined and reported what it saw
    assert result["browser_error"] is None and result["first_screen_s_during_class"] > 0, result
    assert any(k.endswith("_p95_ms") and k != "p95_ms" for k in result)  # per action kind


@pytest.mark.skipif(not serve.find("haproxy"), reason="HAProxy is not installed")
def test_bench_class_on_two_replicas_behind_haproxy_exits_cleanly():
    result = last_json(["class", "--students", "4", "--seconds", "8", "--stagger-s", "2", "--replicas", "2",
                        "--no-browser"])
    assert set(result) >= KEYS and result["replicas"] == 2
    assert result["failed"] == 0 and result["exceptions"] == 0 and result["disconnects"] == 0, result
    assert result["exit_status"] == 0  # aeviz serve's: 0 only when both replicas stopped cleanly
    assert result["interactions"] > 0 and result["server_rss_peak_mb"] > 0


def test_the_class_benchs_chromium_never_runs_above_the_server(tmp_path):
    """As root, Chromium lifts its compositor and IO threads to niceness -8, above the server's 0: the bench's page
    runs without the capability to, and every one of its threads stays at the niceness it was started with. Where
    Linux has autogroups, Playwright's session for the browser is a scheduling group of its own (the equal of the
    server's, whatever its threads' niceness): the bench puts that group at BROWSER_NICE, and leaves ours alone."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from aeviz.bench.browser import CHROMIUM_ARGS
    from aeviz.bench.classroom import BROWSER_NICE, _below_the_server, descendants
    from aeviz.jobs import _group_nice, autogroups

    def levels() -> list[int]:
        """The niceness of every thread of this process's Chromium processes."""
        out = []
        for pid in descendants(os.getpid()):
            try:
                if b"chrom" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    out += [int(t.joinpath("stat").read_text().rsplit(")", 1)[1].split()[16])
                            for t in Path(f"/proc/{pid}/task").glob("*")]
            except (OSError, IndexError):  # a process or thread that ended meanwhile
                pass
        return out

    def groups() -> set[int | None]:
        """The niceness of the scheduling groups of this process's Chromium processes (not its crash reporters,
        which sleep in sessions of their own; nor a process that ended meanwhile)."""
        out = set()
        for pid in descendants(os.getpid()):
            try:
                if b"chromium --" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    nice = _group_nice(pid)
                    if Path(f"/proc/{pid}").exists():
                        out.add(nice)
            except OSError:
                pass
        return out

    ours = _group_nice()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_below_the_server(str(tmp_path)), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content("<canvas></canvas><p>a page</p>")
            page.wait_for_timeout(500)
            seen, grouped = levels(), groups()
        finally:
            browser.close()
    assert seen and min(seen) >= os.nice(0), sorted(set(seen))
    assert grouped == ({BROWSER_NICE} if autogroups() else {None}) and _group_nice() == ours
