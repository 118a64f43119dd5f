"""The Denoising & regularizers page: every control, and the numbers it shows against the backend's."""
import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz import analysis, images
from aeviz import io as aio
from aeviz.data import corrupt, load
from aeviz.uses import regularizers as R

ZOO = ("ae-mlp-z16", "dae-mlp-z16", "cae-mlp-z16", "sparse-mlp-z64", "ae-mlp-shallow-z64")
TINY = {  # stand-ins with the zoo's names and objectives, used only while pretrained/ lacks them
    "ae-mlp-z16": dict(latent_dim=16, hidden=(32,)),
    "dae-mlp-z16": dict(latent_dim=16, hidden=(32,), objective="denoising", noise_level=0.5),
    "cae-mlp-z16": dict(latent_dim=16, hidden=(32,), objective="contractive"),
    "sparse-mlp-z64": dict(latent_dim=64, hidden=(), objective="sparse"),
    "ae-mlp-shallow-z64": dict(latent_dim=64, hidden=()),
    "ae-conv-z16": dict(latent_dim=16, arch="conv", hidden=(4, 8)),
}


def _clear_caches():
    from aeviz.ui import state

    state.forget_zoo()
    state._zoo_model.clear()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The real pretrained/ when it holds the lab's models, else tiny untrained stand-ins under the same names."""
    if all(n in {c.name for c in aio.pretrained()} for n in ZOO):
        _clear_caches()
        yield aio.PRETRAINED
        return
    folder = tmp_path_factory.mktemp("zoo")
    for i, (name, kw) in enumerate(TINY.items()):
        import torch

        torch.manual_seed(i)
        aeviz.save(aeviz.build(aeviz.config_for("mnist", **kw)), folder / f"{name}.safetensors")
    mp = pytest.MonkeyPatch()
    mp.setattr(aio, "PRETRAINED", folder)
    _clear_caches()
    yield folder
    mp.undo()
    _clear_caches()


def _page():
    from aeviz.ui import state
    from aeviz.ui.pages import lab

    state.sidebar()
    lab.render()


def _app(tab: str = "Denoising") -> AppTest:
    at = AppTest.from_function(_page, default_timeout=120)
    at.session_state["lab_tab"] = tab
    return at.run()


def _model(name: str):
    return aeviz.load(aio.PRETRAINED / f"{name}.safetensors")


def _x(index: int = 0) -> np.ndarray:
    return load("mnist").x_test[index: index + 1].numpy()


def _metrics(at) -> list[str]:
    return [m.value for m in at.metric]


def _expected(x, noise="gaussian", level=0.5, seed=0, filter_kind="median", denoiser="dae-mlp-z16",
              vanilla="ae-mlp-z16") -> list[str]:
    """The PSNR metric texts the columns should show, computed straight from the backend."""
    out = R.outputs({denoiser: _model(denoiser), vanilla: _model(vanilla)}, corrupt(x, noise, level, seed), filter_kind)
    return ["reference"] + [f"{analysis.psnr(x, v):.1f} dB" for v in out.values()]


def _live_view(at) -> dict:
    (view,) = [json.loads(e.proto.json or e.proto.mixed.json) for e in at.get("bidi_component")
               if e.proto.WhichOneof("data") in ("json", "mixed")]
    assert view["mode"] == "denoise"
    return view


def _chart_text(at, index: int = 0) -> str:
    return json.dumps(json.loads(at.get("plotly_chart")[index].proto.spec))


