"""Your own data in Chromium: each kind of file (a table, arrays, a zip of images, a time series) goes from the upload
box in the Explorer's "Your data" tab, through "Train on this data", to the Explorer's latent map of the new model.
Screenshots go to /tmp/data15_<kind>.png."""
from __future__ import annotations

import os

import pytest

from aeviz.bench import browser as driver
from aeviz.bench import datafiles
from aeviz.io import PRETRAINED

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason="chromium is not installed"),
              pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")]

FILES = {  # kind: file name, bytes, options as (widget label, choice)
    "table": ("parts.csv", datafiles.table_csv(120), [("Label column", "kind")]),
    "arrays": ("vectors.npz", datafiles.arrays_npz(120), []),
    "images": ("shapes.zip", datafiles.images_zip(60), []),
    "series": ("waves.csv", datafiles.series_csv(120, 32), [("Each line is", "a step or a series")]),
}


def open_your_data(page) -> None:
    """Open the model chooser and its "Your data" tab."""
    chooser = page.locator("[data-testid=stExpander]").filter(has_text="Choose a model").first
    if chooser.locator("details").first.get_attribute("open") is None:
        chooser.locator("summary").first.click()
    page.get_by_role("tab", name="Your data").click()
    page.locator("[data-testid=stFileUploader]").filter(has_text="Your data file").wait_for()


def choose(page, label: str, value: str) -> None:
    """Pick value in the selectbox or radio labelled label."""
    widget = page.locator("[data-testid=stSelectbox], [data-testid=stRadio]").filter(has_text=label).first
    if widget.get_attribute("data-testid") == "stRadio":
        widget.get_by_text(value, exact=True).click()
    else:
        widget.click()
        page.keyboard.type(value)  # the list is virtual: options far down are not in the page until filtered
        page.get_by_role("option", name=value, exact=True).click()
    page.wait_for_selector(driver.IDLE)


def upload_and_train(page, name: str, raw: bytes, options, timeout_s: float = 240) -> str:
    """Upload a file, set its options, press "Train on this data" and wait for the new model's map; its name."""
    box = page.locator("[data-testid=stFileUploader]").filter(has_text="Your data file")
    box.locator("input[type=file]").set_input_files(files=[{"name": name, "mimeType": "application/octet-stream",
                                                            "buffer": raw}])
    page.get_by_text(f"Reading {name}").wait_for(timeout=60_000)
    page.wait_for_selector(driver.IDLE)
    for label, value in options:  # a text label column is refused until it is picked as the label: that is fine
        choose(page, label, value)
    page.get_by_text(f"Your file '{name}'").wait_for(timeout=60_000)
    page.get_by_role("button", name="Train on this data").click()
    header = page.locator("h4").filter(has_text=f"ae-mlp-z2-{name.rsplit('.', 1)[0]}-")  # the new model's
    header.first.wait_for(timeout=timeout_s * 1000)
    page.wait_for_selector(driver.MAP, timeout=60_000)
    page.wait_for_selector(driver.IDLE, timeout=60_000)
    return header.first.inner_text().split(" ")[0].strip("`")


@pytest.fixture(scope="module")
def page(chromium, app_url, open_page):
    page = open_page(chromium, f"{app_url}/", driver.MAP, width=1500, height=1500).page
    yield page
    page.close()


def test_each_kind_of_file_goes_from_upload_to_the_explorer_map(page):
    trained = []
    for kind, (name, raw, options) in FILES.items():
        open_your_data(page)
        model = upload_and_train(page, name, raw, options)
        assert model.startswith("ae-mlp-z2-") and model not in trained, (kind, model)
        trained.append(model)
        assert page.locator("[data-testid=stException]").count() == 0, kind
        page.wait_for_selector(".st-key-ex_map-box .aeviz-mode-map[data-drawn='1'] canvas", timeout=30_000)
        page.locator("h4").filter(has_text=model).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=f"/tmp/data15_{kind}.png")
    assert len(set(trained)) == len(FILES)
