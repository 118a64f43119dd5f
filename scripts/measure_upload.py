"""One-off measurement (not a test): the wall-clock time from uploading a 10,000-row, 30-column CSV in the Explorer's
"Your data" tab to the trained default model's latent map, in the real app in headless Chromium.

    PYTHONPATH=. python scripts/measure_upload.py [--rows 10000] [--cols 30] [--runs 1] [--screenshot PATH]

It reports the seconds from the file input to the first read (its text label column is refused until picked), to
picking the label column and the preview, from the Train button to the new model's
map (queue + worker start + 20 epochs + collecting the model), and both together, with the load average: on a shared
machine the wall clock grows with the load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))
os.environ.setdefault("AEVIZ_DATA", tempfile.mkdtemp(prefix="aeviz-measure-"))  # a fresh workspace, not yours

from aeviz.bench import browser as driver
from aeviz.bench import datafiles


def measure(rows: int, cols: int, runs: int, screenshot: str) -> dict:
    from playwright.sync_api import sync_playwright
    from test_yourdata import choose, open_your_data

    raw = datafiles.wide_table_csv(rows, cols)
    name = f"wide-{rows}x{cols}.csv"
    port = driver.free_port()
    server = driver.start_server(port)
    out = {"rows": rows, "columns": cols, "bytes": len(raw), "runs": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=driver.CHROMIUM, args=driver.CHROMIUM_ARGS)
            for run in range(runs):
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                driver.goto_when_up(page, f"http://127.0.0.1:{port}/", time.perf_counter() + 120)
                page.wait_for_selector(driver.MAP, timeout=180_000)
                page.wait_for_selector(driver.IDLE, timeout=180_000)
                open_your_data(page)
                box = page.locator("[data-testid=stFileUploader]").filter(has_text="Your data file")
                t0 = time.perf_counter()
                box.locator("input[type=file]").set_input_files(
                    files=[{"name": name, "mimeType": "text/csv", "buffer": raw}])
                page.get_by_text(f"Reading {name}").wait_for(timeout=120_000)
                page.wait_for_selector(driver.IDLE)  # read once: the text column 'group' is refused until picked
                t1 = time.perf_counter()
                choose(page, "Label column", "group")
                page.get_by_text(f"Your file '{name}'").wait_for(timeout=120_000)
                t2 = time.perf_counter()
                page.get_by_role("button", name="Train on this data").click()
                page.locator("h4").filter(has_text=f"ae-mlp-z2-wide-{rows}x{cols}-").first.wait_for(timeout=600_000)
                page.wait_for_selector(driver.MAP, timeout=60_000)
                page.wait_for_selector(driver.IDLE, timeout=60_000)
                t3 = time.perf_counter()
                seconds = page.locator("[data-testid=stMetric]").filter(has_text="seconds").first.inner_text()
                out["runs"].append({"upload_and_first_read_s": round(t1 - t0, 2), "pick_label_and_read_s": round(t2 - t1, 2),
                                    "train_to_map_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
                                    "worker_training_s": seconds.split("\n")[-1], "loadavg": os.getloadavg()})
                if screenshot and run == runs - 1:
                    page.screenshot(path=screenshot, full_page=True)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--cols", type=int, default=30)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--screenshot", default="")
    a = ap.parse_args()
    print(json.dumps(measure(a.rows, a.cols, a.runs, a.screenshot), indent=1))


if __name__ == "__main__":
    main()
