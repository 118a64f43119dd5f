"""The real app in headless Chromium: it loads, a drag on the latent pad decodes in the browser with no message to
the server and commits once on release, the canvas map names a point under the pointer, hides a class from its
legend and selects the sample clicked."""
from __future__ import annotations

import os
import re

import pytest

from aeviz.bench import browser as driver
from aeviz.io import PRETRAINED

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed"),
              pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")]


@pytest.fixture(scope="module")
def app(chromium, app_url, open_page):
    opened = open_page(chromium, f"{app_url}/", driver.MAP, f"{driver.PAD_VIEW}[data-ready='1']")
    yield opened
    opened.page.close()


def committed_code(page) -> str:
    """The server's "z = (…)" line under the pad: what the page knows of the code."""
    return page.locator("[data-testid=stMarkdownContainer] p", has_text=re.compile(r"^z = ")).locator("code").inner_text()


def test_a_drag_on_the_pad_decodes_in_the_browser_and_commits_once(app, tmp_path):
    page, sent, errors = app
    view, pad = page.locator(driver.PAD_VIEW), page.locator(driver.PAD)
    before = committed_code(page)
    frames, commits = int(view.get_attribute("data-frames")), int(view.get_attribute("data-commits"))
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    x, y = box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45
    page.mouse.move(x, y)
    page.mouse.down()
    sent.clear()
    for k in range(1, 9):
        page.mouse.move(x + 8 * k, y + 6 * k, steps=2)
    view.evaluate("(v, n) => new Promise((ok) => { const f = () => (Number(v.dataset.frames) > n ? ok() : "
                  "requestAnimationFrame(f)); f(); })", frames)
    drawn, during = int(view.get_attribute("data-frames")) - frames, len(sent)
    readout = page.locator(".st-key-ex_pad-box .aeviz-readout").inner_text()
    page.screenshot(path=str(tmp_path / "mid-drag.png"))
    page.mouse.up()

    assert drawn > 0, "the decoded image did not follow the pointer"
    assert during == 0, f"{during} websocket messages left the browser during the drag"
    assert int(view.get_attribute("data-commits")) == commits + 1, "one commit on release"
    page.locator("[data-testid=stMarkdownContainer] p", has_text=re.compile(r"^z = ")).locator("code").filter(
        has_not_text=before).wait_for(timeout=30_000)
    page.wait_for_selector(driver.IDLE, timeout=30_000)
    z1, z2 = (float(v.split("=")[1]) for v in readout.split(","))
    assert committed_code(page) == f"({z1:.2f}, {z2:.2f})"  # what the student saw is what the page got
    assert len(sent) == 1, "the release reruns once"
    assert errors == []


def test_the_page_shows_no_exception_and_the_map_has_every_class(app):
    page, _, _ = app
    assert page.locator("[data-testid=stException]").count() == 0
    legend = page.locator(".st-key-ex_map-box .aeviz-legend").inner_text()
    assert [k.strip() for k in legend.split()] == [str(k) for k in range(10)]
    # plotly.js (a third of the page's load) is not part of the first screen: every chart on it is a canvas
    assert page.locator(".js-plotly-plot").count() == 0
    assert page.evaluate("performance.getEntriesByType('resource').filter(e => /plotly/i.test(e.name)).length") == 0
    assert page.locator(".st-key-ex_rec_hist-box .aeviz-mode-bars canvas").count() == 1


MAP_VIEW = ".st-key-ex_map-box .aeviz-mode-map"


def map_point(page, i: int) -> tuple[float, float]:
    """Where test sample i is drawn on the canvas map, in page coordinates (the map scrolled into view)."""
    view = page.locator(MAP_VIEW)
    view.scroll_into_view_if_needed()
    return view.evaluate("(v, i) => v.pointAt(i)", i)


def click_sample(page, i: int) -> None:
    """Click test sample i on the map and wait for the page to select it."""
    page.mouse.click(*map_point(page, i))
    page.wait_for_function(f"document.querySelector('.st-key-ex_idx input').value === '{i}'", timeout=30_000)
    page.wait_for_selector(driver.IDLE)


def test_hovering_a_point_names_it_and_a_legend_entry_hides_its_class(app):
    page, _, _ = app
    x, y = map_point(page, 42)
    page.mouse.move(x, y)
    tip = page.locator(f"{MAP_VIEW} .aeviz-tip")
    tip.wait_for(state="visible", timeout=5_000)
    assert re.fullmatch(r"class \d · test sample #42", tip.inner_text())
    label = tip.inner_text().split(" · ")[0].removeprefix("class ")
    key = page.locator(f"{MAP_VIEW} .aeviz-key", has_text=re.compile(rf"^{label}$"))
    key.click()
    assert "aeviz-off" in key.get_attribute("class")
    page.mouse.move(x, y + 1)
    page.mouse.move(x, y)
    assert tip.is_hidden() or not tip.inner_text().endswith("#42")  # a hidden class's points are not there
    key.click()
    assert "aeviz-off" not in key.get_attribute("class")


def test_clicking_a_point_on_the_map_selects_that_sample_and_moves_the_pad_there(app):
    page, _, _ = app
    click_sample(page, 42)
    assert page.locator("strong", has_text="Test sample #").first.inner_text() == "Test sample #42"
    code = page.get_by_text(re.compile(r"^Its code z = ")).first.inner_text().split("= ")[1]
    assert committed_code(page) == code  # the pad starts at the selected sample's code
    a, b = code.strip("()").split(", ")
    assert page.locator(".st-key-ex_pad-box .aeviz-readout").inner_text() == f"z₁ = {a}, z₂ = {b}"


def test_the_same_point_clicked_again_after_the_map_was_rebuilt_selects_it_again(app):
    """A click carries a number unique in the page: a map rebuilt (another background) and clicked on the point the
    page last heard of still counts, after the number box chose another sample."""
    page, _, _ = app
    click_sample(page, 42)
    box = page.locator(".st-key-ex_idx input")
    box.fill("7")
    box.press("Enter")
    page.wait_for_function("document.querySelector('.st-key-ex_idx input').value === '7'", timeout=30_000)
    page.wait_for_selector(driver.IDLE)
    before = page.locator(MAP_VIEW).element_handle()
    page.locator(".st-key-ex_bg").get_by_text("nothing", exact=True).click()
    before.wait_for_element_state("hidden", timeout=30_000)  # the map was rebuilt: a new view, a new element
    page.wait_for_selector(f"{MAP_VIEW}[data-drawn='1']", timeout=30_000)
    page.wait_for_selector(driver.IDLE)
    click_sample(page, 42)
    assert page.locator("strong", has_text="Test sample #").first.inner_text() == "Test sample #42"
    before = page.locator(MAP_VIEW).element_handle()
    page.locator(".st-key-ex_bg").get_by_text("decoded images", exact=True).click()  # as the other tests found it
    before.wait_for_element_state("hidden", timeout=30_000)
    page.wait_for_selector(f"{MAP_VIEW}[data-drawn='1']", timeout=30_000)
    page.wait_for_selector(driver.IDLE)
