"""Fixtures shared by the page tests."""
from __future__ import annotations

import base64
import functools
import json
from unittest import mock

import numpy as np
import pytest


@pytest.fixture
def slider_end():
    """slider -> the value a browser sends when a float slider is dragged (or End-keyed) to its right end.

    react-stately snaps to the last whole step from min and rounds it to the step's precision (as many places as
    the step's shortest text has characters after the point); AppTest would send max itself, which hides a
    range that is not a whole number of short steps: the browser's value then overshoots max and Streamlit
    resets the slider.
    """
    def end(slider) -> float:
        text = repr(float(slider.step))
        places = len(text) - text.index(".") if "." in text and "e" not in text else 0
        scale = 10.0 ** places
        return round((slider.min + round((slider.max - slider.min) / slider.step) * slider.step) * scale) / scale
    return end


@pytest.fixture
def fragment_rerun():
    """(at, widget, value) -> at: set a widget that lives in a fragment and rerun as the browser does: that fragment
    only, plus any fragment its callback names with st.rerun([...]).

    AppTest's own run() reruns the whole page, which would redraw, and so hide, an element outside the fragment
    that the browser goes on showing with old values. After this run `at` holds only what the run drew.
    """
    def rerun(at, widget, value, timeout: float = 120):
        from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
        from streamlit.testing.v1 import local_script_runner

        fragment = at._session_state._state._new_widget_state.widget_metadata[widget.id].fragment_id
        assert fragment, f"{widget.key} is not inside a fragment"
        widget.set_value(value)
        with mock.patch.object(local_script_runner, "RerunData", functools.partial(RerunData, fragment_id=fragment)):
            return at.run(timeout=timeout)
    return rerun


@pytest.fixture
def charts():
    """(at, mode) -> the data the page gave its browser chart of that mode ("map", "bars"; aeviz.ui.components.charts),
    with the map's codes and labels parsed; None if the page has none."""
    def read(at, mode: str) -> dict | None:
        for e in at.get("bidi_component"):
            if e.proto.WhichOneof("data") in ("json", "mixed"):
                data = json.loads(e.proto.json or e.proto.mixed.json)
                if data.get("mode") == mode:
                    if mode == "map":
                        data["xy"] = np.reshape(json.loads(data["xy"]), (-1, 2))
                        data["labels"] = np.asarray(json.loads(data["labels"]), int)
                    return data
        return None
    return read


@pytest.fixture
def traces():
    """chart -> {trace name: (x, y)} of an AppTest plotly chart, as the browser gets them (the JSON spec may hold
    arrays as base64 bytes)."""
    def values(data) -> np.ndarray:
        if isinstance(data, dict):
            return np.frombuffer(base64.b64decode(data["bdata"]), np.dtype(data["dtype"]))
        return np.asarray(data, float)

    def read(chart) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {t.get("name"): (values(t["x"]), values(t["y"])) for t in json.loads(chart.proto.spec)["data"]}
    return read


@pytest.fixture
def room():
    """(code, teacher secret) of a new room in the test server's store."""
    from aeviz.ui import classroom

    r, secret = classroom.store().open_room()
    return r.code, secret
