"""A real mouse drag on the latent pad in Chromium: the image follows the pointer with no message to the server,
and the release sends one value, which reruns the app once."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import aeviz
from aeviz.bench import browser as driver
from aeviz.io import PRETRAINED

MODEL = PRETRAINED / "ae-mlp-z2.safetensors"
X_RANGE, Y_RANGE = (-12.0, 28.0), (-18.0, 12.0)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(driver.CHROMIUM), reason=f"no Chromium at {driver.CHROMIUM}"),
              pytest.mark.skipif(not MODEL.exists(), reason="the ae-mlp-z2 checkpoint is missing")]

APP = f"""
import json
import aeviz
import numpy as np
import streamlit as st
from aeviz.webmodel import exported
from aeviz.ui.components.latent import latent_pad

st.session_state.runs = st.session_state.get("runs", 0) + 1
st.markdown(f"runs: `{{st.session_state.runs}}`")
model = st.cache_resource(aeviz.load)({str(MODEL)!r})
codes = np.random.default_rng(0).normal(0, 6, size=(300, 2))
z = latent_pad(exported(model), key="pad", x_range={X_RANGE}, y_range={Y_RANGE}, codes=codes,
               labels=np.arange(300) % 10)
st.markdown(f"committed: `{{json.dumps(z)}}`")
"""

PAD = ".st-key-pad-box .aeviz-pad"
VIEW = ".st-key-pad-box .aeviz-latent"
IMAGE = ".st-key-pad-box canvas.aeviz-img"


@pytest.fixture(scope="module")
def app(tmp_path_factory, chromium, open_page):
    script = tmp_path_factory.mktemp("drag") / "app.py"
    script.write_text(APP)
    with driver.served(script) as (_, url):
        opened = open_page(chromium, f"{url}/", f"{VIEW}[data-ready='1'][data-frames='1']", width=1100, height=800)
        yield opened
        opened.page.close()


def code_text(page, label: str) -> str:
    return page.locator("[data-testid=stMarkdownContainer] p", has_text=f"{label}:").locator("code").inner_text()


def readout_of(page) -> str:
    return page.locator(".st-key-pad-box .aeviz-readout").inner_text()


def test_a_drag_decodes_in_the_browser_and_commits_once_on_release(app):
    page, sent, errors = app
    view, pad = page.locator(VIEW), page.locator(PAD)
    runs = int(code_text(page, "runs"))
    assert json.loads(code_text(page, "committed")) == [0.0, 0.0]
    frames = int(view.get_attribute("data-frames"))
    box = pad.bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    sent.clear()

    page.mouse.move(x, y)
    page.mouse.down()
    start = [float(v.split("=")[1]) for v in readout_of(page).split(",")]
    for k in range(1, 6):
        page.mouse.move(x + 18 * k, y - 12 * k, steps=3)
    # the last move's frame is drawn on the next animation frame: wait for it, then look before releasing
    view.evaluate("(v, n) => new Promise((ok) => { const f = () => (Number(v.dataset.frames) > n ? ok() : "
                  "requestAnimationFrame(f)); f(); })", frames)
    drawn = int(view.get_attribute("data-frames")) - frames
    during = len(sent)
    readout = readout_of(page)
    page.mouse.up()

    assert drawn > 0, "the image did not follow the pointer"
    assert during == 0, f"{during} websocket messages left the browser during the drag"
    assert view.get_attribute("data-commits") == "1"

    committed = page.locator("[data-testid=stMarkdownContainer] p", has_text="committed:").locator("code")
    committed.filter(has_not_text="[0.0, 0.0]").wait_for(timeout=30_000)
    page.wait_for_selector(driver.IDLE, timeout=30_000)
    assert int(code_text(page, "runs")) == runs + 1, "the release should rerun the app exactly once"
    assert len(sent) >= 1
    z = json.loads(code_text(page, "committed"))
    assert z[0] > start[0] + 1 and z[1] > start[1] + 1  # dragged right and up: z1 and z2 grew
    assert readout == f"z₁ = {z[0]:.2f}, z₂ = {z[1]:.2f}"  # what the user saw is what Python got

    # The pixels on the canvas are the model's decoding of the committed z, to within one grey level.
    pixels = np.array(page.locator(IMAGE).evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)")).reshape(28, 28, 4)
    with torch.no_grad():
        want = aeviz.load(MODEL).decode(torch.tensor([z], dtype=torch.float32))[0, 0].numpy()
    assert np.abs(pixels[..., 0].astype(int) - np.round(want * 255).astype(int)).max() <= 1
    assert errors == []


def test_arrow_keys_move_the_point_and_commit_once_on_key_release(app):
    page, sent, errors = app
    view, pad = page.locator(VIEW), page.locator(PAD)
    page.wait_for_selector(driver.IDLE)
    runs, z0 = int(code_text(page, "runs")), json.loads(code_text(page, "committed"))
    commits = int(view.get_attribute("data-commits"))
    pad.focus()
    sent.clear()
    for _ in range(4):  # one key held down: a keydown, then auto-repeats
        page.keyboard.down("ArrowRight")
    held = (len(sent), int(view.get_attribute("data-commits")))
    page.keyboard.up("ArrowRight")
    assert held == (0, commits), "nothing is committed while the key is down"
    committed = page.locator("[data-testid=stMarkdownContainer] p", has_text="committed:").locator("code")
    committed.filter(has_not_text=json.dumps(z0)).wait_for(timeout=30_000)
    page.wait_for_selector(driver.IDLE, timeout=30_000)
    z = json.loads(code_text(page, "committed"))
    step = 0.02 * (X_RANGE[1] - X_RANGE[0])  # one press moves 2% of the axis
    assert z[0] == pytest.approx(min(z0[0] + 4 * step, X_RANGE[1])) and z[1] == pytest.approx(z0[1])
    assert int(code_text(page, "runs")) == runs + 1
    assert errors == []


LOST = f"""
import aeviz
import streamlit as st
from aeviz.webmodel import exported
from aeviz.ui.components import latent

st.session_state.runs = st.session_state.get("runs", 0) + 1
st.markdown(f"runs: `{{st.session_state.runs}}`")
web = exported(st.cache_resource(aeviz.load)({str(MODEL)!r}))
if st.session_state.runs == 1:  # as if this run's carrier had been cut short before it reached the page
    st.session_state.setdefault(latent.SENT, set()).add(web.hash)
latent.latent_pad(web, key="pad", x_range={X_RANGE}, y_range={Y_RANGE})
"""


def test_a_page_that_never_got_a_models_weights_asks_for_them_and_draws(tmp_path, chromium, open_page):
    """Weights are sent once per page; a view still waiting for them after a moment asks again (one rerun)."""
    script = tmp_path / "app.py"
    script.write_text(LOST)
    with driver.served(script) as (_, url):
        page, _, errors = open_page(chromium, f"{url}/", f"{VIEW}[data-ready='1'][data-frames='1']",
                                    width=1100, height=800, timeout_ms=60_000)
        assert int(code_text(page, "runs")) == 2  # the first run mounted no carrier; the view's trigger reran
        assert page.locator(VIEW).get_attribute("data-ready") == "1" and errors == []
        page.close()
