"""What a class sees on a laptop (1280 px wide) and on a projector (1920 px): nothing cut off, nothing overlapping."""
from __future__ import annotations

import os
import time

import pytest

from aeviz.bench import browser as driver

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed")]

# Width of each display equation's content beyond its box, in pixels (a few are italic overhang, not a cut).
OVERFLOW = """() => Array.from(document.querySelectorAll('.katex-display')).map(
  e => [e.textContent.slice(0, 30), e.scrollWidth - e.clientWidth])"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    port = driver.free_port()
    server = driver.start_server(port)
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=driver.CHROMIUM, args=driver.CHROMIUM_ARGS)
            yield chromium, f"http://127.0.0.1:{port}"
            chromium.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _open(browser, path: str, width: int, height: int, wait_for: str):
    chromium, url = browser
    page = chromium.new_page(viewport={"width": width, "height": height})
    driver.goto_when_up(page, f"{url}/{path}", time.perf_counter() + 120)
    page.wait_for_selector(wait_for, timeout=180_000)
    page.wait_for_selector(driver.IDLE, timeout=180_000)
    return page


@pytest.mark.parametrize("path", ["imputation", "compare", "anomaly"])
def test_every_equation_fits_its_column_on_a_laptop(browser, path):
    page = _open(browser, path, 1280, 900, ".katex-display")
    try:
        cut = [(text, px) for text, px in page.evaluate(OVERFLOW) if px > 4]
        assert not cut, f"equations cut off at the right edge: {cut}"
    finally:
        page.close()

