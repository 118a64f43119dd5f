"""The Explorer page in AppTest: every pretrained model, every view, and each control path.

The pretrained zoo is whatever aeviz.io.PRETRAINED holds (pretrained/, or AEVIZ_PRETRAINED); models are
picked by what they are (a 2-D VAE, a latent > 2 image model, ...) rather than by name.
A click on the latent map (a canvas, aeviz.ui.components.charts) is simulated by writing the state the browser
would send into the map's session_state key ("ex_map"): {"selected": {"i": test index, "n": click count}}.
"""
from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
from io import BytesIO

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz import analysis, io
from aeviz.data import load
from aeviz.ui.pages.explorer.latent_map import span
from aeviz.ui.pages.explorer.views import code_text
from aeviz.ui.state import digest as state_digest

VIEWS = ("Reconstructions", "Traversal", "Interpolation", "Sampling (VAE)", "Latent history")


def _page(sidebar: bool = True):
    from aeviz.ui import state
    from aeviz.ui.pages import explorer

    if sidebar:
        state.sidebar()
    explorer.render()


CARDS = {c.name: c for c in io.pretrained()} if io.PRETRAINED.is_dir() else {}
pytestmark = pytest.mark.skipif(not CARDS, reason="the pretrained zoo is empty")


def _first(pred) -> str:
    hits = [n for n, c in sorted(CARDS.items()) if pred(c.config)]
    if not hits:
        pytest.skip("no pretrained model of this kind")
    return hits[0]


def _app(model: str | None = None, sidebar: bool = True, chooser: bool = False, upload: bool = False) -> AppTest:
    """The page as app.py draws it. Without the sidebar for session models: AppTest cannot rerun a picker
    whose format_func reads session state (it calls format_func outside the session). chooser: with the
    "Choose a model" box open (its tabs run only then); upload: with the sidebar's "Upload a checkpoint" open."""
    at = AppTest.from_function(_page, default_timeout=60, kwargs={"sidebar": sidebar})
    if chooser:
        at.session_state["ex_chooser"] = True
    if upload:
        at.session_state["upload_box"] = True
    if model:
        at.session_state["model"] = model
    return at.run()


def _view(at: AppTest, view: str) -> AppTest:
    at.session_state["ex_view"] = view
    return at.run()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _shown(at: AppTest) -> str:
    """The model named in the page's header."""
    return next(re.match(r"#### `([^`]+)`", m.value).group(1) for m in at.markdown if m.value.startswith("#### `"))


def _code(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("z = `"))


def _latent_view(at: AppTest) -> dict:
    """The data of the browser's latent view (pad or sliders): what the page tells the component."""
    return next(v for v in (json.loads(e.proto.json or e.proto.mixed.json) for e in at.get("bidi_component")
                            if e.proto.WhichOneof("data") in ("json", "mixed")) if v["mode"] in ("pad", "sliders"))


def _release(at: AppTest, key: str, z) -> AppTest:
    """What the browser does when the point or a slider is let go of: it commits the new code."""
    at.session_state[key] = {"z": [float(v) for v in z]}
    return at.run()


def test_first_screen_shows_the_default_model_without_umap(charts):
    umap_before = "umap" in sys.modules
    at = _app()
    assert not at.exception
    assert _shown(at) == "ae-mlp-z2" and _metrics(at)["latent size"] == "2"
    assert float(_metrics(at)["test MSE"]) == pytest.approx(CARDS["ae-mlp-z2"].metrics["test_mse"], abs=1e-4)
    pad = _latent_view(at)  # a 2-D code gets the latent pad, on the map's axes, starting at the selected code
    assert pad["mode"] == "pad" and pad["value"] == pytest.approx(at.session_state["ex_pad"]["z"])
    assert _code(at) == f"z = `({pad['value'][0]:.2f}, {pad['value'][1]:.2f})`"
    # the map and the error histogram are canvases: the first screen loads no plotly.js in the browser
    assert not at.get("plotly_chart")
    m = charts(at, "map")
    assert m["xy"].shape == (1000, 2) and m["labels"].shape == (1000,) and m["label_names"] == [str(k) for k in range(10)]
    assert m["x_range"] + m["y_range"] == pytest.approx(pad["x_range"] + pad["y_range"])  # the pad's axes
    assert m["image"].startswith("data:image/png;base64,") and m["prior"] is False and m["value"] == 0
    bars = charts(at, "bars")
    assert sum(bars["counts"]) == 1000 and len(bars["edges"]) == len(bars["counts"]) + 1 == 51
    assert bars["title"] == "Reconstruction error over the test set" and bars["x_title"] == "MSE per sample"
    assert at.session_state["ex_idx"] == 0 and any("**Test sample #0**" in m.value for m in at.markdown)
    if not umap_before:
        assert "umap" not in sys.modules and "numba" not in sys.modules


