"""The real app in headless Chromium: it loads, a latent slider moves by keyboard, the decoded image changes."""
from __future__ import annotations

import os
import time

import pytest

from aeviz import bench_ui
from aeviz.io import PRETRAINED

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(bench_ui.CHROMIUM), reason="chromium is not installed"),
              pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")]


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    port = bench_ui.free_port()
    server = bench_ui.start_server(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=bench_ui.CHROMIUM, args=bench_ui.CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            bench_ui.goto_when_up(page, f"http://127.0.0.1:{port}/", time.perf_counter() + 120)
            page.wait_for_selector(bench_ui.MAP, timeout=180_000)
            page.wait_for_selector(bench_ui.IDLE, timeout=180_000)
            yield page
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_latent_slider_moved_by_keyboard_changes_the_decoded_image(page, tmp_path):
    decoded = page.locator(bench_ui.DECODED)
    before_src, before_code = decoded.get_attribute("src"), page.locator(".st-key-ex_decoded code").inner_text()
    thumb = page.locator(bench_ui.SLIDER).filter(has_text="z1").locator("input[type=range]")
    value = float(thumb.get_attribute("aria-valuetext"))
    thumb.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.querySelector({bench_ui.DECODED!r}).src !== {before_src!r}", timeout=30_000)
    page.wait_for_selector(bench_ui.IDLE)
    assert float(thumb.get_attribute("aria-valuetext")) > value
    assert page.locator(".st-key-ex_decoded code").inner_text() != before_code
    assert page.evaluate(f"document.querySelector({bench_ui.DECODED!r}).naturalWidth") >= 200  # upscaled, crisp
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_the_page_shows_no_exception_and_the_map_has_every_class(page):
    assert page.locator("[data-testid=stException]").count() == 0
    legend = page.locator(".st-key-ex_map .legend").text_content()  # an SVG group
    assert all(str(k) in legend for k in range(10))