def _values(data) -> np.ndarray:
    """A plotly trace's array, which the JSON spec may hold as base64 bytes."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), np.dtype(data["dtype"]))
    return np.asarray(data, float)


def _digit_png() -> bytes:
    img = Image.new("RGB", (120, 90), "white")
    ImageDraw.Draw(img).line([(40, 15), (80, 15), (55, 80)], fill="black", width=8)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# --- Denoising ------------------------------------------------------------------------------------------------

def test_denoising_defaults_show_five_aligned_columns_with_scores(zoo):
    at = _app()
    assert not at.exception
    assert at.selectbox(key="lab_dn_model").value == "dae-mlp-z16"
    assert at.selectbox(key="lab_dn_vanilla").value == "ae-mlp-z16"
    live = _live_view(at)  # gaussian noise: the browser corrupts and denoises while σ moves
    assert live["value"] == 0.5 and live["max_level"] == 1.0  # starts at the denoiser's training level
    assert live["titles"] == ["Denoiser: dae-mlp-z16", "Vanilla: ae-mlp-z16"]
    assert np.allclose(np.reshape(live["image"], (1, 1, 28, 28)), _x(0))
    noisy = np.clip(_x(0) + 0.5 * np.reshape(live["noise"], (1, 1, 28, 28)), 0, 1)  # what the browser draws
    assert np.allclose(noisy, corrupt(_x(0), "gaussian", 0.5, 0), atol=1e-6)  # is what the server scores
    assert "Measured at σ = 0.50, where you let go: every result against the clean digit." in [c.value for c in at.caption]
    assert _metrics(at) == _expected(_x(0))
    assert [i.captions[0] for i in at.image] == ["Clean x: test image #0", "Noisy x̃", "Denoiser: dae-mlp-z16",
                                                 "Vanilla: ae-mlp-z16", "Median filter (3x3)"]
    captions = [c.value for c in at.caption]
    assert "SSIM 1 (itself)" in captions
    assert sum(c.startswith(("SSIM 0.", "SSIM -")) for c in captions) == 4
    assert "denoiser's training level" in _chart_text(at) and "your level" in _chart_text(at)


def test_noise_level_seed_and_index_change_the_columns(zoo):
    at = _app()
    at.session_state["lab_dn_live"] = {"level": 0.2}  # the browser's σ slider let go of at 0.2
    at.run()
    assert _metrics(at) == _expected(_x(0), level=0.2) and _live_view(at)["value"] == 0.2
    at.number_input(key="lab_dn_seed").set_value(3).run()
    assert _metrics(at) == _expected(_x(0), level=0.2, seed=3)
    at.number_input(key="lab_dn_index").set_value(7).run()
    assert _metrics(at) == _expected(_x(7), level=0.2, seed=3)
    assert at.image[0].captions == ["Clean x: test image #7"]


def test_noise_type_mismatch_drops_the_training_marker(zoo):
    at = _app()
    at.selectbox(key="lab_dn_noise").set_value("salt-pepper").run()
    assert not at.get("bidi_component")  # the browser corrupts with gaussian noise only: the server's slider takes over
    assert at.slider(key="lab_dn_level").value == 0.5
    assert _metrics(at) == _expected(_x(0), noise="salt-pepper")
    assert "denoiser's training level" not in _chart_text(at)
    assert any("type mismatch" in c.value for c in at.caption)


def test_filter_and_model_pickers(zoo):
    at = _app()
    at.selectbox(key="lab_dn_filter").set_value("gaussian").run()
    assert _metrics(at) == _expected(_x(0), filter_kind="gaussian")
    at.selectbox(key="lab_dn_vanilla").set_value("cae-mlp-z16").run()
    assert _metrics(at) == _expected(_x(0), filter_kind="gaussian", vanilla="cae-mlp-z16")
    at.selectbox(key="lab_dn_vanilla").set_value("dae-mlp-z16").run()  # one model in both slots: still 5 columns
    assert len(at.image) == 5 and at.image[3].captions == ["Vanilla: dae-mlp-z16"]
    at.selectbox(key="lab_dn_model").set_value("ae-mlp-z16").run()  # not a denoiser: no level to mark
    assert "denoiser's training level" not in _chart_text(at)
    assert any("was not trained on noise" in c.value for c in at.caption)


def test_upload_converts_a_picture_and_bad_files_change_nothing(zoo):
    at = _app()
    at.segmented_control(key="lab_dn_source").set_value("Upload").run()
    assert any("Until a picture is uploaded" in c.value for c in at.caption)
    at.file_uploader(key="lab_dn_upload").upload("seven.png", _digit_png(), "image/png").run()
    assert not at.error
    digit = images.from_bytes(_digit_png())[None, None]
    good = _expected(digit)
    assert _metrics(at) == good and at.image[0].captions == ["Clean x: your upload"]
    for name, data, says in [("broken.png", _digit_png()[:100], "broken.png is damaged or cut short"),
                             ("empty.png", b"", "empty.png is empty (0 bytes)"),
                             ("notes.png", b"plain text " * 20, "notes.png is not a picture that can be read")]:
        at.file_uploader(key="lab_dn_upload").upload(name, data, "image/png").run()
        assert [e.value for e in at.error] == [next(e.value for e in at.error if e.value.startswith(says))]
        assert _metrics(at) == good  # the last good picture stays


def test_drawing_without_and_with_ink(zoo, monkeypatch):
    at = _app()
    at.segmented_control(key="lab_dn_source").set_value("Draw").run()
    assert any("Until you draw" in c.value for c in at.caption)
    assert _metrics(at) == _expected(_x(0))
    from aeviz.ui.pages.lab import denoise

    drawn = np.zeros((224, 224), np.float32)
    drawn[40:190, 100:120] = 1.0
    digit = images.from_array(drawn)
    monkeypatch.setattr(denoise, "draw_digit", lambda key: digit)
    at.run()
    assert at.image[0].captions == ["Clean x: your drawing"]
    assert _metrics(at) == _expected(digit[None, None])


# --- Sparse -----------------------------------------------------------------------------------------------------

def test_sparse_tab_shows_activity_of_the_pair(zoo):
    at = _app("Sparse")
    assert not at.exception
    assert at.selectbox(key="lab_sp_model").value == "sparse-mlp-z64"
    assert at.selectbox(key="lab_sp_vanilla").value == "ae-mlp-shallow-z64"
    x = load("mnist").x_test.numpy()
    want = []
    for name in ("sparse-mlp-z64", "ae-mlp-shallow-z64"):
        model = _model(name)
        a = R.activity(model, x)
        psnr = analysis.psnr(x, analysis.reconstruct(model, x).reshape(x.shape))
        want += [f"{a.per_image.mean():.0%}", f"{int((a.per_unit == 0).sum())} of 64", f"{psnr:.1f} dB"]
    assert _metrics(at) == want
    assert len(at.get("plotly_chart")) == 2
    assert [i.captions[0] for i in at.image] == ["sparse-mlp-z64: 64 units, most often active first",
                                                 "ae-mlp-shallow-z64: 64 units, most often active first"]
    at.radio(key="lab_sp_which").set_value("decoder").run()
    assert len(at.image) == 2


def test_feature_images_explain_when_a_model_has_none(zoo):
    at = _app("Sparse")
    at.selectbox(key="lab_sp_vanilla").set_value(next(o for o in at.selectbox(key="lab_sp_vanilla").options
                                                      if "conv" in o or "rnn" in o)).run()
    assert [i.value for i in at.info] == \
        ["Feature images need an MLP model on images; pick one such as sparse-mlp-z64."]


def test_training_a_sparse_model_live_with_every_knob(zoo):
    at = _app("Sparse")
    at.selectbox(key="lab_sp_penalty").set_value("kl").run()
    assert not at.slider(key="lab_sp_rho").disabled
    at.select_slider(key="lab_sp_weight").set_value(0.01)
    at.slider(key="lab_sp_rho").set_value(0.1)
    at.slider(key="lab_sp_epochs").set_value(1)
    at.select_slider(key="lab_sp_units").set_value(16).run()
    at.button(key="lab_sp_train::start").click().run()
    at.session_state["lab_sp_train::job"].wait(120)
    at.run()
    ((key, (ref, model)),) = at.session_state["mine"].items()
    assert ref.name == "sparse-kl-z16-λ0.01-ρ0.1"
    c = model.config
    assert (c.objective, c.sparsity, c.sparsity_weight, c.sparsity_target, c.latent_dim, c.hidden) == \
        ("sparse", "kl", 0.01, 0.1, 16, ())
    assert at.selectbox(key="lab_sp_model").value == key  # shown at once beside its vanilla partner
    never = [m.value for m in at.metric if m.label == "Never active"]
    assert never[0] == f"{int((R.activity(model, load('mnist').x_test.numpy()).per_unit == 0).sum())} of 16"


# --- Contractive --------------------------------------------------------------------------------------------------

def test_contractive_tab_jacobians_and_robustness(zoo):
    at = _app("Contractive")
    assert not at.exception
    names = ["cae-mlp-z16", "ae-mlp-z16", "dae-mlp-z16"]
    assert [at.selectbox(key=k).value for k in ("lab_ct_model", "lab_ct_vanilla", "lab_ct_denoiser")] == names
    x = load("mnist").x_test.numpy()
    norms = {n: R.jacobian_norms(_model(n), x) for n in names}
    assert _metrics(at) == [f"{np.median(v):.3g}" for v in norms.values()]
    assert len(at.get("plotly_chart")) == 3
    # no literal underscores: markdown labels show a bare "_F" as is (LaTeX only between $), plotly titles always
    labels = [re.sub(r"\$[^$]*\$", "", m.label) for m in at.metric]
    x_title = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"]["title"]["text"]
    assert all("_" not in label for label in labels) and all(m.label.endswith(f": {n}") for m, n in zip(at.metric, names))
    assert "_" not in x_title and "<sub>F</sub>" in x_title
    at.toggle(key="lab_ct_relative").set_value(True).run()
    spread = {n: R.code_spread(analysis.embed(_model(n), x)) for n in names}
    assert _metrics(at) == [f"{np.median(norms[n] / spread[n]):.3g}" for n in names]
    at.selectbox(key="lab_ct_denoiser").set_value("ae-mlp-z16").run()  # a model picked twice is shown once
    assert _metrics(at) == [f"{np.median(norms[n] / spread[n]):.3g}" for n in names[:2]]
    at.selectbox(key="lab_ct_denoiser").set_value("dae-mlp-z16").run()
    noise = json.loads(at.get("plotly_chart")[1].proto.spec)["data"]
    assert [t["name"] for t in noise] == names
    assert all(np.all(np.diff(_values(t["y"])) > 0) for t in noise)  # codes move further as the noise grows


# --- Other models ------------------------------------------------------------------------------------------------

def test_page_without_digit_models_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(aio, "PRETRAINED", tmp_path)
    _clear_caches()
    try:
        at = _app()
        assert [i.value for i in at.info][-1].startswith("This page needs autoencoders of 28x28 digit images")
        assert not at.exception
    finally:
        _clear_caches()


def test_sidebar_model_of_another_kind_is_named(zoo, give_model):
    at = AppTest.from_function(_page, default_timeout=120)
    tiny = aeviz.build(aeviz.config_for("digits", latent_dim=2, hidden=(8,)))
    at.session_state["model"] = model_id = give_model(at, "digits-ae", tiny)
    at.run()
    assert at.info[0].value == ("The sidebar's model (digits-ae) does not read 28x28 digits, "
                                "so this page uses the digit models picked below.")
    assert model_id not in at.selectbox(key="lab_dn_model").options