@pytest.mark.parametrize("name", sorted(CARDS))
def test_every_pretrained_model_renders_every_view(name):
    at = _app(name)
    assert not at.exception and _shown(at) == name
    for view in VIEWS[1:]:
        _view(at, view)
        assert not at.exception, (name, view, at.exception)
    assert at.error.len == 0


def test_letting_go_of_the_pad_moves_the_code():
    at = _app("ae-mlp-z2")
    pad = _latent_view(at)
    lo, hi = span(analysis.embed(aeviz.load(CARDS["ae-mlp-z2"].path), load("mnist").x_test), vae=False)
    assert pad["x_range"] + pad["y_range"] == pytest.approx([lo[0], hi[0], lo[1], hi[1]], abs=1e-4)  # the map's axes
    _release(at, "ex_pad", [3.5, -1.25])
    assert not at.exception
    assert _code(at) == "z = `(3.50, -1.25)`" and _latent_view(at)["value"] == [3.5, -1.25]


def test_letting_go_of_a_latent_slider_moves_the_code():
    name = _first(lambda c: c.latent_dim > 2 and c.arch == "conv" and c.dataset == "mnist")
    at = _app(name)
    view = _latent_view(at)
    assert view["mode"] == "sliders" and len(view["value"]) == CARDS[name].config.latent_dim
    z = list(view["value"])
    z[view["dims"][0]] = 1.5
    _release(at, "ex_zs", z)
    assert not at.exception and _code(at).startswith("z = `(") and _latent_view(at)["value"] == pytest.approx(z)
    assert f"{1.5:.2f}" in _code(at)


def test_the_right_end_of_a_latent_slider_is_reachable(slider_end):
    """Dragged to its right end, z1 of ae-mlp-z2 used to come back a hair above max and was reset."""
    at = _app(_first(lambda c: c.dataset in ("swiss-roll", "s-curve")))  # 3-D points keep the server's sliders
    code = _code(at)
    z1 = next(s for s in at.slider if s.label == "z1")
    z1.set_value(slider_end(z1)).run()
    assert next(s for s in at.slider if s.label == "z1").value == pytest.approx(z1.max, abs=1e-9)
    assert _code(at).startswith(f"z = `({z1.max:.2f},") and _code(at) != code


def test_the_map_rings_the_selected_sample(charts):
    at = _app()
    assert charts(at, "map")["value"] == 0
    at.number_input(key="ex_idx").set_value(7).run()
    assert charts(at, "map")["value"] == 7
    wide = _app(_first(lambda c: c.latent_dim > 2 and c.dataset == "mnist"))  # a projection, on its own box
    m = charts(wide, "map")
    assert not wide.exception and m["value"] == 0 and m["titles"] == ["PCA 1", "PCA 2"] and m["image"] == ""
    lo, hi = span(m["xy"], vae=False)
    assert m["x_range"] + m["y_range"] == pytest.approx([lo[0], hi[0], lo[1], hi[1]], abs=1e-3)


def test_the_prior_lies_beneath_a_vae_map(charts):
    at = _app(_first(lambda c: c.latent_dim == 2 and c.objective == "variational" and c.dataset == "mnist"))
    at.radio(key="ex_bg").set_value("prior density").run()
    m = charts(at, "map")
    assert not at.exception and m["prior"] is True and m["image"] == ""
    assert m["x_range"][0] <= -2.5 and m["x_range"][1] >= 2.5  # the box holds the prior's 2.5 sigma disc


