"""The latent component without a browser (AppTest): each view renders a weights carrier per model (once per page)
and a view that names them by hash, returns its default, and returns what the browser committed once session_state
has it."""
from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

SCRIPT = """
import json
import re
import numpy as np
import streamlit as st
import torch
import aeviz
from aeviz.webmodel import exported
from aeviz.ui.components import latent

@st.cache_resource
def model(latent_dim, objective="vanilla"):
    torch.manual_seed(0)
    return aeviz.build(aeviz.ModelConfig(objective=objective, latent_dim=latent_dim, dataset="digits",
                                         input_shape=(1, 8, 8), hidden=(16, 8))).eval()

mode = st.session_state.get("mode", "pad")
if st.session_state.pop("lost", False):  # what the view's "missing" trigger does: the page never got the weights
    latent._resend(sorted(st.session_state[latent.SENT]), [exported(model(2)), exported(model(2, "variational"))], "v")
if st.session_state.get("move_to") and "v" in st.session_state:  # Python moves the point before the view renders
    st.session_state["v"]["z"] = st.session_state.pop("move_to")
if mode == "pad":
    v = latent.latent_pad([exported(model(2)), exported(model(2, "variational"))], key="v", x_range=(-3, 3),
                          y_range=(-2, 2), z=(0.5, -0.5), codes=np.zeros((4, 2)), labels=[0, 1, 2, 3])
elif mode == "sliders":
    v = latent.latent_sliders(exported(model(4)), key="v")
elif mode == "path":
    v = latent.latent_path(exported(model(4)), key="v", start=[0, 0, 0, 0], end=[1, 1, 1, 1], method="spherical")
elif mode == "temperature":
    v = latent.temperature_grid(exported(model(4)), key="v", eps=np.ones((6, 4)), temperature=0.8)
elif mode == "denoise":
    v = latent.denoise_live(exported(model(4, "variational"), encoder=True), key="v", image=np.zeros((1, 8, 8)),
                            noise=np.ones((1, 8, 8)), level=0.25)
elif mode == "some-sliders":
    v = latent.latent_sliders(exported(model(4)), key="v", z=[1, 2, 3, 4], lo=[-1, -2, -3, -4], hi=5, dims=[2, 0])
elif mode == "pad-of-16":
    v = latent.latent_pad(exported(model(4)), key="v", x_range=(-3, 3), y_range=(-3, 3))
st.write(f"value={json.dumps(v)}")
"""

DEFAULTS = {"pad": ("z", [0.5, -0.5], [1.25, 0.75]), "sliders": ("z", [0.0] * 4, [1.0, 0.0, -1.0, 2.0]),
            "path": ("t", 0.5, 0.9), "temperature": ("temperature", 0.8, 1.6), "denoise": ("level", 0.25, 0.6)}


def app(mode: str) -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    at.session_state["mode"] = mode
    return at.run()


def value(at: AppTest):
    return json.loads(next(m.value for m in at.markdown if m.value.startswith("value=")).split("=", 1)[1])


def views(at: AppTest) -> list[dict]:
    """The view element's JSON data (the carriers hold bytes)."""
    return [json.loads(e.proto.json or e.proto.mixed.json) for e in at.get("bidi_component")
            if e.proto.WhichOneof("data") in ("json", "mixed")]


@pytest.mark.parametrize("mode", list(DEFAULTS))
def test_a_view_returns_its_default_then_the_committed_value(mode):
    name, default, committed = DEFAULTS[mode]
    at = app(mode)
    assert not at.exception
    assert value(at) == default
    carriers = [e for e in at.get("bidi_component") if e.proto.WhichOneof("data") == "bytes"]
    (view,) = views(at)
    assert view["mode"] == mode and view["state"] == name and view["value"] == default
    assert sorted(set(view["models"])) == sorted({json.loads(c.proto.bytes[8:8 + int.from_bytes(
        c.proto.bytes[:8], "little")])["__metadata__"]["hash"] for c in carriers})
    at.session_state["v"] = {name: committed}  # what setStateValue(name, committed) does in the browser
    at.run()
    assert not at.exception
    assert value(at) == committed
    assert views(at)[0]["value"] == committed  # the browser is told the committed value back


def test_python_moves_the_point_by_writing_the_state_before_the_view_renders():
    at = app("pad")
    at.session_state["move_to"] = [2.0, 1.0]
    at.run()
    assert not at.exception
    assert value(at) == [2.0, 1.0] and views(at)[0]["value"] == [2.0, 1.0]
    at.run()  # and it stays there: it is the component's state now, not a one-off
    assert value(at) == [2.0, 1.0]


