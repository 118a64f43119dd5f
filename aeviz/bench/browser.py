"""`aeviz bench ui`: drive the real app in headless Chromium and time the first screen and the latent sliders.

first_screen_s: from starting `streamlit run app.py` until the Explorer shows the default model's latent map.
slider_*_ms: from a key press on the first latent slider until the decoded image has changed and loaded,
timed inside the page (performance.now), so Playwright's own round trips do not count.
Beside them it reports the server's CPU seconds to the first screen and per press, and the load average:
on a shared machine the wall-clock figures grow with the load, the CPU figures hardly do.
"""
from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AEVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
MAP = ".st-key-ex_map .js-plotly-plot .legend"  # the legend is drawn once plotly has rendered the map
SLIDER = ".st-key-ex_sliders [data-testid=stSlider]"
DECODED = ".st-key-ex_decoded [data-testid=stImage] img"

# Installed before a key press: time from the keydown to the decoded image's new src having loaded.
WATCH = """() => {
  window.__t0 = undefined; window.__dt = undefined;
  const old = document.querySelector(%r).src;
  window.addEventListener('keydown', () => { window.__t0 = performance.now(); }, {once: true, capture: true});
  const done = (img) => requestAnimationFrame(() => { window.__dt = performance.now() - window.__t0; });
  const obs = new MutationObserver(() => {
    const img = document.querySelector(%r);
    if (!img || img.src === old || window.__t0 === undefined) return;
    obs.disconnect();
    if (img.complete && img.naturalWidth) done(img); else img.addEventListener('load', () => done(img), {once: true});
  });
  obs.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}""" % (DECODED, DECODED)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log: Path | None = None) -> subprocess.Popen:
    """`streamlit run app.py` as a teacher starts it, with the repository's .streamlit/config.toml.

    Its output goes to `log` (or nowhere): an unread pipe would fill up and stall the server.
    """
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    out = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


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


def slider_latencies(page, presses: int) -> list[float]:
    """In-page milliseconds from a key press on the z1 slider to the new decoded image, per press."""
    thumb = page.locator(SLIDER).filter(has_text="z1").locator("input[type=range]")
    times = []
    for i in range(presses):
        page.wait_for_selector(IDLE)
        page.evaluate(WATCH)
        thumb.focus()
        page.keyboard.press("ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft")  # wander, stay in range
        page.wait_for_function("window.__dt !== undefined", timeout=30_000)
        times.append(page.evaluate("window.__dt"))
    return times


