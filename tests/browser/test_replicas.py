"""`aeviz serve`: two replicas behind HAProxy with a local Redis, in headless Chromium. A teacher and a student,
each in their own browser context, stay on their replicas (cookie affinity) and are on different ones; the teacher
opens a room, the student joins it, and the teacher's push crosses replicas through the shared Redis room store;
the student puts a model on the class board. A SIGKILL of the student's replica hands the student's page over to
the teacher's replica, where it is back in the room (its seat and name, the teacher's latest view, its board entry,
the next push, a live latent pad); SIGTERM stops everything with exit code 0.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aeviz.bench import browser as driver
from aeviz.bench import teacher as bench
from aeviz.bench.serving import alive, serving
from aeviz.classroom.store import CODE_RE
from aeviz.io import PRETRAINED
from aeviz.serve import find

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not find("haproxy"), reason="haproxy is not installed (apt-get install haproxy)"),
    pytest.mark.skipif(not find("redis-server"), reason="redis-server is not installed (apt-get install redis-server)"),
    pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed"),
    pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model"),
]
ARGS = driver.CHROMIUM_ARGS
CONNECTED = "[data-testid=stApp][data-test-connection-state=CONNECTED]"
CACHED = ("/static/", "/favicon")  # the browser may answer these from its cache, with the first replica's header
UP_MS = 240_000  # a replica's first page loads torch and the zoo: tens of seconds on a busy 2-core machine
FOLLOW_MS = 120_000  # a push reaches a student within POLL_S and one rerun; generous for a busy 2-core machine
PAD_READY = f"{driver.PAD_VIEW}[data-ready='1']"
Z_LINE = re.compile(r"^z = ")


def environ(pid: int) -> dict[str, str]:
    """A running process's environment (Linux)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def open_page(browser, url: str, path: str = "/"):
    """A page in its own context (its own cookies: another person), with the replica behind each response."""
    context = browser.new_context(viewport=bench.VIEWPORT)
    page = context.new_page()
    page.replicas = []  # (time, replica, path) of every response through the proxy
    page.on("response", lambda r: r.url.startswith(url) and page.replicas.append(
        (time.monotonic(), r.headers.get("x-aeviz-replica"), urlsplit(r.url).path)))
    page.loads = []  # when the page (re)loaded
    page.on("load", lambda _: page.loads.append(time.monotonic()))
    page.goto(url + path, wait_until="domcontentloaded")
    wait_up(page)
    return page


def wait_up(page) -> None:
    """The Explorer is drawn, its latent pad has its model, and the script is idle."""
    page.wait_for_selector(driver.MAP, timeout=UP_MS)
    page.wait_for_selector(PAD_READY, timeout=UP_MS)
    page.wait_for_selector(driver.IDLE, timeout=UP_MS)


def cookie(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "SERVERID")


def replicas_seen(page, since: float = 0.0) -> set[str | None]:
    """The replicas that answered the page's requests (after `since`), leaving out what a cache may answer."""
    return {r for t, r, path in page.replicas if t > since and not path.startswith(CACHED)}


def websockets_in_log(logs: Path) -> list[tuple[str, str]]:
    """(server, SERVERID the browser sent) of each WebSocket the proxy opened (option logasap logs it at once)."""
    lines = (logs / "haproxy.log").read_text().splitlines()
    return [(m[1], m[2]) for line in lines if "/_stcore/stream" in line
            and (m := re.search(r" replicas/(r\d+) .* (?:SERVERID=(r\d+)|-) ", line))]


def committed_code(page) -> str:
    """The server's "z = (…)" line under the latent pad: the code the page's Python has."""
    return page.locator("[data-testid=stMarkdownContainer] p", has_text=Z_LINE).locator("code").inner_text()


def nudge(page) -> str:
    """An arrow key on the latent pad: the pad decodes in the browser and commits on the key's release, which
    reruns the page on its replica; returns the code the server then shows."""
    page.wait_for_selector(PAD_READY, timeout=UP_MS)
    bench.settle(page)
    before = committed_code(page)
    page.locator(driver.PAD).focus()
    page.keyboard.press("ArrowRight")
    page.locator("[data-testid=stMarkdownContainer] p", has_text=Z_LINE).locator("code").filter(
        has_not_text=before).wait_for(timeout=FOLLOW_MS)
    bench.settle(page)
    return committed_code(page)


def push(teacher, student, version: int, sample: int) -> None:
    """The teacher selects a sample and pushes the Explorer; the student's page follows (status, sample, idle)."""
    bench._select_sample(teacher, sample)
    bench.settle(student)
    student.evaluate(bench.WATCH, [version, sample])
    teacher.evaluate(bench.PUSH)
    student.wait_for_function("window.__arrived !== undefined", timeout=FOLLOW_MS)
    bench.settle(student)
    bench.settle(teacher)


def shown_sample(page) -> tuple[str, str, str, str]:
    """What a page shows of its selected sample: the number box, the heading, its code, and the code under the
    latent pad (which starts there)."""
    return (page.locator(".st-key-ex_idx input").input_value(),
            page.locator("strong", has_text="Test sample #").first.inner_text(),
            page.get_by_text(re.compile(r"^Its code z = ")).first.inner_text().split("= ")[1], committed_code(page))


