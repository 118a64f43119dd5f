"""AppTest for the Compare page: presets, the URL round trip (bad links included), linked selection, metrics."""
import base64
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz import io
from aeviz.data import load
from aeviz.ui import state
from aeviz.uses import compare
from aeviz.zoo import model_card

PRESET_MODELS = sorted({m for p in compare.PRESETS for m in p.models})
OBJECTIVES = {"ae": "vanilla", "vae": "variational", "dae": "denoising", "cae": "contractive"}


def _tiny_zoo(folder):
    """Untrained, seeded stand-ins with the preset names: the page's behaviour does not depend on training."""
    for i, name in enumerate(PRESET_MODELS):
        kind, arch, z = name.split("-")[:3]
        beta = float(name.split("-b")[1]) if "-b" in name else 1.0
        torch.manual_seed(i)
        mc = aeviz.config_for("mnist", objective=OBJECTIVES[kind], arch=arch, latent_dim=int(z[1:]), beta=beta,
                              hidden=(4, 8) if arch == "conv" else (16,))
        io.save(aeviz.build(mc).eval(), folder / f"{name}.safetensors", metrics={"train_seconds": 10.0 + i})
        if mc.latent_dim > 2:  # the zoo stores 2-D maps of the test codes beside the weights
            maps = np.random.default_rng(i).normal(size=(2, 1000, 2)).astype(np.float32)
            save_numpy({"pca": maps[0], "umap": maps[1]}, str(folder / f"{name}.views.safetensors"))


@pytest.fixture(scope="module", autouse=True)
def zoo(tmp_path_factory):
    """The real pretrained/ when it holds every preset model, else a tiny stand-in zoo."""
    real = {c.name for c in io.pretrained()} if io.PRETRAINED.is_dir() else set()
    folder = io.PRETRAINED
    if not set(PRESET_MODELS) <= real:
        folder = tmp_path_factory.mktemp("zoo")
        _tiny_zoo(folder)
    saved = io.PRETRAINED
    io.PRETRAINED = folder
    state.clear_caches()
    yield folder
    io.PRETRAINED = saved
    state.clear_caches()


def page():
    from aeviz.ui.pages import compare as compare_page

    compare_page.render()


def run(params=None, session=None, url=None) -> AppTest:
    at = AppTest.from_function(page)
    at.query_params.update(params or {})
    if url:
        at.context["url"] = url  # the address the browser used (st.context.url)
    for k, v in (session or {}).items():
        at.session_state[k] = v
    return at.run(timeout=120)


def headers(at) -> list[str]:
    """The bold column and row titles of the image views."""
    return [m.value.strip("*") for m in at.markdown if m.value.startswith("**")]


