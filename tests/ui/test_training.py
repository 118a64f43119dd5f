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


def _page(epochs: int, lr: float, bad: str, key: str = "t"):
    import streamlit as st

    import aeviz
    from aeviz.ui import state, training

    state.sidebar()  # as app.py draws it on every page: the student's models are found again here
    mc = aeviz.config_for("digits", hidden=(16,), latent_dim=2)
    if bad == "shape":  # a config whose samples are not the data's
        mc = aeviz.config_for("digits", hidden=(16,), input_shape=(1, 28, 28))
    tc = aeviz.TrainConfig(epochs=epochs, batch_size=256, lr=lr)
    model = training.train_with_progress(mc, tc, key=key, name="tiny")
    st.session_state["result_status"] = None if model is None else model.history["status"]


def _app(epochs=2, lr=1e-3, bad="", key="t") -> AppTest:
    return AppTest.from_function(_page, kwargs=dict(epochs=epochs, lr=lr, bad=bad, key=key), default_timeout=60)


def _wait(at: AppTest, key: str = "t") -> None:
    """Let the worker finish, then rerun as the poll fragment would."""
    assert at.session_state[f"{key}::job"].wait(120).done
    at.run()


def test_train_runs_in_a_worker_process_and_keeps_the_model():
    at = _app().run()
    assert at.session_state["result_status"] is None and not at.success
    at.button(key="t::start").click().run()
    job = at.session_state["t::job"]
    _wait(at)
    assert at.session_state["result_status"] == "finished"
    assert "Trained 2 epochs" in at.success[0].value and "“tiny”" in at.success[0].value
    ((model_id, (ref, model)),) = at.session_state["mine"].items()
    assert ref.name == "tiny" and model_id == ref.id == f"mine:{ref.digest}"
    assert at.session_state["model"] == model_id  # picked for every page
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["test MSE"]) == pytest.approx(model.metrics["test_mse"], abs=1e-4)
    assert model.metrics["test_mse"] > 0
    assert metrics["epochs completed"] == "2"
    epochs, snaps = at.session_state["latent_history"][model_id]
    assert epochs == [0, 1, 2] and snaps.shape == (3, 360, 2)
    assert not np.allclose(snaps[0], snaps[-1])  # the map moved while training
    assert model.history["epochs"] == [1, 2]
    assert job.status().worker  # the worker reported its own process and thread settings
    assert "mse_ratio" in model.metrics  # the model card's figures, as the zoo's models have
    curves = json.loads(at.get("plotly_chart")[-1].proto.spec)
    # a plain autoencoder's total is its reconstruction term: one line each, not a black one hidden under blue
    assert [t["name"] for t in curves["data"]] == ["recon = loss (train)", "recon = loss (test)"]
    assert (curves["layout"]["yaxis"]["type"], curves["layout"]["yaxis"]["exponentformat"]) == ("log", "power")


def test_a_reload_and_another_token_after_training():
    at = _app().run()
    at.button(key="t::start").click().run()
    _wait(at)
    token = at.query_params["me"][0] if isinstance(at.query_params["me"], list) else at.query_params["me"]
    ((model_id, (ref, _)),) = at.session_state["mine"].items()
    again = AppTest.from_function(_page, kwargs=dict(epochs=2, lr=1e-3, bad="", key="t"), default_timeout=60)
    again.query_params["me"] = token  # a reload: same address, new session
    again.run()
    assert list(again.session_state["mine"]) == [model_id]
    assert again.session_state["mine"][model_id][0].name == "tiny"
    other = _app().run()  # another student: a token of their own
    assert other.session_state["token"] != token and not other.session_state["mine"]


def test_stop_keeps_the_weights_trained_so_far():
    at = _app(epochs=3000).run()
    at.button(key="t::start").click().run()
    job = at.session_state["t::job"]
    deadline = time.monotonic() + 60
    while (job.status().step < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    assert at.button(key="t::stop").label == "Stop"  # the live fragment shows Stop while training
    assert re.match(r"Epoch \d+ of 3000 · step \d+ of \d+ · loss ", at.get("progress")[0].proto.text)
    live = json.loads(next(c for c in at.get("plotly_chart") if c.key == "t::live_loss").proto.spec)
    assert [t["name"] for t in live["data"]] == ["recon = loss"]
    assert (live["layout"]["yaxis"]["type"], live["layout"]["yaxis"]["exponentformat"]) == ("log", "power")
    at.button(key="t::stop").click().run()
    _wait(at)
    assert at.session_state["result_status"] == "stopped"
    assert "Stopped at epoch" in at.warning[0].value and "weights trained so far are kept" in at.warning[0].value
    ((_, model),) = at.session_state["mine"].values()
    assert job.status().step < job.status().total
    assert not torch.equal(model.decoder[0].weight, aeviz.build(model.config).decoder[0].weight)


def test_one_training_at_a_time_per_student():
    at = _app(epochs=3000).run()
    at.button(key="t::start").click().run()
    token = at.session_state["token"]
    second = AppTest.from_function(_page, kwargs=dict(epochs=2, lr=1e-3, bad="", key="u"), default_timeout=60)
    second.query_params["me"] = token  # the same student, another page
    second.run()
    second.button(key="u::start").click().run()
    assert second.error[0].value == "You already have a training running; stop it or wait for it to finish."
    at.button(key="t::stop").click().run()
    _wait(at)


def test_a_diverging_loss_is_one_sentence_and_the_page_keeps_working():
    at = _app(lr=10.0, epochs=3).run()
    at.button(key="t::start").click().run()
    _wait(at)
    assert at.session_state["result_status"] == "diverged"
    assert "diverged" in at.warning[0].value.lower()
    assert not at.exception


def test_a_dataset_that_does_not_fit_the_model_gets_one_sentence():
    at = _app(bad="shape").run()
    at.button(key="t::start").click().run()
    assert at.session_state["result_status"] is None
    assert at.error[0].value.startswith("The model expects samples of shape (1, 28, 28)")
    assert not at.session_state["mine"]


def test_snapshots_beyond_two_dimensions_are_sign_aligned_pca_maps():
    from aeviz.analysis import map_2d

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


def test_a_variational_training_streams_every_term_and_its_card():
    from aeviz import jobs

    pool = jobs.JobPool(workers=1)
    try:
        mc = aeviz.config_for("digits", hidden=(16,), objective="variational")
        job_id = pool.submit("owner", mc, aeviz.TrainConfig(epochs=2, batch_size=256), "digits", "vae")
        while not (s := pool.status(job_id)).done:
            time.sleep(0.05)
    finally:
        pool.shutdown()
    assert s.state == "finished" and s.error is None
    assert set(s.terms) == {"loss", "recon", "kl"} and s.steps[0] == 1 and len(s.steps) == len(s.terms["kl"])
    model = aeviz.load(s.result)
    assert model.metrics["epochs"] == 2 and model.history["test"]["kl"]
    assert model.metrics["nelbo"] > model.history["test"]["kl"][-1] > 0


def _picker_page():
    import streamlit as st

    from aeviz.ui import state

    state.sidebar()
    if st.button("pick", key="pick"):  # after the sidebar's selectbox ran: select() must defer to a rerun
        state.select(st.session_state["target"])
        st.rerun()
    st.session_state["shown"] = state.current_id()


def test_select_after_the_picker_was_drawn_takes_effect_on_the_rerun():
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