def submit_to_the_board(page, name: str) -> str:
    """The student opens the class board and submits the sidebar's model (a pretrained one) under `name`."""
    page.get_by_role("link", name="Class board").click()
    page.wait_for_selector(".st-key-board_submit button", timeout=UP_MS)
    bench.settle(page)
    page.locator(".st-key-board_name input").fill(name)
    page.locator(".st-key-board_name input").press("Enter")
    bench.settle(page)
    page.locator(".st-key-board_submit button").click()
    done = page.get_by_text(re.compile(r"is on the board of room \w+ as entry \d+"))
    done.wait_for(timeout=UP_MS)
    bench.settle(page)  # the confirmation stays through the board's own reruns (tests/ui/test_board.py)
    return done.inner_text()


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
            teacher = open_page(browser, served.url)
            home = {"teacher": cookie(teacher)}
            code = bench._open_room(teacher, served.url, goto=False)
            assert CODE_RE.fullmatch(code), code

            # The student opens the room link. leastconn sends a new browser to the replica with fewer connections,
            # the one without the teacher's WebSocket; should it not, another student opens it.
            for _ in range(4):
                student = open_page(browser, served.url, f"/?room={code}")
                if cookie(student) != home["teacher"]:
                    break
                student.context.close()
            home["student"] = cookie(student)
            assert sorted(home.values()) == ["r1", "r2"]
            bench._join(student, served.url, code, "Student B", goto=False)
            assert f"Room {code} · you are Student B" in student.locator(".st-key-room_panel").inner_text()

            # Affinity: every response came from the cookie's replica, across page loads and reruns.
            teacher_code = nudge(teacher)  # the pad commits on the teacher's replica
            for name, page in (("teacher", teacher), ("student", student)):
                assert {r for _, r, _ in page.replicas} == {home[name]}, (name, page.replicas[-10:])
                assert cookie(page) == home[name]
            sockets = websockets_in_log(served.logs)
            assert {server for server, _ in sockets} == {"r1", "r2"}
            assert all(sent in (None, server) for server, sent in sockets), sockets
            assert committed_code(teacher) == teacher_code

            # The teacher's push crosses replicas: written to Redis by one, read by the other's poll.
            push(teacher, student, 1, 12)
            assert shown_sample(student) == shown_sample(teacher) and shown_sample(student)[:2] == (
                "12", "Test sample #12")
            assert "sample=12" in student.url and f"room={code}" in student.url
            assert "Following the teacher: view 1" in student.locator(bench.STATUS).inner_text()
            assert replicas_seen(student) == {home["student"]} and replicas_seen(teacher) == {home["teacher"]}

            # The student puts a model on the class board (their replica writes it to Redis) and stays there.
            note = submit_to_the_board(student, "Bs digits")
            assert f"Bs digits” is on the board of room {code} as entry" in note
            assert urlsplit(student.url).path == "/board" and replicas_seen(student) == {home["student"]}

            # Kill the student's replica: the page reconnects through the proxy to the teacher's, which does not
            # know its session; the replica guard (aeviz/ui/components/replica.py) reloads it there, and the seat in
            # its address (?room=…&seat=…) takes it back into the room, following the teacher: a seat taken again
            # catches up with the teacher's latest view, so the student is on the Explorer's sample 12 again.
            student.wait_for_timeout(1000)  # the responses so far are recorded before the clock below starts
            killed = served.replica(home["student"])["pid"]
            os.kill(killed, signal.SIGKILL)
            t_kill = time.monotonic()
            deadline = t_kill + UP_MS / 1000
            while not any(t > t_kill for t in student.loads):
                assert time.monotonic() < deadline, student.replicas[-10:]
                student.wait_for_timeout(200)
            student.wait_for_selector(CONNECTED, timeout=UP_MS)
            student.locator(bench.STATUS).filter(has_text="Following the teacher: view 1").wait_for(timeout=UP_MS)
            wait_up(student)
            bench.settle(student)
            assert replicas_seen(student, t_kill) == {home["teacher"]} and cookie(student) == home["teacher"]
            assert f"Room {code} · you are Student B" in student.locator(".st-key-room_panel").inner_text()
            assert student.locator(".st-key-room_follow input").is_checked()
            assert student.locator(".st-key-room_join").count() == 0  # not asked to join again
            assert shown_sample(student) == shown_sample(teacher) and shown_sample(student)[:2] == (
                "12", "Test sample #12")
            assert f"room={code}" in student.url
            # The board, drawn by the teacher's replica from Redis, knows the seat's entry.
            student.get_by_role("link", name="Class board").click()
            student.get_by_text("Your entries (1)").wait_for(timeout=UP_MS)
            bench.settle(student)
            student.get_by_text("Your entries (1)").click()
            assert student.get_by_text("Bs digits").count() >= 1
            assert urlsplit(student.url).path == "/board"

            # Still the same member of the room: the next push takes the student from the board to the Explorer,
            # and the pad commits on the new replica.
            push(teacher, student, 2, 5)
            assert urlsplit(student.url).path != "/board"
            assert shown_sample(student) == shown_sample(teacher) and shown_sample(student)[:2] == (
                "5", "Test sample #5")
            assert nudge(student) != shown_sample(teacher)[2]
            assert replicas_seen(student, t_kill) == {home["teacher"]}
            assert replicas_seen(teacher) == {home["teacher"]} and cookie(teacher) == home["teacher"]
            assert f"Room {code} · you teach it" in teacher.locator(".st-key-room_panel").inner_text()
            for page in (teacher, student):
                assert page.locator("[data-testid=stException]").count() == 0
            browser.close()

        out = served.output()
        assert f"Replica {home['student']} was killed by signal 9; its students reconnect to the other replicas." in out
        assert "starting again" not in out  # --no-restart
        children = served.pids()
    assert served.exit_code == 0, served.output()
    time.sleep(0.5)
    assert [pid for pid in children if alive(pid)] == []  # no orphans: proxy, replicas and redis are gone