def _array(value) -> np.ndarray:
    """A plotly JSON array: a plain list or a typed array {"dtype", "bdata" (base64)}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def highlighted_per_map(at) -> list[list[int]]:
    """Test indices each latent map shows highlighted (plotly's selectedpoints, by customdata)."""
    out = []
    for chart in at.get("plotly_chart"):
        traces = json.loads(chart.proto.spec)["data"]
        out.append(sorted(int(i) for t in traces if t.get("selectedpoints") is not None
                          for i in _array(t["customdata"])[t["selectedpoints"]]))
    return out


def select_points(at, chart, indices) -> AppTest:
    """Send a plotly selection event exactly as the browser does (AppTest cannot drag a lasso)."""
    states = at._tree.get_widget_states()
    event = WidgetState(id=chart.proto.id)
    event.string_value = json.dumps({"selection": {"points": [{"customdata": int(i)} for i in indices],
                                                   "point_indices": list(range(len(indices))), "box": [], "lasso": []}})
    states.widgets.append(event)
    return at._run(states, timeout=120)


@pytest.mark.parametrize("preset", compare.PRESETS, ids=lambda p: p.title)
def test_each_preset_sets_its_models_noise_and_link(preset):
    at = run()
    at.selectbox(key="cmp_preset").set_value(preset.title).run(timeout=120)
    assert not at.exception
    assert at.multiselect(key="cmp_models").value == list(preset.models)
    assert at.slider(key="cmp_level").value == preset.level
    assert at.query_params["models"] == ",".join(preset.models)
    assert at.query_params["level"] == f"{preset.level:g}"
    assert preset.why in [c.value for c in at.caption]
    assert headers(at)[: 1 + (preset.level > 0) + len(preset.models)] == (
        ["original"] + ["noisy input"] * (preset.level > 0) + list(preset.models))
    assert len(at.get("plotly_chart")) == len(preset.models)
    assert at.selectbox(key="cmp_preset").value == preset.title


def test_the_beta_ladder_preset_says_what_its_numbers_show():
    ladder = next(p for p in compare.PRESETS if p.title == "The β ladder")
    at = run()
    at.selectbox(key="cmp_preset").set_value(ladder.title).run(timeout=120)
    cards = state.cards()
    rungs = [compare.ladder_rung(cards[m].config, cards[m].metrics, aeviz.load(cards[m].path).history)
             for m in ladder.models]
    reading = compare.beta_reading(rungs)
    captions = [c.value for c in at.caption]
    assert all("blurr" not in c for c in captions)
    assert ladder.why in captions
    if all("test_mse" in cards[m].metrics for m in ladder.models):  # the real zoo (the tiny stand-in has no numbers)
        assert reading.startswith("The KL term") and reading in captions


def test_a_link_opens_its_comparison_and_widget_changes_update_the_link():
    at = run({"models": "ae-mlp-z16,dae-mlp-z16,cae-mlp-z16", "noise": "masking", "level": "0.25", "steps": "5",
              "pair": "7,42", "seed": "3"})
    assert not at.exception and not at.warning
    assert at.multiselect(key="cmp_models").value == ["ae-mlp-z16", "dae-mlp-z16", "cae-mlp-z16"]
    assert at.selectbox(key="cmp_noise").value == "masking"
    assert at.slider(key="cmp_level").value == 0.25
    assert at.slider(key="cmp_steps").value == 5
    assert (at.number_input(key="cmp_pair_a").value, at.number_input(key="cmp_pair_b").value) == (7, 42)
    at.slider(key="cmp_steps").set_value(9).run(timeout=120)  # reruns the interpolation and the share box only
    assert at.query_params["steps"] == "9"
    at.run(timeout=120)
    at.multiselect(key="cmp_models").unselect("cae-mlp-z16").run(timeout=120)
    assert at.query_params["models"] == "ae-mlp-z16,dae-mlp-z16"
    assert at.query_params["noise"] == "masking" and at.query_params["pair"] == "7,42"
    assert at.multiselect(key="cmp_models").value == ["ae-mlp-z16", "dae-mlp-z16"]  # not reset from the link


def share_link(at) -> str:
    """The text of the 'Share this comparison' box, as the last run drew it."""
    links = [c.value for c in at.code if "?models=" in c.value]
    assert len(links) == 1, "the last run did not redraw the share box: the browser goes on showing the old link"
    return links[0]


def test_the_share_link_follows_changes_made_inside_the_fragments(fragment_rerun):
    """Steps and the class live in fragments that rerun alone; the box above them used to keep the old link."""
    at = run({"models": "ae-mlp-z2,vae-mlp-z2", "steps": "8"}, url="http://10.0.0.7:8501/compare")
    assert share_link(at).startswith("http://10.0.0.7:8501/compare?models=ae-mlp-z2,vae-mlp-z2&")
    assert "&steps=8&" in share_link(at)
    at = fragment_rerun(at, at.slider(key="cmp_steps"), 12)
    assert at.query_params["steps"] == "12" and "&steps=12&" in share_link(at)
    at.run(timeout=120)
    at = fragment_rerun(at, at.selectbox(key="cmp_cls"), 3)
    assert at.query_params["cls"] == "3" and share_link(at).endswith("&cls=3")
    assert "&steps=12&" in share_link(at)


def test_a_link_opened_as_localhost_is_shared_with_the_network_address(monkeypatch):
    from streamlit import net_util

    monkeypatch.setattr(net_util, "get_internal_ip", lambda: "192.168.1.20")
    at = run({"models": "ae-mlp-z2,vae-mlp-z2"}, url="http://localhost:8501/compare")
    assert share_link(at).startswith("http://192.168.1.20:8501/compare?models=ae-mlp-z2,vae-mlp-z2&")
    assert ("Your browser opened the app as localhost, which names this computer only; the link uses its network "
            "address, 192.168.1.20, instead.") in [c.value for c in at.caption]
    assert "address bar always holds" not in " ".join(c.value for c in at.caption)


def test_a_bad_link_opens_with_clear_notes_not_an_error():
    at = run({"models": "ae-mlp-z2,foo,vae-mlp-z2", "level": "abc", "pair": "5,99999"})
    assert not at.exception
    notes = [w.value for w in at.warning]
    assert "The link names a model that does not exist here: foo; showing the others." in notes
    assert "The link's level 'abc' is not a noise level between 0 and 1; using 0.0." in notes
    assert any("beyond the 1000 test images" in n for n in notes)
    assert at.multiselect(key="cmp_models").value == ["ae-mlp-z2", "vae-mlp-z2"]
    assert at.slider(key="cmp_level").value == 0.0
    assert at.query_params["models"] == "ae-mlp-z2,vae-mlp-z2" and at.query_params["pair"] == "0,1"
    at.slider(key="cmp_steps").set_value(6).run(timeout=120)
    at.run(timeout=120)  # the steps rerun only their fragment; the notes sit above it
    assert at.multiselect(key="cmp_models").value == ["ae-mlp-z2", "vae-mlp-z2"]
    assert not at.warning  # the notes were about the link; once the user moves on they go


def test_a_link_to_only_unknown_models_shows_the_default_comparison():
    at = run({"models": "nope,nada"})
    assert not at.exception
    assert at.multiselect(key="cmp_models").value == list(compare.default_state(state.ids()).models)
    assert any("nope, nada" in w.value for w in at.warning)


def test_selecting_points_in_one_map_highlights_them_in_all():
    at = run({"models": "ae-mlp-z2,vae-mlp-z2,ae-mlp-z16"})
    assert highlighted_per_map(at) == [[], [], []]
    chosen = [3, 17, 256, 999]
    at = select_points(at, at.get("plotly_chart")[1], chosen)
    assert not at.exception
    assert highlighted_per_map(at) == [chosen] * 3
    assert "4 test images highlighted in every map." in [c.value for c in at.caption]
    at.button[0].click().run(timeout=120)  # "Clear the selection"
    assert highlighted_per_map(at) == [[], [], []]


def test_a_click_on_one_dot_selects_it_in_every_map():
    """Streamlit turns click selection off while a chart's drag mode is box or lasso select: the maps used to
    start in lasso mode, so a click on a dot selected nothing."""
    from streamlit.proto.PlotlyChart_pb2 import PlotlyChart

    at = run({"models": "ae-mlp-z2,vae-mlp-z2"})
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        assert spec["layout"].get("dragmode") not in ("select", "lasso")
        assert PlotlyChart.SelectionMode.POINTS in chart.proto.selection_mode
        assert {t["type"] for t in spec["data"]} == {"scattergl"}  # WebGL: as SVG, every rerun restyles each dot
    at = select_points(at, at.get("plotly_chart")[1], [42])  # what a click on test image #42 sends
    assert highlighted_per_map(at) == [[42], [42]]
    assert "Test image #42 is highlighted in every map." in [c.value for c in at.caption]


def test_picking_a_class_highlights_it_in_every_map_and_in_the_link():
    at = run({"models": "ae-mlp-z2,vae-mlp-z2"})
    at.selectbox(key="cmp_cls").set_value(3).run(timeout=120)
    threes = np.flatnonzero(load("mnist").y_test.numpy() == 3).tolist()
    assert highlighted_per_map(at) == [threes, threes]
    assert at.query_params["cls"] == "3"
    at = select_points(at, at.get("plotly_chart")[0], [1, 2])  # a point selection replaces the class
    assert highlighted_per_map(at) == [[1, 2], [1, 2]] and at.selectbox(key="cmp_cls").value is None
    assert "cls" not in at.query_params


def test_metrics_table_shows_each_models_numbers_and_marks_the_best():
    keys = ["ae-mlp-z2", "vae-mlp-z2", "vae-mlp-z2-b4"]
    at = run({"models": ",".join(keys), "level": "0.5"})
    df = at.dataframe[0].value
    assert list(df.columns) == [*keys, "best"]
    data = load("mnist")
    mse = {k: model_card(aeviz.load(io.PRETRAINED / f"{k}.safetensors"), data)["test_mse"] for k in keys}
    winner = min(mse, key=mse.get)
    assert [df.loc["test MSE ↓", k] for k in keys] == [f"{mse[k]:.4f}" + (" ★" if k == winner else "") for k in keys]
    assert df.loc["test MSE ↓", "best"] == winner
    assert all(" ★" not in v for v in df.loc["latent size", keys])  # no better or worse: nothing starred
    assert any("starred (★)" in c.value for c in at.caption)
    assert df.loc["negative ELBO (nats, VAEs) ↓", "ae-mlp-z2"] == "—"
    assert df.loc["negative ELBO (nats, VAEs) ↓", "best"] in keys[1:]
    assert "denoising PSNR (dB) ↑" in df.index and "latent size" in df.index
    assert df.loc["latent size", "best"] == ""


def test_other_data_is_left_out_and_your_own_models_stay_out_of_the_link(give_model):
    signals = aeviz.build(aeviz.config_for("signals", arch="rnn", latent_dim=4, hidden=(8,))).eval()
    mine = aeviz.build(aeviz.config_for("mnist", latent_dim=2, hidden=(16,))).eval()
    at = AppTest.from_function(page)
    sig_id, mine_id = give_model(at, "sig", signals), give_model(at, "mine", mine)
    at.session_state["cmp_models"] = ["ae-mlp-z2", sig_id, mine_id]
    at.run(timeout=120)
    assert not at.exception
    assert ("sig was trained on other data than the mnist samples the first model uses, so it is "
            "left out of this comparison.") in [i.value for i in at.info]
    assert "sig" not in headers(at) and "mine" in headers(at)
    assert at.query_params["models"] == "ae-mlp-z2"
    assert any("Your own models cannot be shared by link" in c.value and "mine" in c.value for c in at.caption)


def test_fewer_than_two_models_asks_for_more():
    at = run({"models": "ae-mlp-z2"})
    assert not at.exception
    assert "Pick at least two models (of the same data) to compare them." in [i.value for i in at.info]
    assert not at.get("plotly_chart")


def test_umap_maps_come_from_the_zoo_and_your_own_models_fall_back_to_pca(give_model):
    mine = aeviz.build(aeviz.config_for("mnist", latent_dim=8, hidden=(16,))).eval()
    at = AppTest.from_function(page)
    at.query_params.update({"models": "ae-mlp-z16,ae-mlp-z2", "proj": "umap"})
    mine_id = give_model(at, "mine", mine)
    at.run(timeout=120)
    assert at.radio(key="cmp_proj").value == "umap"
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    umap = io.load_views(state.cards()["ae-mlp-z16"])["umap"]
    for t in traces:
        idx = _array(t["customdata"]).astype(int)
        assert np.allclose(_array(t["x"]), umap[idx, 0])
    at.multiselect(key="cmp_models").select(mine_id).run(timeout=120)
    assert ("mine has no precomputed UMAP map (only pretrained models do), so PCA is shown."
            in [c.value for c in at.caption])
    assert at.query_params["proj"] == "umap"


def _latent_views(at) -> list[dict]:
    return [json.loads(e.proto.json or e.proto.mixed.json) for e in at.get("bidi_component")
            if e.proto.WhichOneof("data") in ("json", "mixed")]


def test_one_pad_decodes_the_same_code_in_every_model_of_that_size():
    at = run({"models": "ae-mlp-z2,vae-mlp-z2,ae-mlp-z16"})
    assert not at.exception
    (pad,) = _latent_views(at)  # ae-mlp-z16 has no partner of its size
    assert pad["mode"] == "pad" and pad["titles"] == ["ae-mlp-z2", "vae-mlp-z2"] and len(set(pad["models"])) == 2
    assert pad["x_range"][0] <= -2.5 and pad["x_range"][1] >= 2.5  # wide enough for the VAE's prior too
    at.session_state["cmp_pad::2"] = {"z": [1.5, -0.75]}  # the browser lets go of the point there
    at.run(timeout=120)
    assert not at.exception and _latent_views(at)[0]["value"] == [1.5, -0.75]
    assert any(c.value.startswith("2-D code z = (1.50, -0.75), decoded by ae-mlp-z2, vae-mlp-z2") for c in at.caption)


def test_codes_of_more_dimensions_get_shared_sliders_and_lone_sizes_a_note():
    at = run({"models": "ae-mlp-z16,ae-conv-z16,vae-mlp-z16,vae-conv-z16"})
    (sliders,) = _latent_views(at)
    assert sliders["mode"] == "sliders" and len(sliders["titles"]) == 4 and sliders["dims"] == list(range(8))
    assert len(sliders["value"]) == 16 and all(lo < hi for lo, hi in zip(sliders["lo"], sliders["hi"]))
    at = run({"models": "ae-mlp-z2,ae-mlp-z16"})
    assert not _latent_views(at)
    assert any(i.value.startswith("No two of the chosen models have codes of the same size") for i in at.info)


def test_every_presets_first_visit_finds_what_it_draws_made_in_advance(monkeypatch):
    """warm_presets (run by the Explorer's warm-up thread after the zoo) makes each preset's pictures, maps and table
    with the default settings: a first visit then decodes, interpolates, samples, builds and encodes nothing."""
    import threading

    from aeviz import analysis, plots
    from aeviz.ui import widgets
    from aeviz.ui.pages import compare as compare_page

    for thread in threading.enumerate():  # an earlier test's warm-up would call the same functions meanwhile
        if thread.name == "aeviz-warm-zoo":
            thread.join(timeout=300)
    state.clear_caches()
    assert compare_page.warm_presets() == [p.title for p in compare.PRESETS]
    made = []
    for module, name in ((compare, "interpolation"), (compare, "prior_samples"), (analysis, "reconstruct"),
                         (plots, "latent_scatter_spec"), (widgets, "png")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: made.append(_n) or _f(*a, **k))
    at = run()  # the default comparison: the first preset
    assert not at.exception and at.selectbox(key="cmp_preset").value == compare.PRESETS[0].title
    for preset in compare.PRESETS[1:]:
        at.selectbox(key="cmp_preset").set_value(preset.title).run(timeout=120)
        assert not at.exception and at.multiselect(key="cmp_models").value == list(preset.models)
    assert made == []