def test_a_continuous_colour_keeps_plotlys_map_and_its_colour_bar(charts, give_model):
    mc = aeviz.config_for("swiss-roll", hidden=(16, 8), latent_dim=2)
    model, _ = aeviz.train(mc, aeviz.TrainConfig(epochs=1, max_train=256), load("swiss-roll"))
    at = AppTest.from_function(_page, default_timeout=60, kwargs={"sidebar": False})
    at.session_state["model"] = give_model(at, "roll", model)
    at.run()
    assert not at.exception and _shown(at) == "roll"
    chart = next(e for e in at.get("plotly_chart") if e.proto.id.endswith("ex_map"))
    assert charts(at, "map") is None and json.loads(chart.proto.spec)["data"][0]["marker"]["showscale"] is True


def test_a_click_on_the_map_selects_that_sample(charts):
    at = _app("ae-mlp-z2")
    at.session_state["ex_map"] = {"selected": {"i": 42, "n": 1}}
    at.run()
    assert at.session_state["ex_idx"] == 42
    assert at.number_input(key="ex_idx").value == 42
    assert any("**Test sample #42**" in m.value for m in at.markdown)
    z = _latent_view(at)["value"]  # the pad moves to the new sample's code
    assert z == pytest.approx(at.session_state["ex_pad"]["z"])
    assert _code(at) == f"z = `({z[0]:.2f}, {z[1]:.2f})`"
    at.number_input(key="ex_idx").set_value(7).run()  # the browser still holds the click: it is not new
    assert at.session_state["ex_idx"] == 7
    at.session_state["ex_map"] = {"selected": {"i": 42, "n": 2}}  # the same point, clicked again
    at.run()
    assert at.session_state["ex_idx"] == 42 and charts(at, "map")["value"] == 42


def _browser_run(at: AppTest, committed: dict[str, list[float]]) -> AppTest:
    """A rerun as a browser sends it: the widgets, plus the value each latent view (by key) last committed, which
    the browser sends again with every rerun until the user lets go somewhere else."""
    states = at._tree.get_widget_states()
    ids = [e.proto.id for e in at.get("bidi_component")]
    for key, z in committed.items():
        w = states.widgets.add()
        w.id = next(i for i in ids if i.endswith(f"-{key}"))
        w.json_value = json.dumps({"z": z})
    return at._run(states)


def test_a_new_selection_moves_the_pad_for_good_after_a_release():
    """The browser keeps its last release in its widget state: the pad used to jump back to it on the rerun after
    the one that moved it to a newly selected sample (a teacher's push, the student's next rerun)."""
    at = _app("ae-mlp-z2")
    browser = {"ex_pad": [3.5, -1.25]}
    _browser_run(at, browser)
    assert _code(at) == "z = `(3.50, -1.25)`"
    at.number_input(key="ex_idx").set_value(7)
    _browser_run(at, browser)
    z7 = _latent_view(at)["value"]
    assert z7 != [3.5, -1.25] and _code(at) == f"z = `({z7[0]:.2f}, {z7[1]:.2f})`"
    for _ in range(2):  # later reruns: the browser still sends its old release
        _browser_run(at, browser)
        assert _latent_view(at)["value"] == z7 and _code(at) == f"z = `({z7[0]:.2f}, {z7[1]:.2f})`"
    _browser_run(at, {"ex_pad": [1.0, 2.0]})  # a new release wins
    assert _code(at) == "z = `(1.00, 2.00)`" and _latent_view(at)["value"] == [1.0, 2.0]
    assert not at.exception


def test_the_index_box_selects_a_sample_and_the_sliders_follow():
    at = _app("ae-mlp-z2")
    before = _latent_view(at)["value"]
    at.number_input(key="ex_idx").set_value(7).run()
    assert any("**Test sample #7**" in m.value for m in at.markdown)
    assert _latent_view(at)["value"] != before


def test_reconstructions_sort_worst_and_best_with_their_errors():
    at = _app("ae-mlp-z2")
    worst = [float(c.split("MSE ")[1]) for c in at.image[-1].captions]
    assert len(worst) == 24 and worst == sorted(worst, reverse=True)
    # the pictures travel inside the element (no media file, no request per picture), each one PNG: a pair of digits
    urls = at.image[-1].value
    assert len(urls) == 24 and all(u.startswith("data:image/png;base64,") for u in urls)
    pair = np.asarray(Image.open(BytesIO(base64.b64decode(urls[0].split(",", 1)[1]))))
    assert pair.dtype == np.uint8 and pair.shape[0] == 56 and pair.shape[1] > 2 * 56 - 8
    at.radio(key="ex_rec_order").set_value("best first").run()
    best = [float(c.split("MSE ")[1]) for c in at.image[-1].captions]
    assert best == sorted(best) and best[0] < worst[-1]