def test_a_pad_of_two_models_ships_two_carriers_and_the_codes():
    at = app("pad")
    assert len([e for e in at.get("bidi_component") if e.proto.WhichOneof("data") == "bytes"]) == 2
    view = views(at)[0]
    # the codes travel as JSON text, made once per content (the page parses it): not 4,500 numbers per release
    assert view["codes"] == "[0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0]" and view["labels"] == "[0,1,2,3]"
    assert json.loads(view["codes"]) == [0.0] * 8 and json.loads(view["labels"]) == [0, 1, 2, 3]
    assert view["titles"] == ["vanilla mlp, z=2", "variational mlp, z=2"]
    assert view["x_range"] == [-3.0, 3.0] and view["sample_shape"] == [1, 8, 8]


def carriers(at: AppTest) -> list[str]:
    return sorted(json.loads(c.proto.bytes[8:8 + int.from_bytes(c.proto.bytes[:8], "little")])["__metadata__"]["hash"]
                  for c in at.get("bidi_component") if c.proto.WhichOneof("data") == "bytes")


def test_weights_are_sent_once_per_page_and_again_when_the_page_lacks_them():
    at = app("pad")
    sent = carriers(at)
    assert len(sent) == 2 and sorted(at.session_state["latent::sent"]) == sent
    at.session_state["v"] = {"z": [1.0, 1.0]}
    at.run()  # the page holds both models: the run mounts the view alone, which still names them
    assert not at.exception and carriers(at) == [] and sorted(views(at)[0]["models"]) == sent
    at.session_state["lost"] = True  # the view asked for them again (its trigger "missing")
    at.run()
    assert not at.exception and carriers(at) == sent and value(at) == [1.0, 1.0]


def test_sliders_show_chosen_dimensions_with_their_own_ranges():
    at = app("some-sliders")
    assert not at.exception and value(at) == [1.0, 2.0, 3.0, 4.0]
    view = views(at)[0]
    assert view["dims"] == [2, 0] and view["lo"] == [-1.0, -2.0, -3.0, -4.0] and view["hi"] == [5.0] * 4


def test_a_pad_refuses_a_model_with_more_than_two_latent_dimensions():
    at = app("pad-of-16")
    assert at.exception and "2-D latent" in at.exception[0].message


CHARTS = """
import numpy as np
import streamlit as st
from aeviz.ui.components import charts

xy = np.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]])
charts.latent_map(key="m", xy=xy, labels=np.array([0, 1, 1]), label_names=("a", "b"), x_range=(-2, 2),
                  y_range=(-1, 3), ring=1)
st.session_state["clicked"] = charts.new_click("m", (st.session_state.get("m") or {}).get("selected"))
counts, edges = np.histogram([0.1, 0.2, 0.2, 0.9], bins=4, range=(0, 1))
charts.histogram(key="h", counts=counts, edges=edges, title="t", x_title="x")
bad = st.session_state.get("bad")
if bad == "xy":
    charts.latent_map(key="b", xy=np.zeros((3, 3)), x_range=(0, 1), y_range=(0, 1))
if bad == "range":
    charts.latent_map(key="b", xy=xy, x_range=(1, 1), y_range=(0, 1))
if bad == "edges":
    charts.histogram(key="b", counts=[1, 2], edges=[0, 1])
"""


def _chart(at, mode: str) -> dict:
    return next(d for d in (json.loads(e.proto.json) for e in at.get("bidi_component")) if d["mode"] == mode)


def test_the_canvas_charts_get_their_data_and_a_click_counts_once():
    at = AppTest.from_string(CHARTS).run()
    assert not at.exception
    m = _chart(at, "map")
    assert json.loads(m["xy"]) == [0, 0, 1, 2, -1, 0.5] and json.loads(m["labels"]) == [0, 1, 1]
    assert m["label_names"] == ["a", "b"] and m["x_range"] == [-2, 2] and m["value"] == 1 and m["image"] == ""
    bars = _chart(at, "bars")
    assert bars["counts"] == [3, 0, 0, 1] and bars["edges"] == [0, 0.25, 0.5, 0.75, 1]
    assert at.session_state["clicked"] is None
    at.session_state["m"] = {"selected": {"i": 2, "n": 1}}
    assert at.run().session_state["clicked"] == 2
    assert at.run().session_state["clicked"] is None  # the browser sends the same click again: not a new one
    at.session_state["m"] = {"selected": {"i": 2, "n": 2}}  # the same point, clicked again
    assert at.run().session_state["clicked"] == 2


@pytest.mark.parametrize("bad, said", [("xy", r"the map needs \(N, 2\) codes, not \(3, 3\)"),
                                       ("range", r"the map's ranges must be wider than a point, not \(1, 1\) x \(0, 1\)"),
                                       ("edges", "2 edges for 2 bars; a histogram has one edge more than bars")])
def test_the_canvas_charts_refuse_data_they_cannot_draw(bad, said):
    at = AppTest.from_string(CHARTS)
    at.session_state["bad"] = bad
    at.run()
    assert len(at.exception) == 1 and re.search(said, at.exception[0].message)