@contextlib.contextmanager
def app_in_browser(name: str):
    """Start the app's server and a headless Chromium page; yield (server, page, base url, server start time).

    If anything fails, the server's log is printed; the server always stops.
    """
    from playwright.sync_api import sync_playwright

    port = free_port()
    log = Path(tempfile.mkdtemp(prefix=f"aeviz-bench-{name}-")) / "server.log"
    start = time.perf_counter()
    server = start_server(port, log)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield server, browser.new_page(viewport={"width": 1500, "height": 1100}), f"http://127.0.0.1:{port}", start
            browser.close()
    except Exception:
        print(f"The app did not behave; the server's log is {log}:\n" + log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_once(presses: int = 30, screenshot: str | None = None) -> dict:
    """One cold server start: first screen, then `presses` slider moves."""
    with app_in_browser("ui") as (server, page, url, start):
        goto_when_up(page, url + "/", start + 120)
        listening = time.perf_counter() - start
        page.wait_for_selector(MAP, timeout=120_000)
        first = time.perf_counter() - start
        first_cpu = cpu_seconds(server.pid)
        page.wait_for_selector(IDLE, timeout=120_000)
        numba = numba_loaded(server.pid)
        cpu = cpu_seconds(server.pid)
        times = slider_latencies(page, presses)
        press_cpu = (cpu_seconds(server.pid) - cpu) / presses
        if screenshot:
            page.screenshot(path=screenshot)
    return {"first_screen_s": round(first, 2), "slider_median_ms": round(statistics.median(times), 1),
            "slider_p95_ms": round(statistics.quantiles(times, n=20, method="inclusive")[-1], 1),
            "numba_on_first_screen": numba, "server_up_s": round(listening, 2),
            "server_cpu_first_screen_s": round(first_cpu, 2), "server_cpu_per_press_ms": round(1000 * press_cpu, 1),
            "load_average": round(os.getloadavg()[0], 1)}


def bench_ui(runs: int = 3, presses: int = 30, screenshot: str = "") -> dict:
    """Run the UI benchmark `runs` times (each a cold server start) and print every run and the medians."""
    results = []
    for i in range(runs):
        r = run_once(presses, screenshot or None)
        results.append(r)
        print(f"run {i + 1}: first_screen_s {r['first_screen_s']:.2f}  slider_median_ms {r['slider_median_ms']:.0f}  "
              f"slider_p95_ms {r['slider_p95_ms']:.0f}  | server listening after {r['server_up_s']:.1f} s, "
              f"server CPU {r['server_cpu_first_screen_s']:.1f} s to the first screen and "
              f"{r['server_cpu_per_press_ms']:.0f} ms per press, numba loaded: {r['numba_on_first_screen']}, "
              f"load average {r['load_average']}", flush=True)
    out = {k: round(statistics.median(r[k] for r in results), 2) for k in (
        "first_screen_s", "slider_median_ms", "slider_p95_ms", "server_cpu_first_screen_s", "server_cpu_per_press_ms",
        "load_average")}
    out["runs"] = runs
    out["numba_on_first_screen"] = any(r["numba_on_first_screen"] for r in results)
    print(f"median of {runs}: first_screen_s {out['first_screen_s']:.2f} (target <= 10)  slider_median_ms "
          f"{out['slider_median_ms']:.0f} (<= 150)  slider_p95_ms {out['slider_p95_ms']:.0f} (<= 300)")
    return out


COMPARE_MODELS = ("ae-mlp-z2", "vae-mlp-z2", "vae-mlp-z2-b4", "vae-mlp-z2-b0.5")
SEED_PLUS = ".st-key-cmp_seed button[data-testid=stNumberInputStepUp]"
RUNNING = "[data-testid=stApp][data-test-script-state=running]"


def bench_compare(clicks: int = 10, models: tuple[str, ...] = COMPARE_MODELS) -> dict:
    """The compare page with 4 models: seconds from a click on the seed's + (new images, noise and samples for
    every model: a whole rerun) until the page is idle again, in headless Chromium."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with app_in_browser("compare") as (server, page, url, _):
        start = time.perf_counter()
        goto_when_up(page, f"{url}/compare?models={','.join(models)}", start + 120)
        page.wait_for_selector(IDLE, timeout=120_000)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        first = time.perf_counter() - start
        page.wait_for_selector(IDLE, timeout=120_000)
        cpu, times = cpu_seconds(server.pid), []
        for _ in range(clicks):
            t = time.perf_counter()
            page.locator(SEED_PLUS).click()
            try:
                page.wait_for_selector(RUNNING, timeout=5_000)
            except PlaywrightTimeout:  # a rerun quicker than the browser's look: it is idle again already
                pass
            page.wait_for_selector(IDLE, timeout=120_000)
            times.append(time.perf_counter() - t)
        per_click_cpu = (cpu_seconds(server.pid) - cpu) / clicks
    out = {"models": len(models), "first_screen_s": round(first, 2),
           "rerun_median_s": round(statistics.median(times), 3), "rerun_max_s": round(max(times), 3),
           "server_cpu_per_rerun_s": round(per_click_cpu, 3), "load_average": round(os.getloadavg()[0], 1)}
    print(f"compare page with {', '.join(models)}: first screen {first:.1f} s; seed change, click to idle over "
          f"{clicks} clicks: median {out['rerun_median_s']:.2f} s, max {out['rerun_max_s']:.2f} s; server CPU "
          f"{out['server_cpu_per_rerun_s']:.2f} s per rerun; load average {out['load_average']}")
    return out