def test_traversal_grid_and_large_latents_show_the_top_dimensions():
    name = _first(lambda c: c.latent_dim > 8 and c.arch == "mlp" and c.dataset == "mnist")
    at = _view(_app(name), "Traversal")
    assert at.slider(key="ex_trav_steps").value == 9
    assert len(_latent_view(at)["dims"]) == 8
    assert any("dimensions that change the output most" in c.value for c in at.caption)
    assert any(c.startswith("Rows, top to bottom: z") for i in at.image for c in i.captions)


def _path(at, traces) -> np.ndarray:
    """The interpolation path as the page draws it on the latent map (the codes themselves, for a 2-D latent)."""
    chart = next(c for c in at.get("plotly_chart") if c.key == "ex_int_map")
    x, y = next(xy for name, xy in traces(chart).items() if name and " → " in name)
    return np.column_stack([x, y])


def _view_of(at: AppTest, mode: str) -> dict:
    return next(v for v in (json.loads(e.proto.json or e.proto.mixed.json) for e in at.get("bidi_component")
                            if e.proto.WhichOneof("data") in ("json", "mixed")) if v["mode"] == mode)


def _caption(at: AppTest, start: str) -> str:
    return next(c.value for c in at.caption if c.value.startswith(start))


def test_interpolation_between_a_3_and_an_8_linear_and_spherical(traces):
    at = _view(_app("ae-mlp-z2"), "Interpolation")
    path = _path(at, traces)
    y = load("mnist").y_test.numpy()
    a, b = int(np.flatnonzero(y == 3)[0]), int(np.flatnonzero(y == 8)[0])
    z = analysis.embed(aeviz.load(CARDS["ae-mlp-z2"].path), load("mnist").x_test[[a, b]])
    assert path.shape == (9, 2)
    np.testing.assert_allclose(path[[0, -1]], z, atol=1e-5)  # from the 3's code to the 8's
    scrub = _view_of(at, "path")  # the stops and the scrubber run in the browser
    assert (scrub["method"], scrub["steps"], scrub["value"]) == ("linear", 9, 0.5)
    assert np.allclose(scrub["start"], path[0]) and np.allclose(scrub["end"], path[-1])
    assert _caption(at, f"#{a} → #{b}, linear, 9 steps").endswith(f"at t = 0.50, z = {code_text(path[4])}")
    np.testing.assert_allclose(path[1] - path[0], path[2] - path[1], rtol=1e-4, atol=1e-6)  # a straight line
    at.radio(key="ex_int_method").set_value("spherical").run()
    at.slider(key="ex_int_steps").set_value(5).run()
    sph = _path(at, traces)
    assert sph.shape == (5, 2) and _view_of(at, "path")["method"] == "spherical"
    np.testing.assert_allclose(sph[[0, -1]], path[[0, -1]], atol=1e-5)  # same ends, another path
    assert not np.allclose(sph[2], (path[0] + path[-1]) / 2)
    at.session_state["ex_int_t"] = {"t": 0.25}  # the scrubber let go of at a quarter of the way
    at.run()
    assert _view_of(at, "path")["value"] == 0.25
    assert _caption(at, f"#{a} → #{b}, spherical, 5 steps").endswith(f"at t = 0.25, z = {code_text(sph[1])}")


def test_interpolation_by_index():
    at = _view(_app("ae-mlp-z2"), "Interpolation")
    at.radio(key="ex_int_by").set_value("by index").run()
    at.number_input(key="ex_int_b").set_value(5).run()
    assert _caption(at, "#0 → #5")


def _samples(at) -> tuple[str, str]:
    """(caption, image address) of the grid of prior samples; the address is a hash of the image's bytes."""
    return next((c, i.value[0]) for i in at.image for c in i.captions if c.startswith("24 samples at T = "))


