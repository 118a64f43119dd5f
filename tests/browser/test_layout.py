"""What a class sees on a laptop (1280 px wide) and on a projector (1920 px): nothing cut off, nothing overlapping."""
from __future__ import annotations

import os

import pytest

from aeviz.bench import browser as driver

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed")]

# Width of each display equation's content beyond its box, in pixels (a few are italic overhang, not a cut).
OVERFLOW = """() => Array.from(document.querySelectorAll('.katex-display')).map(
  e => [e.textContent.slice(0, 30), e.scrollWidth - e.clientWidth])"""
# How far each image reaches past the right edge of its column (or of the page's main block), in pixels.
IMAGES = """() => Array.from(document.querySelectorAll('[data-testid=stImage] img')).map(img => {
  const box = img.closest('[data-testid=stColumn]') || img.closest('[data-testid=stMainBlockContainer]');
  return [img.alt || img.src.slice(-20), img.getBoundingClientRect().right - box.getBoundingClientRect().right];
})"""
# Boxes of the labels in the far-away inputs chart.
LABELS = """() => Array.from(document.querySelectorAll('.st-key-anomaly_probe_hist g.annotation')).map(g => {
  const r = g.getBoundingClientRect(); return [g.textContent, r.left, r.top, r.right, r.bottom];
})"""


@pytest.fixture(scope="module")
def open_at(chromium, app_url, open_page):
    """open_at(path, width, height, wait_for) -> a new page of that size on the app's /path, once wait_for is there
    and the app is idle."""
    return lambda path, width, height, wait_for: open_page(chromium, f"{app_url}/{path}", wait_for, width=width,
                                                           height=height).page


@pytest.mark.parametrize("path", ["imputation", "compare", "anomaly"])
def test_every_equation_fits_its_column_on_a_laptop(open_at, path):
    page = open_at(path, 1280, 900, ".katex-display")
    try:
        cut = [(text, px) for text, px in page.evaluate(OVERFLOW) if px > 4]
        assert not cut, f"equations cut off at the right edge: {cut}"
    finally:
        page.close()


@pytest.mark.parametrize("path", ["augmentation", "imputation"])
def test_every_image_fits_its_column_on_a_laptop(open_at, path):
    """The augmentation grid was drawn 700 px wide in a 560 px column: its right end was cut off."""
    page = open_at(path, 1280, 900, "[data-testid=stImage] img")
    try:
        images = page.evaluate(IMAGES)
        assert len(images) >= 3
        cut = [(name, px) for name, px in images if px > 1]
        assert not cut, f"images cut off at the right edge of their column: {cut}"
    finally:
        page.close()


def _overlap(a, b) -> bool:
    return a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]


# The far-away inputs the Failure-modes tab probes by default (letters "AKX"): one labelled line each.
PROBES = {"Gaussian noise", "blank", "inverted digit", "letter A", "letter K", "letter X"}
# The anomaly page's own tab: the sidebar's model chooser has tabs too, hidden in its closed expander, so a bare
# [role=tab] waits for an invisible one.
FAILURE_TAB = "[data-testid=stTab]:has-text('Failure modes')"


@pytest.mark.parametrize("width,height", [(1280, 900), (1920, 1080)])
def test_far_away_input_labels_do_not_overlap(open_at, width, height):
    page = open_at("anomaly", width, height, FAILURE_TAB)
    try:
        page.locator(FAILURE_TAB).click()
        page.wait_for_selector(".st-key-anomaly_probe_hist g.annotation", timeout=180_000)
        page.wait_for_selector(driver.IDLE, timeout=180_000)
        labels = page.evaluate(LABELS)
        assert sorted(text for text, *_ in labels) == sorted(PROBES)
        assert all(right - left > 10 and bottom - top > 10 for _, left, top, right, bottom in labels), labels  # drawn
        hits = [(a[0], b[0]) for i, a in enumerate(labels) for b in labels[i + 1:] if _overlap(a, b)]
        assert not hits, f"labels drawn over each other: {hits}"
    finally:
        page.close()
