"""state.per_model: copied values by default; copy=False hands every session the same object, arrays read-only."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import numpy as np
    import streamlit as st

    from aeviz.ui import state

    @state.per_model(copy=False)
    def shared_view(model):
        return {"z": np.arange(3.0), "rows": [np.ones(2)]}

    @state.per_model
    def copied_view(model):
        return {"z": np.arange(3.0)}

    a, b = shared_view("ae-mlp-z2"), shared_view("ae-mlp-z2")
    c, d = copied_view("ae-mlp-z2"), copied_view("ae-mlp-z2")
    try:
        a["z"][0] = 5.0
        written = True
    except ValueError:
        written = False
    st.session_state["out"] = (a is b, written, a["rows"][0].flags.writeable, c is d, c["z"].flags.writeable,
                               float(a["z"][0]))


def test_a_shared_value_is_handed_out_as_it_is_and_cannot_be_changed_in_place():
    at = AppTest.from_function(_script, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.session_state["out"] == (True, False, False, False, True, 0.0)
    other = AppTest.from_function(_script, default_timeout=60).run()  # another session: the same value, unchanged
    assert other.session_state["out"][-1] == 0.0