def test_sampling_a_vae_with_temperature_and_its_elbo():
    name = _first(lambda c: c.objective == "variational" and c.latent_dim == 2 and c.dataset == "mnist")
    at = _view(_app(name), "Sampling (VAE)")
    assert not at.exception
    grid = _view_of(at, "temperature")  # the browser redraws the same draws while T moves
    assert grid["value"] == 1.0 and np.shape(grid["eps"]) == (24, 2)
    assert _caption(at, "24 samples at T = 1.00")
    at.session_state["ex_temp_grid"] = {"temperature": 0.3}
    at.run()
    assert _caption(at, "24 samples at T = 0.30") and _view_of(at, "temperature")["eps"] == grid["eps"]
    m = _metrics(at)
    nelbo, rec, kl = (float(m[k]) for k in ("−ELBO (nats)", "reconstruction −log p(x|z)", "KL(q(z|x) ‖ N(0,I))"))
    assert kl > 0 and nelbo == pytest.approx(rec + kl, abs=0.2)
    at.button(key="ex_resample").click().run()
    fresh = _view_of(at, "temperature")
    assert fresh["value"] == 0.3 and fresh["eps"] != grid["eps"]  # new draws at the same temperature


def test_sampling_says_why_a_plain_autoencoder_cannot():
    at = _view(_app("ae-mlp-z2"), "Sampling (VAE)")
    assert "Sampling needs a variational autoencoder" in at.info[0].value
    ladder = ("vae-mlp-z2-b0.5", "vae-mlp-z2", "vae-mlp-z2-b4", "vae-mlp-z2-b10")
    if all(n in CARDS for n in ladder):  # the beta ladder is shown to every model, one column per rung
        shown = [m.value for m in at.markdown if m.value.startswith("**β = ")]
        assert [v.split("**")[1] for v in shown] == ["β = 0.5", "β = 1", "β = 4", "β = 10"]
        # the text says what the checkpoints' numbers show (the old one promised blurrier images at larger β)
        kl = [aeviz.load(CARDS[n].path).history["test"]["kl"][-1] for n in ladder]
        mse = [CARDS[n].metrics["test_mse"] for n in ladder]
        note = next(c.value for c in at.caption if c.value.startswith("Four VAEs that differ only in β"))
        assert f"falls from {kl[0]:.1f} to {kl[-1]:.1f} nats per image" in note and "blurr" not in note
        assert f"{max(mse):.4f}" in note


def test_latent_history_scrubs_through_epochs():
    name = _first(lambda c: c.latent_dim == 2 and c.dataset == "mnist")
    at = _view(_app(name), "Latent history")
    if at.info:
        pytest.skip("this zoo has no latent snapshots")
    epochs = at.select_slider(key=f"ex_hist::{name}")
    assert str(epochs.value) == epochs.options[-1]  # AppTest lists options as strings
    epochs.set_value(int(epochs.options[0])).run()
    assert at.select_slider(key=f"ex_hist::{name}").value == int(epochs.options[0])
    assert not at.exception


def test_projection_beyond_2d_runs_in_the_background(monkeypatch, charts):
    import aeviz.analysis

    name = _first(lambda c: c.latent_dim > 2 and c.dataset == "mnist")
    calls = []
    real = aeviz.analysis.project

    def fake(codes, method, seed=0):  # t-SNE takes seconds: the page's behaviour is what is tested here
        calls.append(method)
        return real(codes, "pca") if method == "tsne" else real(codes, method, seed)
    monkeypatch.setattr(aeviz.analysis, "project", fake)
    at = _app(name)
    assert at.radio(key="ex_proj").value == "PCA"
    at.radio(key="ex_proj").set_value("t-SNE").run()
    assert not at.exception
    jobs = at.session_state["ex_projection_jobs"]
    assert len(jobs) == 1
    for _ in range(200):
        if "xy" in next(iter(jobs.values())):
            break
        time.sleep(0.05)
    at.run()
    assert calls == ["tsne"] and charts(at, "map")["titles"] == ["t-SNE 1", "t-SNE 2"]


