"""`aeviz bench ui`: drive the real app in headless Chromium and time the first screen and the latent pad.

first_screen_s: from starting `streamlit run app.py` until the Explorer shows the default model's latent map.
first_screen_bytes: what the browser downloaded by then, once the page is idle and the latent pad has its model:
HTTP response bodies (Streamlit's own JavaScript included) plus websocket bytes received (the weights among them).
pad_frame_*_ms: from an arrow key pressed on the latent pad until the pad's decoded image is redrawn (in the browser).
commit_*_ms: from that key's release until the page shows the code it committed (the server's "z = (...)" line,
redrawn by the one fragment rerun the release causes).
Both are timed inside the page (performance.now), so Playwright's own round trips do not count.
Beside them it reports the server's CPU seconds to the first screen and per commit, and the load average:
on a shared machine the wall-clock figures grow with the load, the CPU figures hardly do.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..serve import free_port  # one free-port helper, the core's (the benches import it from here)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AEVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
MAP = ".st-key-ex_map-box .aeviz-mode-map[data-drawn='1']"  # the canvas map has drawn, with its plane if it has one
PAD = ".st-key-ex_pad-box .aeviz-pad"
PAD_VIEW = ".st-key-ex_pad-box .aeviz-latent"

# Installed before a key press on the pad: the time of the key's press and of the pad's next frame.
WATCH = """(view) => {
  const w = (window.__pad = {});
  window.addEventListener("keydown", () => { w.down = performance.now(); }, { once: true, capture: true });
  const frames = new MutationObserver(() => {
    if (w.down !== undefined && w.frame === undefined) { w.frame = performance.now(); frames.disconnect(); }
  });
  frames.observe(view, { attributes: true, attributeFilter: ["data-frames"] });
}"""

# Installed before a release (key or pointer): its time, and when the page's "z = (...)" line, which the server
# writes, shows something new: the rerun that the release caused has come back and been drawn. (The app's
# script-state attribute is no clock for this: a fragment's rerun can start and end within one React render.)
WATCH_COMMIT = """() => {
  const line = () => Array.from(document.querySelectorAll("[data-testid=stMarkdownContainer] p"))
    .find((p) => p.textContent.startsWith("z = "));
  const w = (window.__commit = { before: line()?.textContent });
  for (const kind of ["keyup", "pointerup"]) {
    window.addEventListener(kind, () => { if (w.up === undefined) w.up = performance.now(); }, { capture: true });
  }
  const obs = new MutationObserver(() => {
    const text = line()?.textContent;
    if (w.up === undefined || text === undefined || text === w.before) return;
    w.shown = performance.now();
    w.text = text;
    obs.disconnect();
  });
  obs.observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


class Downloads:
    """Bytes the page receives, counted by Chromium's network events: HTTP bodies and websocket frames."""

    def __init__(self, page):
        self.page, self.http, self.ws = page, 0, 0
        self.last = time.perf_counter()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _data(self, event: dict) -> None:
        self.http += event["dataLength"]
        self.last = time.perf_counter()

    def _frame(self, event: dict) -> None:
        r = event["response"]  # binary frames come base64-encoded
        self.ws += len(r["payloadData"]) * 3 // 4 if r["opcode"] == 2 else len(r["payloadData"].encode())
        self.last = time.perf_counter()

    def settled(self, quiet_s: float = 1.0, limit_s: float = 30.0) -> int:
        """All bytes so far, once nothing has arrived for quiet_s."""
        end = time.perf_counter() + limit_s
        while time.perf_counter() - self.last < quiet_s and time.perf_counter() < end:
            self.page.wait_for_timeout(50)  # (Playwright delivers the events while it waits, not in time.sleep)
        return self.http + self.ws


def start_server(port: int, log: Path | None = None, script: Path | None = None) -> subprocess.Popen:
    """`streamlit run app.py` as a teacher starts it, with the repository's .streamlit/config.toml; or another
    script (a test's small app), which then imports this checkout's aeviz too.

    Its output goes to `log` (or nowhere): an unread pipe would fill up and stall the server.
    """
    cmd = [sys.executable, "-m", "streamlit", "run", str(script or ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    env = None if script is None else {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def served(script: Path | None = None, log: Path | None = None):
    """start_server on a free port for the length of the block: yield (server, its URL); the server always stops."""
    port = free_port()
    server = start_server(port, log, script)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def chromium():
    """Headless Chromium (Playwright) for the length of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def goto_when_up(page, url: str, deadline: float) -> None:
    """Open url, retrying while the server is not listening yet."""
    while True:
        try:
            page.goto(url, wait_until="domcontentloaded")
            return
        except Exception:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.05)


def numba_loaded(pid: int) -> bool:
    """Whether the server process has numba (UMAP's compiler) mapped into memory."""
    try:
        return "numba" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc), to tell our cost from a busy machine's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(d.name))
    return out


def browser_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds used so far by the Chromium processes below `root` (default: this process), i.e. the headless
    browser this bench drives (its renderers and GPU process included), not anybody else's."""
    kids, total, todo = _children(), 0.0, [root or os.getpid()]
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            used = cpu_seconds(pid) if "chrom" in Path(f"/proc/{pid}/comm").read_text() else 0.0
        except OSError:
            continue
        total += used if used == used else 0.0  # (nan: it ended meanwhile)
    return total


def pad_latencies(page, presses: int, first: int = 0) -> tuple[list[float], list[float]]:
    """In-page milliseconds per arrow key on the latent pad: (key down to the redrawn image, key up to the end of
    the rerun that commits the new code). The point wanders five presses right, five left (first: how many presses
    came before, for a caller that presses one at a time): at the pad's edge a press moves nothing and commits
    nothing."""
    pad, view = page.locator(PAD), page.locator(PAD_VIEW)
    frames, commits = [], []
    for i in range(first, first + presses):
        page.wait_for_selector(IDLE)
        view.evaluate(WATCH)
        page.evaluate(WATCH_COMMIT)
        pad.focus()
        page.keyboard.press("ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft")  # wander, stay in range
        page.wait_for_function("window.__pad.frame !== undefined && window.__commit.shown !== undefined",
                               timeout=30_000)
        w, c = page.evaluate("[window.__pad, window.__commit]")
        frames.append(w["frame"] - w["down"])
        commits.append(c["shown"] - c["up"])
    return frames, commits


def _p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=20, method="inclusive")[-1], 1)


@contextlib.contextmanager
def app_in_browser(name: str):
    """Start the app's server and a headless Chromium page; yield (server, page, base url, server start time).

    If anything fails, the server's log is printed; the server always stops.
    """
    log = Path(tempfile.mkdtemp(prefix=f"aeviz-bench-{name}-")) / "server.log"
    start = time.perf_counter()
    try:
        with served(log=log) as (server, url), chromium() as browser:
            yield server, browser.new_page(viewport={"width": 1500, "height": 1100}), url, start
    except Exception:
        print(f"The app did not behave; the server's log is {log}:\n" + log.read_text()[-3000:], file=sys.stderr)
        raise


def run_once(presses: int = 30, screenshot: str | None = None) -> dict:
    """One cold server start: first screen, then `presses` arrow keys on the latent pad."""
    with app_in_browser("ui") as (server, page, url, start):
        downloads = Downloads(page)
        goto_when_up(page, url + "/", start + 120)
        listening = time.perf_counter() - start
        page.wait_for_selector(MAP, timeout=120_000)
        first = time.perf_counter() - start
        first_cpu = cpu_seconds(server.pid)
        page.wait_for_selector(IDLE, timeout=120_000)
        page.wait_for_selector(f"{PAD_VIEW}[data-ready='1']", timeout=120_000)
        first_bytes = downloads.settled()
        numba = numba_loaded(server.pid)
        cpu = cpu_seconds(server.pid)
        frames, commits = pad_latencies(page, presses)
        press_cpu = (cpu_seconds(server.pid) - cpu) / presses
        if screenshot:
            page.screenshot(path=screenshot)
    return {"first_screen_s": round(first, 2), "first_screen_bytes": first_bytes,
            "pad_frame_median_ms": round(statistics.median(frames), 1), "pad_frame_p95_ms": _p95(frames),
            "commit_median_ms": round(statistics.median(commits), 1), "commit_p95_ms": _p95(commits),
            "numba_on_first_screen": numba, "server_up_s": round(listening, 2),
            "server_cpu_first_screen_s": round(first_cpu, 2), "server_cpu_per_commit_ms": round(1000 * press_cpu, 1),
            "load_average": round(os.getloadavg()[0], 1)}


def bench_ui(runs: int = 3, presses: int = 30, screenshot: str = "") -> dict:
    """Run the UI benchmark `runs` times (each a cold server start) and print every run and the medians."""
    results = []
    for i in range(runs):
        r = run_once(presses, screenshot or None)
        results.append(r)
        print(f"run {i + 1}: first_screen_s {r['first_screen_s']:.2f} ({r['first_screen_bytes']:,} bytes)  "
              f"pad_frame_median_ms {r['pad_frame_median_ms']:.1f}  pad_frame_p95_ms {r['pad_frame_p95_ms']:.1f}  "
              f"commit_median_ms {r['commit_median_ms']:.0f}  commit_p95_ms {r['commit_p95_ms']:.0f}  | server "
              f"listening after {r['server_up_s']:.1f} s, server CPU {r['server_cpu_first_screen_s']:.1f} s to the "
              f"first screen and {r['server_cpu_per_commit_ms']:.0f} ms per commit, numba loaded: "
              f"{r['numba_on_first_screen']}, load average {r['load_average']}", flush=True)
    out = {k: round(statistics.median(r[k] for r in results), 2) for k in (
        "first_screen_s", "first_screen_bytes", "pad_frame_median_ms", "pad_frame_p95_ms", "commit_median_ms",
        "commit_p95_ms", "server_cpu_first_screen_s", "server_cpu_per_commit_ms", "load_average")}
    out["runs"] = runs
    out["numba_on_first_screen"] = any(r["numba_on_first_screen"] for r in results)
    print(f"median of {runs}: first_screen_s {out['first_screen_s']:.2f} (target <= 10), "
          f"{out['first_screen_bytes']:,.0f} bytes downloaded; pad_frame_median_ms {out['pad_frame_median_ms']:.1f} "
          f"(<= 17: the next frame); commit_median_ms {out['commit_median_ms']:.0f} (<= 150)")
    return out


COMPARE_MODELS = ("ae-mlp-z2", "vae-mlp-z2", "vae-mlp-z2-b4", "vae-mlp-z2-b0.5")
SEED_PLUS = ".st-key-cmp_seed button[data-testid=stNumberInputStepUp]"
FIRST_IMAGE = "[data-testid=stImage] img"  # Compare's first picture: the seed's test images


def bench_compare(clicks: int = 10, models: tuple[str, ...] = COMPARE_MODELS) -> dict:
    """The compare page with 4 models: seconds from a click on the seed's + (new images, noise and samples for
    every model: a whole rerun) until the page is idle again, in headless Chromium."""

    with app_in_browser("compare") as (server, page, url, _):
        start = time.perf_counter()
        goto_when_up(page, f"{url}/compare?models={','.join(models)}", start + 120)
        page.wait_for_selector(IDLE, timeout=120_000)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        first = time.perf_counter() - start
        page.wait_for_selector(IDLE, timeout=120_000)
        cpu, times = cpu_seconds(server.pid), []
        for _ in range(clicks):
            shown = page.eval_on_selector(FIRST_IMAGE, "img => img.src")
            t = time.perf_counter()
            page.locator(SEED_PLUS).click()
            # idle with new pictures: the rerun this click started has ended (waiting to see the page running
            # could miss a quick rerun, and then counted a whole timeout)
            page.wait_for_function("([sel, idle, old]) => document.querySelector(sel)?.src !== old && "
                                   "!!document.querySelector(idle)", arg=[FIRST_IMAGE, IDLE, shown], timeout=120_000)
            times.append(time.perf_counter() - t)
        per_click_cpu = (cpu_seconds(server.pid) - cpu) / clicks
    out = {"models": len(models), "first_screen_s": round(first, 2),
           "rerun_median_s": round(statistics.median(times), 3), "rerun_max_s": round(max(times), 3),
           "server_cpu_per_rerun_s": round(per_click_cpu, 3), "load_average": round(os.getloadavg()[0], 1)}
    print(f"compare page with {', '.join(models)}: first screen {first:.1f} s; seed change, click to idle over "
          f"{clicks} clicks: median {out['rerun_median_s']:.2f} s, max {out['rerun_max_s']:.2f} s; server CPU "
          f"{out['server_cpu_per_rerun_s']:.2f} s per rerun; load average {out['load_average']}")
    return out
