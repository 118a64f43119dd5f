"""The live-training panel: start, finish, stop, diverge, refuse; the model lands in the session."""
import json
import re
import time

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz.data import load


def _page(epochs: int, lr: float, bad: str):
    import streamlit as st

    import aeviz
    from aeviz.data import Dataset, load
    from aeviz.ui import training

    d = load("digits")
    if bad == "nan":  # a NaN pixel makes the very first loss NaN
        x = d.x_train.clone()
        x[:, 0, 0, 0] = float("nan")
        d = Dataset(d.name, x, d.y_train, d.x_test, d.y_test, d.kind, d.description, d.label_names)
    mc = aeviz.config_for("digits", hidden=(16,), latent_dim=3 if bad == "z3" else 2)
    if bad == "shape":
        mc = aeviz.config_for("mnist", hidden=(16,))
    tc = aeviz.TrainConfig(epochs=epochs, batch_size=256, lr=lr)
    result = training.train_with_progress(mc, tc, data=d, key="t", name="tiny")
    st.session_state["result_status"] = None if result is None else result[1].status


def _app(epochs=2, lr=1e-3, bad="") -> AppTest:
    return AppTest.from_function(_page, kwargs=dict(epochs=epochs, lr=lr, bad=bad), default_timeout=60)


def _wait(at: AppTest) -> None:
    """Let the background thread finish, then rerun as the poll fragment would."""
    at.session_state["t::job"].thread.join(timeout=60)
    at.run()


def test_train_runs_in_background_and_stores_the_model():
    at = _app().run()
    assert at.session_state["result_status"] is None and not at.success
    at.button(key="t::start").click().run()
    _wait(at)
    assert at.session_state["result_status"] == "finished"
    assert "Trained 2 epochs" in at.success[0].value and "session: tiny" in at.success[0].value
    models = at.session_state["session_models"]
    assert list(models) == ["session: tiny"]
    assert at.session_state["model"] == "session: tiny"  # picked for every page
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["test MSE"]) > 0 and metrics["epochs completed"] == "2"
    epochs, snaps = at.session_state["latent_history"]["session: tiny"]
    assert epochs == [0, 1, 2] and snaps.shape == (3, 360, 2)
    assert not np.allclose(snaps[0], snaps[-1])  # the map moved while training
    assert models["session: tiny"].history["epochs"] == [1, 2]
    curves = json.loads(at.get("plotly_chart")[-1].proto.spec)
    # a plain autoencoder's total is its reconstruction term: one line each, not a black one hidden under blue
    assert [t["name"] for t in curves["data"]] == ["recon = loss (train)", "recon = loss (test)"]
    assert (curves["layout"]["yaxis"]["type"], curves["layout"]["yaxis"]["exponentformat"]) == ("log", "power")


def test_stop_keeps_the_weights_trained_so_far():
    at = _app(epochs=3000).run()
    at.button(key="t::start").click().run()
    job = at.session_state["t::job"]
    while job.step < 3:
        time.sleep(0.01)
    assert at.button(key="t::stop").label == "Stop"  # the live fragment shows Stop while training
    assert re.match(r"Epoch \d+ of 3000 · step \d+ of \d+ · loss ", at.get("progress")[0].proto.text)
    at.run()
    live = json.loads(next(c for c in at.get("plotly_chart") if c.key == "t::live_loss").proto.spec)
    assert [t["name"] for t in live["data"]] == ["recon = loss"]
    assert (live["layout"]["yaxis"]["type"], live["layout"]["yaxis"]["exponentformat"]) == ("log", "power")
    at.button(key="t::stop").click().run()
    _wait(at)
    assert at.session_state["result_status"] == "stopped"
    assert "Stopped at epoch" in at.warning[0].value and "weights trained so far are kept" in at.warning[0].value
    model = at.session_state["session_models"]["session: tiny"]
    assert job.step < job.total
    assert not torch.equal(model.decoder[0].weight, aeviz.build(model.config).decoder[0].weight)


def test_nan_loss_is_one_sentence_and_the_page_keeps_working():
    at = _app(bad="nan").run()
    at.button(key="t::start").click().run()
    _wait(at)
    assert at.session_state["result_status"] == "diverged"
    assert "the loss became nan" in at.warning[0].value
    assert not at.exception


def test_a_dataset_that_does_not_fit_the_model_gets_one_sentence():
    at = _app(bad="shape").run()
    at.button(key="t::start").click().run()
    _wait(at)
    assert at.session_state["result_status"] is None
    assert at.error[0].value.startswith("The model expects samples of shape (1, 28, 28)")
    assert "session_models" not in at.session_state or not at.session_state["session_models"]


def test_snapshots_beyond_two_dimensions_are_sign_aligned_pca_maps():
    from aeviz.ui.training import map_2d

    rng = np.random.default_rng(0)
    z = (rng.normal(size=(200, 5)) * [5, 3, 1, 1, 1]).astype(np.float32)
    a = map_2d(z)
    b = map_2d(z, previous=-a)
    assert a.shape == (200, 2)
    np.testing.assert_allclose(b, -a, atol=1e-4)
    np.testing.assert_array_equal(map_2d(z[:, :2]), z[:, :2])


@pytest.fixture(autouse=True, scope="module")
def _digits_loaded():
    load("digits")  # the first load pays scikit-learn's import once for the module


def test_job_records_every_term_of_a_variational_model():
    from aeviz.ui.training import Job

    d = load("digits")
    mc = aeviz.config_for("digits", hidden=(16,), objective="variational")
    job = Job(mc, aeviz.TrainConfig(epochs=2, batch_size=256), d, "vae")
    job.run()
    assert job.error is None and job.done
    assert set(job.terms) == {"loss", "recon", "kl"}
    assert job.steps[0] == 1 and len(job.steps) == len(job.terms["kl"])
    assert job.result[0].metrics["epochs"] == 2 and job.history["test"]["kl"]
    assert job.result[0].metrics["nelbo"] > job.history["test"]["kl"][-1] > 0


def _picker_page():
    import streamlit as st

    from aeviz.ui import state

    state.sidebar()
    if st.button("pick", key="pick"):  # after the sidebar's selectbox ran: select_model must defer to a rerun
        state.select_model(st.session_state["target"])
        st.rerun()
    st.session_state["shown"] = state.current_key()


def test_select_model_after_the_picker_was_drawn_takes_effect_on_the_rerun():
    from aeviz import io

    names = [c.name for c in io.pretrained()] if io.PRETRAINED.is_dir() else []
    if len(names) < 2:
        pytest.skip("needs two pretrained models")
    at = AppTest.from_function(_picker_page, default_timeout=60)
    at.session_state["target"] = names[1]
    at.run()
    assert at.session_state["shown"] != names[1]
    at.button(key="pick").click().run()
    assert at.sidebar.selectbox(key="model").value == names[1] and at.session_state["shown"] == names[1]
    assert "model_next" not in at.session_state