def test_upload_a_good_and_a_bad_file(tmp_path):
    d = load("digits")
    model, hist = aeviz.train(aeviz.config_for("digits", hidden=(16,)), aeviz.TrainConfig(epochs=1), d)
    good = io.to_bytes(model, {"test_mse": 0.1}, hist.to_dict())
    at = _app()
    assert not at.sidebar.file_uploader  # closed, the box runs nothing
    at.session_state["upload_box"] = True  # the student opens it
    at.run()
    at.sidebar.file_uploader[0].set_value(("mine.safetensors", good, "application/octet-stream")).run()
    model_id = at.session_state["model"]
    assert model_id == f"mine:{state_digest(model)}" and _shown(at) == "mine"
    assert at.sidebar.success[0].value == "Loaded “mine.safetensors” as mine."
    assert not at.sidebar.file_uploader[0].value  # a handled file leaves the box
    assert not at.exception and _latent_view(at)["mode"] == "pad"

    at = _app("vae-mlp-z2" if "vae-mlp-z2" in CARDS else None, upload=True)
    before = _shown(at)
    at.sidebar.file_uploader[0].set_value(("broken.safetensors", b"\x80\x04 not a checkpoint",
                                           "application/octet-stream")).run()
    assert at.sidebar.error[0].value == ("“broken.safetensors” is not an aeviz checkpoint that this app can open; "
                                         "your current model stays.")
    assert any("pickled PyTorch file" in t.value for t in at.sidebar.text)  # the details, on demand
    assert _shown(at) == before and not at.exception  # the page keeps its current model
    assert not at.sidebar.file_uploader[0].value  # the rejected file does not pile up
    at.sidebar.file_uploader[0].set_value(("mine.safetensors", good, "application/octet-stream")).run()
    assert not at.sidebar.error and _shown(at) == "mine"  # the old file's error is gone with it


def test_train_one_epoch_then_explore_it_and_its_history():
    at = _app(sidebar=False, chooser=True)
    at.selectbox(key="ex_t_data").set_value("digits")
    at.number_input(key="ex_t_epochs").set_value(1)
    at.selectbox(key="ex_t_obj").set_value("variational").run()
    assert at.slider(key="ex_t_beta").value == 1.0  # the objective's own knob appears
    at.button(key="ex_train::start").click().run()
    at.session_state["ex_train::job"].wait(60)
    at.run()
    key = at.session_state["model"]
    assert key.startswith("mine:") and _shown(at) == "variational-mlp-z2-digits"
    model, m = at.session_state["mine"][key][1], _metrics(at)
    assert m["epochs completed"] == "1" and m["test MSE"] == f"{model.metrics['test_mse']:.4f}"
    assert m["parameters"] == f"{model.n_params:,}"
    _view(at, "Latent history")
    assert at.select_slider(key=f"ex_hist::{key}").options == ["0", "1"]


def test_stop_keeps_the_model_trained_so_far():
    at = _app(sidebar=False, chooser=True)
    at.selectbox(key="ex_t_data").set_value("digits")
    at.number_input(key="ex_t_epochs").set_value(500).run()
    at.button(key="ex_train::start").click().run()
    job = at.session_state["ex_train::job"]
    at.button(key="ex_train::stop").click().run()
    s = job.wait(60)
    at.run()
    assert s.state == "stopped" and s.epoch < 500
    assert any("Stopped at epoch" in w.value for w in at.warning)
    assert _shown(at) == "vanilla-mlp-z2-digits" and at.session_state["model"].startswith("mine:")


def test_nonsense_settings_get_one_sentence():
    at = _app(sidebar=False, chooser=True)
    at.selectbox(key="ex_t_data").set_value("swiss-roll")
    at.selectbox(key="ex_t_arch").set_value("conv").run()
    assert at.error[0].value.startswith("The convolutional nets need images")
    assert not at.exception and "ex_train::start" not in [b.key for b in at.button]


@pytest.mark.parametrize("dataset,arch,latent", [("signals", "rnn", 3), ("swiss-roll", "mlp", 2),
                                                 ("mnist-rows", "rnn", 3), ("digits", "mlp", 1)])
