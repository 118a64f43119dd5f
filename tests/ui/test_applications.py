"""AppTest of the application pages against the real pretrained/ models; live training is shrunk to a few epochs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz import analysis
from aeviz.data import load
from aeviz.ui import state
from aeviz.uses import augmentation, sweep

TIMEOUT = 180


@pytest.fixture(autouse=True)
def quick_training(monkeypatch):
    """Pages train their small models in 2 epochs here, so a test takes seconds instead of a minute."""
    real = sweep.quick_configs

    def shrunk(dataset, latent_dim):
        mc, tc = real(dataset, latent_dim)
        return mc, aeviz.TrainConfig(epochs=2, batch_size=tc.batch_size, lr=tc.lr, eval_every=0)

    monkeypatch.setattr(sweep, "quick_configs", shrunk)


def _needs(*names):
    missing = [n for n in names if n not in state.cards()]
    if missing:
        pytest.skip(f"pretrained/ lacks {', '.join(missing)}")


def _script(page: str) -> None:
    import importlib

    from aeviz.ui import state

    state.sidebar()
    importlib.import_module(f"aeviz.ui.pages.{page}").render()


def _app(page: str) -> AppTest:
    at = AppTest.from_function(_script, kwargs={"page": page})
    at.run(timeout=TIMEOUT)
    assert not at.exception, at.exception
    return at


def test_every_page_module_is_registered_once_in_app_py():
    from pathlib import Path

    import aeviz.ui.pages as pages

    app = (Path(__file__).parents[2] / "app.py").read_text()
    names = sorted(p.stem if p.suffix == ".py" else p.name for p in Path(pages.__file__).parent.iterdir()
                   if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists()))
    assert names == ["anomaly", "augmentation", "board", "compare", "compression", "explorer", "features", "imputation", "lab",
                     "reduction"]
    assert all(app.count(f'page("{n}", ') == 1 for n in names)


def test_reduction_swiss_roll_then_slow_maps_then_mnist(monkeypatch):

    at = _app("reduction")
    table = at.dataframe[0].value
    assert list(table.index) == ["Autoencoder code", "PCA"]  # UMAP and t-SNE wait for the student
    assert 0.5 < table.loc["PCA", "trustworthiness"] <= 1.0
    assert table.loc["PCA", "unrolled (linear R²)"] < 0.5  # PCA leaves the roll rolled up
    assert "trained here" in table.loc["Autoencoder code", "how"]
    assert len(at.get("plotly_chart")) == 3  # the 3-D data and two maps

    def fake(x, method, seed=0):  # stand-in: the real UMAP and t-SNE take a minute on a busy CPU
        flat = np.asarray(x).reshape(len(x), -1)
        return flat[:, :2] if method == "umap" else flat[:, 1:3]

    monkeypatch.setattr(analysis, "project", fake)
    at.toggle(key="red_slow").set_value(True).run(timeout=TIMEOUT)
    table = at.dataframe[0].value
    assert list(table.index) == ["Autoencoder code", "PCA", "UMAP", "t-SNE"]
    assert "UMAP" in at.caption[-1].value

    at.radio(key="red_data").set_value("mnist").run(timeout=TIMEOUT)
    table = at.dataframe[0].value
    assert "5-NN accuracy" in table.columns and 0.1 < table.loc["PCA", "5-NN accuracy"] < 1.0
    assert "unrolled (linear R²)" not in table.columns


def test_features_sweep_trains_missing_sizes_on_demand():
    _needs("ae-mlp-z2")
    at = _app("features")
    table = at.dataframe[0].value
    raw = table[table["features"] == "raw pixels"].iloc[0]
    assert 0.8 < raw["linear probe"] <= 1.0 and 0.8 < raw["5-NN"] <= 1.0
    assert sorted(table.loc[table["features"] == "PCA", "size"]) == list(sweep.LATENT_SIZES)
    ae = table[table["features"] == "autoencoder"]
    assert 2 in set(ae["size"]) and ae["source"].str.startswith("pretrained").all()
    if at.button:  # some sizes have no pretrained model: the button trains them
        at.button(key="feat_train").click().run(timeout=TIMEOUT)
        table = at.dataframe[0].value
        ae = table[table["features"] == "autoencoder"]
        assert sorted(ae["size"]) == list(sweep.LATENT_SIZES)
        assert ae["source"].str.contains("trained here").any()
    assert len(at.get("plotly_chart")) == 2
    assert any("linear probe: " in c.value and "z = none" not in c.value for c in at.caption)
    groups = list(dict.fromkeys(table["features"]))
    assert groups[:3] == ["raw pixels", "autoencoder", "PCA"]
    assert (table["features"] != table["features"].shift()).sum() == len(groups)  # each group in one block
    for feature, group in table.groupby("features", sort=False):  # the zoo lists vae-mlp-z16 before vae-mlp-z2
        assert list(group["size"]) == sorted(group["size"]), feature


def test_feature_reading_names_the_sizes_in_plain_words():
    from aeviz.ui.pages.features import _versus

    assert _versus(["2", "16"], []) == "the autoencoder's code beats PCA at every size with a model (z = 2, 16)."
    assert _versus([], ["8"]) == "PCA is as good or better at every size with a model (z = 8)."
    assert _versus(["2"], ["32"]) == "the autoencoder's code beats PCA at z = 2 and not at z = 32."


def test_compression_points_and_side_by_side():
    _needs("ae-mlp-z2")
    at = _app("compression")
    table = at.dataframe[0].value  # "All rate–distortion points"
    jpeg = table[table["method"] == "JPEG"]
    assert (jpeg["bytes"] > jpeg["bytes_without_tables"]).all() and jpeg["bytes"].min() > 100
    ae = table[(table["method"] == "autoencoder") & (table["k"] == 2)]
    assert sorted(ae["bytes"]) == [1.0, 2.0, 8.0]  # 4 bits, 8 bits, float32
    at.selectbox(key="comp_rate").set_value((2, 8)).run(timeout=TIMEOUT)
    shown = [c for image in at.image for c in image.captions]
    assert shown[0] == "original · 784 B" and shown[1].startswith("autoencoder · 2 B")
    assert shown[-1].startswith("JPEG q=")
    at.radio(key="comp_metric").set_value("MSE").run(timeout=TIMEOUT)
    assert not at.exception
    y = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["yaxis"]
    assert (y["type"], y["exponentformat"], y["title"]["text"]) == ("log", "power", "mean squared error (log scale)")


def _grid_caption(at) -> str:
    return next(c for image in at.image for c in image.captions if " variants at s = " in c)


def test_augmentation_grid_download_and_experiment():

    _needs("vae-mlp-z16")
    at = _app("augmentation")
    assert not at.radio and "plain autoencoder" in at.caption[1].value  # ae-mlp-z2 can only move its code
    at.sidebar.selectbox(key="model").set_value("vae-mlp-z16").run(timeout=TIMEOUT)
    assert at.radio(key="aug_mode").value == "posterior"
    model, data = aeviz.load(state.cards()["vae-mlp-z16"].path), load("mnist")
    x, spread = data.x_test.numpy()[:1], augmentation.code_spread(model, data.x_train)
    plain = float(np.abs(analysis.reconstruct(model, x) - x).mean())
    at.slider(key="aug_scale").set_value(0.0).run(timeout=TIMEOUT)
    # scale 0: every variant is the plain reconstruction, so they all differ from the original by as much as it does
    assert _grid_caption(at) == f"16 variants at s = 0.0, mean change per pixel {plain:.3f}"
    at.slider(key="aug_scale").set_value(2.0).run(timeout=TIMEOUT)
    far = augmentation.augment(model, x, 16, 2.0, 0, spread, "posterior")
    assert _grid_caption(at) == f"16 variants at s = 2.0, mean change per pixel {np.abs(far - x).mean():.3f}"
    assert np.abs(far - x).mean() > plain + 0.005  # far draws stray from the source image
    at.select_slider(key="aug_pc").set_value(5)
    at.slider(key="aug_k").set_value(2).run(timeout=TIMEOUT)
    at.button(key="aug_run").click().run(timeout=TIMEOUT)
    table = at.dataframe[0].value
    expected = augmentation.few_shot_gain(model, data, 5, 2, 0.5, tuple(table["seed"]), spread, "posterior")
    real, aug = np.array(expected["real only"]), np.array(expected["real + augmented"])
    np.testing.assert_allclose(table["real only"], real)
    np.testing.assert_allclose(table["change"], aug - real)
    gain = (aug - real) * 100
    assert at.metric[2].label == "change (same draws)"
    assert at.metric[2].value == f"{gain.mean():+.1f} ± {gain.std():.1f} points"
    clear = abs(gain.mean()) > gain.std() and ((gain > 0).all() or (gain < 0).all())
    verdict = next(m.value for m in at.markdown if m.value.startswith(("**No clear effect", "**Augmentation")))
    assert verdict.startswith("**Augmentation" if clear else "**No clear effect")


def test_image_pages_refuse_a_points_model_in_one_sentence(give_model):
    mc, tc = sweep.quick_configs("swiss-roll", 2)
    model, _ = aeviz.train(mc, tc)
    at = AppTest.from_function(_imputation_with_session_model)
    at.session_state["model"] = give_model(at, "roll", model)
    at.run(timeout=TIMEOUT)
    assert not at.exception
    assert "works on images" in at.info[0].value


def _imputation_with_session_model():
    from aeviz.ui import state
    from aeviz.ui.pages import imputation

    state.sidebar()
    imputation.render()


def _imputation_shown(at, traces) -> dict:
    """The numbers the imputation page shows: its four metrics, and the test-set curve of its error chart."""
    shown = {m.label: float(m.value) for m in at.metric}
    chart = next(c for c in at.get("plotly_chart") if c.key == "imp_err")
    return {**shown, "curve": traces(chart)["test set (500 images)"][1]}


def test_imputation_beats_the_mean_image_on_the_test_set(traces):
    _needs("ae-mlp-z16")
    at = _app("imputation")
    at.sidebar.selectbox(key="model").set_value("ae-mlp-z16").run(timeout=TIMEOUT)
    assert at.selectbox(key="imp_method").value == "fit the code"
    shown = _imputation_shown(at, traces)
    curve, mean_fill, ae = shown["curve"], shown["test set · mean-image fill"], shown["test set · autoencoder, 100 steps"]
    assert len(curve) == 101 and curve[0] == pytest.approx(mean_fill, abs=5e-5) and curve[-1] == pytest.approx(ae, abs=5e-5)
    # Measured: top half missing, 0.064 for the mean image, 0.055 after 100 steps of fitting the code.
    assert ae < 0.95 * mean_fill
    assert any("ends below the mean-image baseline" in c.value for c in at.caption)
    at.selectbox(key="imp_method").set_value("iterated reconstruction").run(timeout=TIMEOUT)
    at.selectbox(key="imp_mask").set_value("random pixels").run(timeout=TIMEOUT)
    at.slider(key="imp_rate").set_value(0.3)
    at.slider(key="imp_iters").set_value(3).run(timeout=TIMEOUT)
    assert not at.exception
    shown = _imputation_shown(at, traces)
    assert len(shown["curve"]) == 4 and at.metric[1].label == "test set · autoencoder, 3 iterations"
    # Scattered missing pixels are easy for both methods: 0.07 for the mean image, about 0.03 here.
    assert shown["test set · autoencoder, 3 iterations"] < 0.6 * shown["test set · mean-image fill"]
    assert at.metric[0].value == f"{shown['curve'][0]:.4f}" and at.metric[1].value == f"{shown['curve'][-1]:.4f}"
