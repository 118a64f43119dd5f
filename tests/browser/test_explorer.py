"""The real app in headless Chromium: it loads, a latent slider moves by keyboard, the decoded image changes."""
from __future__ import annotations

import os
import time

import pytest

from aeviz.bench import browser as driver
from aeviz.io import PRETRAINED

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed"),
              pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")]


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    port = driver.free_port()
    server = driver.start_server(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=driver.CHROMIUM, args=driver.CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            driver.goto_when_up(page, f"http://127.0.0.1:{port}/", time.perf_counter() + 120)
            page.wait_for_selector(driver.MAP, timeout=180_000)
            page.wait_for_selector(driver.IDLE, timeout=180_000)
            yield page
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_latent_slider_moved_by_keyboard_changes_the_decoded_image(page, tmp_path):
    decoded = page.locator(driver.DECODED)
    before_src, before_code = decoded.get_attribute("src"), page.locator(".st-key-ex_decoded code").inner_text()
    thumb = page.locator(driver.SLIDER).filter(has_text="z1").locator("input[type=range]")
    value = float(thumb.get_attribute("aria-valuetext"))
    thumb.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.querySelector({driver.DECODED!r}).src !== {before_src!r}", timeout=30_000)
    page.wait_for_selector(driver.IDLE)
    assert float(thumb.get_attribute("aria-valuetext")) > value
    assert page.locator(".st-key-ex_decoded code").inner_text() != before_code
    assert page.evaluate(f"document.querySelector({driver.DECODED!r}).naturalWidth") >= 200  # upscaled, crisp
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_the_page_shows_no_exception_and_the_map_has_every_class(page):
    assert page.locator("[data-testid=stException]").count() == 0
    legend = page.locator(".st-key-ex_map .legend").text_content()  # an SVG group
    assert all(str(k) in legend for k in range(10))


# Page coordinates of one test sample's marker, from plotly's own axis mapping.
POINT = """(idx) => {
  const gd = document.querySelector('.st-key-ex_map .js-plotly-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect();
  for (const tr of gd._fullData) {
    const i = tr.customdata ? Array.from(tr.customdata).indexOf(idx) : -1;
    if (i >= 0) return [box.left + fl.xaxis._offset + fl.xaxis.l2p(tr.x[i]), box.top + fl.yaxis._offset + fl.yaxis.l2p(tr.y[i])];
  }
}"""


def test_clicking_a_point_on_the_map_selects_that_sample(page):
    x, y = page.evaluate(POINT, 42)
    page.mouse.click(x, y)
    page.wait_for_function("document.querySelector('.st-key-ex_idx input').value === '42'", timeout=30_000)
    page.wait_for_selector(driver.IDLE)
    assert page.locator("strong", has_text="Test sample #").first.inner_text() == "Test sample #42"