def test_other_kinds_draw_as_lines_points_or_images(dataset, arch, latent, give_model):
    d = load(dataset)
    mc = aeviz.config_for(dataset, arch=arch, hidden=(16,) if arch == "rnn" else (16, 8), latent_dim=latent)
    model, _ = aeviz.train(mc, aeviz.TrainConfig(epochs=1, max_train=256), d)
    at = AppTest.from_function(_page, default_timeout=60, kwargs={"sidebar": False})
    at.session_state["model"] = give_model(at, "odd", model)
    at.run()
    assert not at.exception and _shown(at) == "odd"
    for view in VIEWS[1:]:
        _view(at, view)
        assert not at.exception, (dataset, view, at.exception)
    if d.kind == "points":  # a decoded 3-D point is drawn by the server, beside the test set
        assert not at.get("bidi_component") and [s.label for s in at.slider][:latent] == ["z1", "z2"][:latent]
    else:  # images and lines are decoded in the browser
        assert _latent_view(at)["mode"] == ("pad" if latent == 2 else "sliders")


@pytest.mark.parametrize("background", ["decoded", "prior", "none"])
def test_the_map_written_as_a_dict_is_what_plotly_would_write(background):
    """_map_spec writes the figure as a dict (plotly's objects cost ~100 ms per model's first visit): plotly takes
    it back unchanged, with the decoded plane or the prior beneath and the axes on the span."""
    import plotly.graph_objects as go

    from aeviz.ui.pages.explorer import latent_map

    model = io.load(next(c.path for c in io.pretrained() if c.name == "vae-mlp-z2"))
    rng = np.random.default_rng(0)
    xy, labels = rng.normal(size=(500, 2)).astype(np.float32), np.arange(500) % 10
    spec = latent_map._map_spec.__wrapped__(model, xy, labels, tuple("0123456789"), ("z₁", "z₂"), background,
                                            ((-3.0, -2.0), (3.0, 2.0)), 640)
    assert go.Figure(spec).to_dict() == spec
    layout = spec["layout"]
    assert layout["xaxis"]["range"] == [-3.0, 3.0] and layout["yaxis"]["range"] == [-2.0, 2.0]
    assert ("images" in layout) == (background == "decoded") and (spec["data"][0]["type"] == "contour") == (
        background == "prior")
    assert all(t["selected"] == t["unselected"] for t in spec["data"] if t["type"] != "contour")


def test_a_zoo_model_prepared_in_advance_opens_without_building_its_map_or_pictures(monkeypatch, charts):
    """explorer.warm (run for the whole zoo in the background by the first Explorer run of a server) makes what a
    model's first visit needs, so a class's model switches find it made."""
    from aeviz.ui import state
    from aeviz.ui.pages import explorer
    from aeviz.ui.pages.explorer import draw, latent_map

    for thread in threading.enumerate():  # an earlier test's warm-up of the zoo would build maps meanwhile
        if thread.name == "aeviz-warm-zoo":
            thread.join(timeout=300)
    built = []
    for module, name in ((latent_map, "decoded_plane"), (np, "histogram"), (draw, "mosaic")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: built.append(_n) or _f(*a, **k))
    monkeypatch.setattr(explorer, "warm_zoo", lambda: False)  # no background thread in this test
    state.clear_caches()
    assert not _app("vae-mlp-z2-b4").exception
    assert {"decoded_plane", "histogram", "mosaic"} <= set(built)  # cold: the first visit builds them
    state.clear_caches()
    explorer.warm("vae-mlp-z2-b4")
    built.clear()
    at = _app("vae-mlp-z2-b4")
    assert not at.exception and built == []
    assert len(at.image[-1].captions) == 24 and charts(at, "map")["image"] and charts(at, "bars")["counts"]


def test_the_first_explorer_run_prepares_the_whole_zoo_once(monkeypatch):
    from aeviz.ui.pages import explorer

    done = []
    monkeypatch.setattr(explorer, "warm", done.append)
    monkeypatch.setattr(explorer, "_WARMING", threading.Lock())
    monkeypatch.setattr(explorer, "_warmed", [])
    assert explorer.warm_zoo() is True and explorer.warm_zoo() is False
    for _ in range(100):
        if len(explorer._warmed) == len(explorer.state.cards()):
            break
        time.sleep(0.05)
    assert done == list(explorer.state.cards()) == explorer._warmed


