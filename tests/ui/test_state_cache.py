"""state.per_model: copied values by default; copy=False hands every session the same object, arrays read-only."""
from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit.testing.v1 import AppTest

from aeviz.ui import state


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


def test_a_shared_value_is_found_again_by_one_lookup_until_the_caches_are_cleared():
    """A second call with the same plain arguments does not go through Streamlit's cache (which hashes every
    argument): emptying Streamlit's cache alone does not make it again; state.clear_caches() does. Arguments
    that are arrays go to Streamlit's cache, which hashes their content."""
    made = []

    @state.per_model(copy=False)
    def view(model, k):
        made.append(k)
        return {"k": k}

    first = view("ae-mlp-z2", 1)
    st.cache_resource.clear()
    assert view("ae-mlp-z2", 1) is first and made == [1]
    assert view("ae-mlp-z2", True)["k"] is True and made == [1, True]  # 1 == True, but not the same argument
    assert view("ae-mlp-z2", k=1) is not first and len(made) == 3  # a keyword is another call
    arr = view("ae-mlp-z2", np.arange(3.0))
    assert view("ae-mlp-z2", np.arange(3.0)) is arr and len(made) == 4  # equal content, made once
    state.clear_caches()
    assert view("ae-mlp-z2", 1) is not first and made[-1] == 1 and len(made) == 5


def test_memo_keeps_a_shared_models_value_for_everyone_and_a_students_own_in_their_session():
    made = []
    shared = state.memo("ae-mlp-z2", ("order", "worst first"), lambda: made.append(1) or ["shared"])
    assert state.memo("ae-mlp-z2", ("order", "worst first"), lambda: made.append(1) or ["other"]) is shared
    assert state.memo("ae-mlp-z2", ("order", "best first"), lambda: ["best"]) == ["best"]  # another key
    assert made == [1]
    mine = state.ModelRef("mine:abc", "mine", "abc", state.MINE)
    at = AppTest.from_function(_memo_script, args=(mine,), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.session_state["out"] == (1, True)  # made once in this session, then found in it
    other = AppTest.from_function(_memo_script, args=(mine,), default_timeout=60).run()
    assert other.session_state["out"] == (1, True)  # another session makes its own


def _memo_script(mine):
    import streamlit as st

    from aeviz.ui import state

    made = []
    a = state.memo(mine, ("x",), lambda: made.append(1) or {"v": 1})
    b = state.memo(mine, ("x",), lambda: made.append(1) or {"v": 2})
    st.session_state["out"] = (len(made), a is b)


def test_the_zoo_is_read_once_and_found_by_a_lookup_until_forgotten():
    cards, refs = state.cards(), state._zoo_refs()
    assert "ae-mlp-z2" in cards and refs["ae-mlp-z2"].digest == state.ref("ae-mlp-z2").digest
    st.cache_resource.clear()  # Streamlit's cache alone: the lookups still hold them
    assert state.cards() is cards and state._zoo_refs() is refs
    state.forget_zoo()
    again = state.cards()
    assert again is not cards and list(again) == list(cards)  # read again, the same zoo
