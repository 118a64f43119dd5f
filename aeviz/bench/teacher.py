"""`aeviz bench teacher`: one teacher and several students in headless Chromium (pages of one browser), on a fresh
server with its own data folder.

The teacher opens a room from the sidebar, every student joins it by the room link, then the teacher pushes a view
`pushes` times (the Explorer with another selected sample each time). push_to_student_s is, per student and push,
the time from the click on "Push this view" (Date.now() in the teacher's page) until that student's page follows
(Date.now() in the student's page, the same browser and clock): the status reads the new view, the selected sample
is the pushed one, and the page has finished its rerun. Then `board_entries` small models are submitted through the
store, and board_render_s times the teacher's click on "Class board" until every map and picture is drawn.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

from . import _environ
from .browser import IDLE, MAP, app_in_browser, browser_cpu_seconds, cpu_seconds, goto_when_up

STATUS = ".st-key-room_status"
FOLLOW_TIMEOUT_S = 30.0  # a push that has not arrived by then counts as not followed
VIEWPORT = {"width": 1280, "height": 900}

# In a student's page: __seen, the first moment the status shows view v and the selected sample is s; __arrived, the
# first moment that is so and the page has also finished its rerun (everything on it is the pushed view).
WATCH = """([v, s]) => {
  window.__arrived = undefined; window.__seen = undefined;
  const check = () => {
    const status = document.querySelector('.st-key-room_status');
    const idx = document.querySelector('.st-key-ex_idx input');
    const app = document.querySelector('[data-testid=stApp]');
    if (!(status && status.textContent.includes('view ' + v) && idx && idx.value === String(s))) return;
    if (window.__seen === undefined) window.__seen = Date.now();
    if (app && app.getAttribute('data-test-script-state') === 'notRunning') {
      window.__arrived = Date.now(); obs.disconnect();
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
PUSH = """() => { const t = Date.now(); document.querySelector('.st-key-room_push_btn button').click(); return t; }"""
# The board is drawn: idle, the maps' figure has one title per entry, and every picture (one grid) has loaded.
BOARD_DONE = """(n) => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const titles = document.querySelectorAll('.st-key-board_maps .js-plotly-plot .annotation-text').length;
  const imgs = Array.from(document.querySelectorAll('.st-key-board_pictures img'));
  return titles >= n && imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""


def _open_room(page, url: str, goto: bool = True) -> str:
    """The teacher opens a room from the sidebar (of the page at url, or of the page as it is); returns its code."""
    if goto:
        goto_when_up(page, url + "/", time.perf_counter() + 120)
    page.wait_for_selector(MAP, timeout=180_000)
    page.wait_for_selector(IDLE, timeout=180_000)
    page.get_by_text("Class room: join or teach").click()
    page.get_by_role("tab", name="Teach a class").click()
    page.locator(".st-key-room_open button").click()
    page.wait_for_selector(".st-key-room_panel", timeout=60_000)
    text = page.locator(".st-key-room_panel").inner_text()
    return text.split("Room ", 1)[1].split()[0]


def _join(page, url: str, code: str, name: str, goto: bool = True) -> None:
    """A student joins room `code` as `name` (by the room link, or on the page as it is, opened with ?room=)."""
    if goto:
        goto_when_up(page, f"{url}/?room={code}", time.perf_counter() + 60)
    page.wait_for_selector(".st-key-room_join_name input", timeout=180_000)
    page.wait_for_selector(IDLE, timeout=180_000)
    settle(page)
    page.locator(".st-key-room_join_name input").fill(name)
    page.locator(".st-key-room_join_name input").press("Enter")
    settle(page)
    page.locator(".st-key-room_join button").click()
    page.wait_for_selector(STATUS, timeout=120_000)
    settle(page)


def settle(page, quiet_s: float = 0.5, timeout_s: float = 120.0) -> None:
    """Wait until the page's script has been idle for quiet_s (a rerun may start a moment after an action)."""
    deadline, since = time.perf_counter() + timeout_s, None
    while time.perf_counter() < deadline:
        if page.locator(IDLE).count():
            since = since or time.perf_counter()
            if time.perf_counter() - since >= quiet_s:
                return
        else:
            since = None
        time.sleep(0.05)
    raise TimeoutError(f"The page did not settle within {timeout_s:.0f} s.")


def _select_sample(page, sample: int) -> None:
    """The teacher types a sample number, as a person would, until the page shows it (a rerun that was under way
    when they typed can put the old number back)."""
    box = page.locator(".st-key-ex_idx input")
    for _ in range(5):
        settle(page)
        box.fill(str(sample))
        box.press("Enter")
        settle(page)
        if box.input_value() == str(sample) and f"sample={sample}&" in page.url:
            return
    raise TimeoutError(f"The Explorer did not take sample {sample}.")


def _push_once(teacher, students, version: int, sample: int) -> list[tuple[float, float] | None]:
    """(seconds until it shows, seconds until the page is done) from the teacher's click, for each student (None:
    not within FOLLOW_TIMEOUT_S)."""
    _select_sample(teacher, sample)
    for p in students:
        settle(p)
        p.evaluate(WATCH, [version, sample])
    t0 = teacher.evaluate(PUSH)
    deadline = time.perf_counter() + FOLLOW_TIMEOUT_S
    out = []
    for p in students:
        left = max(0.0, deadline - time.perf_counter())
        try:
            p.wait_for_function("window.__arrived !== undefined", timeout=max(1, int(left * 1000)))
            seen, arrived = p.evaluate("[window.__seen, window.__arrived]")
            out.append(((seen - t0) / 1000, (arrived - t0) / 1000))
        except Exception:
            out.append(None)
    return out


def _idle_cost(server_pid: int, teacher, students, seconds: float = 6.0) -> dict:
    """The class's cost while nobody does anything (every student's page polls the room): the server's and the
    browser's CPU seconds per student and second."""
    for p in (teacher, *students):
        settle(p)
    server, browser, t = cpu_seconds(server_pid), browser_cpu_seconds(), time.perf_counter()
    teacher.wait_for_timeout(seconds * 1000)
    per = len(students) * (time.perf_counter() - t)
    return {"idle_server_cpu_per_student_s": round((cpu_seconds(server_pid) - server) / per, 4),
            "idle_browser_cpu_per_student_s": round((browser_cpu_seconds() - browser) / per, 4)}


def submit_entries(code: str, n: int) -> int:
    """n small MNIST models (objectives, latent sizes and β varied) on the room's board, through the store."""
    import aeviz
    from aeviz import io
    from aeviz.classroom import board, open_store
    from aeviz.data import load

    store, data = open_store(), load("mnist")
    for i in range(n):
        vae = i % 2 == 1
        mc = aeviz.config_for("mnist", objective="variational" if vae else "vanilla", latent_dim=(2, 2, 8, 16)[i % 4],
                              beta=(0.5, 1.0, 4.0, 10.0)[(i // 2) % 4] if vae else 1.0, hidden=(64, 32))
        model, _ = aeviz.train(mc, aeviz.TrainConfig(epochs=1, max_train=1000, seed=i, eval_every=0), data)
        _, token = store.join(code, f"Student {i + 1}")
        store.submit(code, token, f"model {i + 1}", board.entry_meta(model, data), io.to_bytes(model))
    return len(store.entries(code))


def _board_render(teacher, entries: int, server_pid: int) -> tuple[float, float, float, float]:
    """(seconds to draw the board the first time, the server's and the browser's CPU seconds for it, seconds the
    second time)."""
    times, cpu, browser = [], 0.0, 0.0
    for first in (True, False):
        settle(teacher)
        before, browser_before, t = cpu_seconds(server_pid), browser_cpu_seconds(), time.perf_counter()
        teacher.get_by_role("link", name="Class board").click()
        teacher.wait_for_function(BOARD_DONE, arg=entries, timeout=180_000, polling=50)
        times.append(time.perf_counter() - t)
        if first:
            cpu, browser = cpu_seconds(server_pid) - before, browser_cpu_seconds() - browser_before
        if first:
            teacher.get_by_role("link", name="Explorer", exact=True).click()
            teacher.wait_for_selector(MAP, timeout=180_000)
    return times[0], cpu, browser, times[1]


def _shots(pages: dict, folder: str, board: bool) -> None:
    """Screenshots of each page at 1280 x 900 and 1920 x 1080 (full page)."""
    for w, h in ((1280, 900), (1920, 1080)):
        for name, p in pages.items():
            p.set_viewport_size({"width": w, "height": h})
            p.wait_for_timeout(800)
            p.screenshot(path=os.path.join(folder, f"teach_{name}_{'board' if board else 'explorer'}_{w}x{h}.png"),
                         full_page=True)
            if board:  # the page scrolls inside Streamlit's container: a second shot at the small maps
                p.locator(".st-key-board_maps").scroll_into_view_if_needed()
                p.wait_for_timeout(500)
                p.screenshot(path=os.path.join(folder, f"teach_{name}_board_maps_{w}x{h}.png"))
    for p in pages.values():
        p.set_viewport_size(VIEWPORT)


def _spread(name: str, values: list[float]) -> dict:
    """name_median and name_p95 of values (None when there are none)."""
    if not values:
        return {f"{name}_median": None, f"{name}_p95": None}
    p95 = statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
    return {f"{name}_median": round(statistics.median(values), 3), f"{name}_p95": round(p95, 3)}


def run(students: int = 5, pushes: int = 10, board_entries: int = 30, screenshots: str = "") -> dict:
    """The teacher bench: push-to-student latency, pushes followed, and the board's render time."""
    data = tempfile.mkdtemp(prefix="aeviz-bench-teacher-")
    with _environ({"AEVIZ_DATA": data, "AEVIZ_STORE": None, "AEVIZ_TEACHER_TOKEN": None}), \
            app_in_browser("teacher") as (server, teacher, url, _):
        browser = teacher.context.browser
        teacher.set_viewport_size(VIEWPORT)
        code = _open_room(teacher, url)
        pages = [browser.new_page(viewport=VIEWPORT) for _ in range(students)]
        for i, p in enumerate(pages):
            _join(p, url, code, f"Student {i + 1}")
        idle = _idle_cost(server.pid, teacher, pages)
        times, cpu, browser_cpu = [], [], []
        for k in range(pushes):
            before, browser_before = cpu_seconds(server.pid), browser_cpu_seconds()
            times += _push_once(teacher, pages, k + 1, 7 * k + 3)
            cpu.append(cpu_seconds(server.pid) - before)
            browser_cpu.append(browser_cpu_seconds() - browser_before)
            print(f"push {k + 1}, seconds until each student's page shows it / has finished: " + "  ".join(
                "lost" if t is None else f"{t[0]:.2f}/{t[1]:.2f}" for t in times[-students:]), flush=True)
        if screenshots:
            _shots({"teacher": teacher, "student": pages[0]}, screenshots, board=False)
        n = submit_entries(code, board_entries) if board_entries else 0
        render, render_cpu, render_browser, render_again = _board_render(teacher, n, server.pid) if n else (0.0,) * 4
        if screenshots and n:
            pages[0].get_by_role("link", name="Class board").click()
            pages[0].wait_for_function(BOARD_DONE, arg=n, timeout=180_000)
            _shots({"teacher": teacher, "student": pages[0]}, screenshots, board=True)
    arrived = [t[1] for t in times if t is not None]
    seen = [t[0] for t in times if t is not None]
    out = {"students": students, "pushes": pushes, **_spread("push_to_student_s", arrived),
           **_spread("push_seen_s", seen), "followed": len(arrived), "followed_of": students * pushes,
           "board_entries": n, "board_render_s": round(render, 2), "board_server_cpu_s": round(render_cpu, 2),
           "board_browser_cpu_s": round(render_browser, 2),
           "board_render_again_s": round(render_again, 2),
           "server_cpu_per_push_s": round(statistics.median(cpu), 2) if cpu else None,
           "browser_cpu_per_push_s": round(statistics.median(browser_cpu), 2) if browser_cpu else None,
           **idle, "load_average": round(os.getloadavg()[0], 1)}
    print(f"{students} students, {pushes} pushes: {len(arrived)}/{students * pushes} followed; push to student "
          f"(page finished) median {out['push_to_student_s_median']} s, p95 {out['push_to_student_s_p95']} s "
          f"(goal <= 2); the pushed sample shows after median {out['push_seen_s_median']} s, "
          f"p95 {out['push_seen_s_p95']} s; "
          f"board of {n} entries drawn in {render:.2f} s (goal <= 3; the server's CPU {render_cpu:.2f} s), again in "
          f"{render_again:.2f} s; the server's CPU per push (the teacher's rerun, "
          f"every student's poll and rerun): {out['server_cpu_per_push_s']} s; load average {out['load_average']}")
    return out