def test_the_chooser_runs_only_while_open_keeps_its_form_and_stays_while_a_training_runs():
    at = _app(sidebar=False)
    assert not at.exception and "ex_train::start" not in [b.key for b in at.button] and not at.dataframe
    at.session_state["ex_chooser"] = True  # the student opens "Choose a model"
    at.run()
    assert at.button(key="ex_train::start") and at.dataframe  # the Train tab and the zoo table
    at.number_input(key="ex_t_epochs").set_value(500)
    at.selectbox(key="ex_t_data").set_value("digits")
    at.selectbox(key="ex_t_obj").set_value("sparse").run()
    at.session_state["ex_chooser"] = False
    at.run()
    assert "ex_t_epochs" not in [w.key for w in at.number_input]
    at.session_state["ex_chooser"] = True
    at.run()
    assert at.number_input(key="ex_t_epochs").value == 500 and at.selectbox(key="ex_t_obj").value == "sparse"
    at.button(key="ex_train::start").click().run()
    job = at.session_state["ex_train::job"]
    at.session_state["ex_chooser"] = False  # closed while it trains: its progress (and Stop) keep running
    at.run()
    assert at.button(key="ex_train::stop")
    at.button(key="ex_train::stop").click().run()
    assert job.wait(60).state == "stopped"


@pytest.mark.skipif("ae-rnn-signals-z8" not in CARDS, reason="no signal model in the zoo")
def test_a_signal_models_figures_are_built_once_and_are_what_plotly_would_write(monkeypatch):
    """The signal model's Explorer drew seven line figures with plotly's objects on every run (~8 ms each, three
    times a picture model's run): they are built once per content and handed over as plotly's dicts."""
    import plotly.graph_objects as go

    from aeviz.ui.pages.explorer import draw

    built = []
    original = draw.signal_figure
    monkeypatch.setattr(draw, "signal_figure", lambda *a, **k: built.append(1) or original(*a, **k))
    at = _app("ae-rnn-signals-z8")
    assert not at.exception and _shown(at) == "ae-rnn-signals-z8"
    charts = {c.proto.id.rsplit("-", 1)[-1]: c for c in at.get("plotly_chart")}
    assert {f"ex_rec_sig_{j}" for j in range(6)} | {"ex_pair"} <= set(charts)
    for key in [f"ex_rec_sig_{j}" for j in range(6)] + ["ex_pair"]:
        spec = json.loads(charts[key].proto.spec)
        assert [t["name"] for t in spec["data"]][:2] in (["x", "x̂"], ["original x", "reconstruction x̂"])
        assert go.Figure(spec).to_dict()["data"][0]["type"] == "scatter"
    built.clear()
    at.run()  # a rerun (a release, a map click) builds none of them again
    assert not at.exception and built == []


def test_a_rerun_finds_the_map_and_the_reconstructions_by_model_and_view_without_hashing_them(monkeypatch):
    """The map's decoded plane, the order of the samples shown, their pictures and the error histogram are kept per model
    and view (state.memo): a rerun (a map click, a release) reaches none of the functions that make them, which took
    the arrays they are made from and had Streamlit hash them on every run. Another order is made once."""
    from aeviz.ui import state
    from aeviz.ui.pages.explorer import latent_map, views

    state.clear_caches()  # another test's visit would have made the other order already
    at = _app("ae-mlp-z2")
    assert not at.exception and _shown(at) == "ae-mlp-z2"
    for thread in threading.enumerate():  # the first run's warm-up of the rest of the zoo makes their maps
        if thread.name == "aeviz-warm-zoo":
            thread.join(timeout=300)
    pictures = [(i.captions, [u.url for u in i.proto.imgs]) for i in at.image]
    called = []
    for module, name in ((latent_map, "plane_url"), (views, "_shown"), (views, "_pairs"), (views, "_error_counts")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: called.append(_n) or _f(*a, **k))
    at.run()
    assert not at.exception and called == []
    assert [(i.captions, [u.url for u in i.proto.imgs]) for i in at.image] == pictures  # the same, in order
    at.radio(key="ex_rec_order").set_value("best first").run()
    assert not at.exception and called == ["_shown", "_pairs"]
    mse = [float(c.split("MSE ")[1]) for c in at.image[-1].captions]
    assert len(mse) == 24 and mse == sorted(mse)  # best first: the smallest errors, ascending
