"""Tables in the Explorer: wine and breast-cancer render on every view, rows drawn as named bars in the file's units.

The models are the student's own (tiny, trained here for two epochs), so the page runs without the sidebar (see
tests/ui/test_explorer.py: AppTest cannot rerun a picker whose format_func reads session state).
"""
from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz.data import load
from aeviz.userdata import unscale

VIEWS = ("Reconstructions", "Traversal", "Interpolation", "Sampling (VAE)", "Latent history")
CASES = {"wine": dict(objective="variational", latent_dim=2), "breast-cancer": dict(latent_dim=4)}


def _page():
    from aeviz.ui.pages import explorer

    explorer.render()


@pytest.fixture(scope="module")
def models():
    out = {}
    for name, kw in CASES.items():
        mc = aeviz.config_for(name, hidden=(16,), recon="mse", **kw)
        out[name] = aeviz.train(mc, aeviz.TrainConfig(epochs=2, batch_size=32), load(name))[0]
    return out


def _app(give_model, model) -> AppTest:
    at = AppTest.from_function(_page, default_timeout=60)
    at.session_state["model"] = give_model(at, "table model", model)
    return at.run()


def _traces(chart) -> list:
    import plotly.io

    return list(plotly.io.from_json(chart.proto.spec).data)


def _array(v) -> np.ndarray:
    """A trace's numbers: plotly sends numpy arrays as base64 typed arrays."""
    import base64

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def _bars(at: AppTest, key: str) -> list:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key))
    return [t for t in _traces(chart) if t.type == "bar"]


@pytest.mark.parametrize("name", list(CASES))
def test_a_table_renders_on_every_explorer_view(name, models, give_model):
    at = _app(give_model, models[name])
    assert not at.exception, at.exception
    for view in VIEWS:
        at.session_state["ex_view"] = view
        at.run()
        assert not at.exception, (name, view, at.exception)
        assert at.error.len == 0, (name, view, [e.value for e in at.error])


@pytest.mark.parametrize("name", list(CASES))
def test_the_selected_row_is_drawn_as_named_bars_with_the_file_s_units(name, models, give_model):
    at = _app(give_model, models[name])
    data = load(name)
    bars = _bars(at, "ex_pair")
    columns = data.extras["preprocessing"]["columns"]
    assert [b.name for b in bars] == ["original x", "reconstruction x̂"]
    assert list(bars[0].x) == columns  # one bar per feature, named
    raw = unscale(data.x_test[0].numpy()[None], data.extras["preprocessing"])[0]
    shown = [float(t.split(" ")[0]) for t in bars[0].customdata]
    assert np.allclose(shown, raw, rtol=1e-3)  # hover: the file's units
    pre = data.extras["preprocessing"]["scaler"]
    z = (raw - np.asarray(pre["mean"])) / np.asarray(pre["std"])
    assert np.allclose(_array(bars[0].y), z, atol=1e-4)  # bar length: standardised
    table = next(df for df in at.dataframe if "original x" in df.value.columns)
    assert np.allclose(table.value["original x"], raw, rtol=1e-3)


def test_no_table_is_drawn_in_3d_and_the_3d_clouds_still_are(models, give_model):
    from aeviz.ui.pages.explorer import draw

    assert draw.kind(load("wine")) == draw.kind(load("breast-cancer")) == "table"
    assert draw.kind(load("swiss-roll")) == draw.kind(load("s-curve")) == "points"
    assert draw.kind(load("mnist")) == draw.kind(load("mnist-rows")) == "image"
    assert draw.kind(load("signals")) == "signal"
    at = _app(give_model, models["breast-cancer"])
    at.session_state["ex_view"] = "Traversal"
    at.run()
    charts = at.get("plotly_chart")
    assert charts and all(t.type != "scatter3d" for c in charts for t in _traces(c))
