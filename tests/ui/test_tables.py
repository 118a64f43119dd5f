"""Tables in the Explorer: wine and breast-cancer render on every view, rows drawn as named bars in the file's units.

The models are the student's own (tiny, trained here for two epochs), so the page runs without the sidebar (see
tests/ui/test_explorer.py: AppTest cannot rerun a picker whose format_func reads session state).
"""
from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz.data import load
from aeviz.userdata import unscale

VIEWS = ("Reconstructions", "Traversal", "Interpolation", "Sampling (VAE)", "Latent history")
CASES = {"wine": dict(objective="variational", latent_dim=2), "breast-cancer": dict(latent_dim=4)}


def _page():
    from aeviz.ui.pages import explorer

    explorer.render()


@pytest.fixture(scope="module")
def models():
    out = {}
    for name, kw in CASES.items():
        mc = aeviz.config_for(name, hidden=(16,), recon="mse", **kw)
        out[name] = aeviz.train(mc, aeviz.TrainConfig(epochs=2, batch_size=32), load(name))[0]
    return out


def _app(give_model, model) -> AppTest:
    at = AppTest.from_function(_page, default_timeout=60)
    at.session_state["model"] = give_model(at, "table model", model)
    return at.run()


def _traces(chart) -> list:
    import plotly.io

    return list(plotly.io.from_json(chart.proto.spec).data)


def _array(v) -> np.ndarray:
    """A trace's numbers: plotly sends numpy arrays as base64 typed arrays."""
    import base64

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def _bars(at: AppTest, key: str) -> list:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key))
    return [t for t in _traces(chart) if t.type == "bar"]


@pytest.fixture(scope="module")
def user_models():
    """Models of a user's zip of images, time series and anomaly table (registered as a training would)."""
    from aeviz import userdata
    from aeviz.bench.datafiles import images_zip, series_csv, table_csv

    files = {"user-images": (images_zip(40), "shapes.zip", {}),
             "user-series": (series_csv(100), "waves.csv", {"kind": "series"}),
             "user-anomalies": (table_csv(), "parts.csv", {"label_column": "kind", "anomaly_value": "c"})}
    out = {}
    for name, (raw, file, options) in files.items():
        key = userdata.register_user_dataset(name, userdata.read_data(raw, file_name=file, **options))
        mc = aeviz.config_for(key, hidden=(16,), recon="mse")
        out[name] = aeviz.train(mc, aeviz.TrainConfig(epochs=2, batch_size=32), load(key))[0]
    return out


@pytest.mark.parametrize("name", ["user-images", "user-series"])
def test_user_images_and_series_render_on_every_explorer_view(name, user_models, give_model, charts):
    at = _app(give_model, user_models[name])
    if name == "user-series":  # no labels: one colour, no legend, and the sample says so
        m = charts(at, "map")
        assert m["label_names"] == [] and len(m["labels"]) == 0 and len(m["xy"]) > 0
        assert any("**Test sample #0** · no label" in m.value for m in at.markdown)
    for view in VIEWS:
        at.session_state["ex_view"] = view
        at.run()
        assert not at.exception and at.error.len == 0, (name, view, at.exception, [e.value for e in at.error])


@pytest.mark.parametrize("name", list(CASES))
def test_a_table_renders_on_every_explorer_view(name, models, give_model):
    at = _app(give_model, models[name])
    assert not at.exception, at.exception
    for view in VIEWS:
        at.session_state["ex_view"] = view
        at.run()
        assert not at.exception, (name, view, at.exception)
        assert at.error.len == 0, (name, view, [e.value for e in at.error])


@pytest.mark.parametrize("name", list(CASES))
def test_the_selected_row_is_drawn_as_named_bars_with_the_file_s_units(name, models, give_model):
    at = _app(give_model, models[name])
    data = load(name)
    bars = _bars(at, "ex_pair")
    columns = data.extras["preprocessing"]["columns"]
    assert [b.name for b in bars] == ["original x", "reconstruction x̂"]
    assert list(bars[0].x) == columns  # one bar per feature, named
    raw = unscale(data.x_test[0].numpy()[None], data.extras["preprocessing"])[0]
    shown = [float(t.split(" ")[0]) for t in bars[0].customdata]
    assert np.allclose(shown, raw, rtol=1e-3)  # hover: the file's units
    pre = data.extras["preprocessing"]["scaler"]
    z = (raw - np.asarray(pre["mean"])) / np.asarray(pre["std"])
    assert np.allclose(_array(bars[0].y), z, atol=1e-4)  # bar length: standardised
    table = next(df for df in at.dataframe if "original x" in df.value.columns)
    assert np.allclose(table.value["original x"], raw, rtol=1e-3)


def test_no_table_is_drawn_in_3d_and_the_3d_clouds_still_are(models, give_model):
    from aeviz.ui.pages.explorer import draw

    assert draw.kind(load("wine")) == draw.kind(load("breast-cancer")) == "table"
    assert draw.kind(load("swiss-roll")) == draw.kind(load("s-curve")) == "points"
    assert draw.kind(load("mnist")) == draw.kind(load("mnist-rows")) == "image"
    assert draw.kind(load("signals")) == "signal"
    at = _app(give_model, models["breast-cancer"])
    at.session_state["ex_view"] = "Traversal"
    at.run()
    charts = at.get("plotly_chart")
    assert charts and all(t.type != "scatter3d" for c in charts for t in _traces(c))


# --- the other pages: each works with a table, or says in one sentence why it does not apply --------------------

def _use_page(name: str):
    from aeviz.ui.pages import anomaly, augmentation, compare, compression, features, imputation, reduction

    {"anomaly": anomaly, "augmentation": augmentation, "compare": compare, "compression": compression,
     "features": features, "imputation": imputation, "reduction": reduction}[name].render()


def _on(page: str, give_model, *models, **state) -> AppTest:
    at = AppTest.from_function(_use_page, default_timeout=180, kwargs={"name": page})
    ids = [give_model(at, f"model {i}", m) for i, m in enumerate(models)]
    at.session_state["model"] = ids[0]
    for k, v in state.items():
        at.session_state[k] = ids if v == "ids" else v
    at.run()
    assert not at.exception, at.exception
    return at


def test_compare_takes_two_table_models(models, give_model):
    other = aeviz.train(models["wine"].config, aeviz.TrainConfig(epochs=1, batch_size=32, seed=1), load("wine"))[0]
    at = _on("compare", give_model, models["wine"], other, cmp_models="ids")
    assert [i.value for i in at.info] == ["The wine samples are not images, so the picture rows are left out; the "
                                          "maps and the metrics below still compare the models."]
    assert sum(c.proto.id.split("-")[-1].startswith("cmp_map::") for c in at.get("plotly_chart")) == 2


def test_reduction_maps_the_sidebar_model_s_table(models, give_model):
    at = _on("reduction", give_model, models["wine"], red_data="wine")
    table = at.dataframe[-1].value  # the page's table of maps
    assert list(table.index) == ["Autoencoder code", "PCA"] and "5-NN accuracy" in table.columns
    assert "the sidebar model model 0" in table.loc["Autoencoder code", "how"]  # its own 2-D code, not a new model


def test_reduction_offers_a_user_s_data_and_judges_unlabelled_maps_by_trustworthiness(user_models, give_model):
    at = _on("reduction", give_model, user_models["user-series"], red_data="user:user-series")
    assert "your data user-series (16-D)" in at.radio(key="red_data").options
    table = at.dataframe[-1].value
    assert list(table.columns[:1]) == ["trustworthiness"] and "5-NN accuracy" not in table.columns


def test_features_scores_a_labelled_table_and_says_why_not_without_classes(models, user_models, give_model):
    at = _on("features", give_model, models["wine"])
    own = at.dataframe[0].value  # the sidebar model on its own data comes first
    assert list(own["features"]) == ["raw values", "PCA", "autoencoder model 0"]
    assert own[["linear probe", "5-NN"]].to_numpy().min() > 0.3  # three cultivars: chance is 1/3
    at = _on("features", give_model, user_models["user-anomalies"])
    assert at.info[0].value.startswith("Feature extraction needs class labels, and the data of the sidebar's model "
                                       "model 0 (user-anomalies) have training samples of one class only")


@pytest.mark.parametrize("page", ["compression", "augmentation", "imputation"])
def test_image_pages_say_in_one_sentence_why_a_table_does_not_apply(page, models, give_model):
    at = _on(page, give_model, models["breast-cancer"])
    sentence = at.info[0].value
    assert sentence.count(". ") <= 1 and "breast-cancer" in sentence and "image" in sentence


def test_the_anomaly_page_scores_a_user_s_anomaly_table(user_models, give_model):
    at = _on("anomaly", give_model, user_models["user-anomalies"], anomaly_tab="Tables")
    at.radio(key="anomaly_table_data").set_value("the sidebar's model model 0 on its data").run()
    assert not at.exception and at.error.len == 0
    aurocs = {m.label: float(m.value) for m in at.metric if m.label.startswith("AUROC")}
    assert list(aurocs) == ["AUROC · autoencoder", "AUROC · PCA, 2 components", "AUROC · IsolationForest"]
    assert all(0 <= v <= 1 for v in aurocs.values())
    assert any(c.proto.id.endswith("anomaly_table_roc") for c in at.get("plotly_chart"))


def test_the_anomaly_page_compares_three_detectors_on_breast_cancer(models, give_model):
    at = _on("anomaly", give_model, models["wine"], anomaly_tab="Tables")  # wine is no anomaly table: no choice
    assert at.error.len == 0 and "anomaly_table_data" not in [r.key for r in at.radio]
    aurocs = {m.label: float(m.value) for m in at.metric if m.label.startswith("AUROC")}
    assert list(aurocs) == ["AUROC · autoencoder", "AUROC · PCA, 4 components", "AUROC · IsolationForest"]
    assert all(0.8 < v <= 1 for v in aurocs.values()), aurocs  # malignant tumours are easy to tell: all score high
    best = max(aurocs, key=aurocs.get).removeprefix("AUROC · ")  # the page says which ranks them best
    assert any(m.value.startswith("Here the autoencoder") and best in m.value for m in at.markdown), best
    assert any("200 epochs on the benign training tumours" in c.value for c in at.caption)


def test_the_auroc_reading_names_the_winner():
    from aeviz.ui.pages.anomaly import auroc_reading

    assert auroc_reading({"autoencoder": 0.92, "PCA, 4 components": 0.94, "IsolationForest": 0.97}) == (
        "Here the autoencoder (0.920) does not beat the simpler IsolationForest (0.970): on a few tidy measurements "
        "a linear or tree-based baseline is often enough.")
    assert auroc_reading({"autoencoder": 0.99, "PCA, 4 components": 0.94, "IsolationForest": 0.97}) == (
        "Here the autoencoder ranks the anomalies best (AUROC 0.990, against 0.970 for IsolationForest).")


def test_augmentation_says_why_its_experiment_needs_labels(give_model):
    from aeviz import userdata
    from aeviz.bench.datafiles import png, zip_bytes

    raw = zip_bytes({f"{i}.png": png(8, 50, i) for i in range(40)})  # no folders: no labels
    key = userdata.register_user_dataset("unlabelled-images", userdata.read_data(raw, file_name="flat.zip"))
    model = aeviz.train(aeviz.config_for(key, hidden=(16,)), aeviz.TrainConfig(epochs=1), load(key))[0]
    at = _on("augmentation", give_model, model)
    assert [i.value for i in at.info] == [
        "The classifier experiment needs two classes or more with at least 5 labelled training images each; the data "
        "of model 0 (unlabelled-images) have no class labels, so only the variants above apply."]
    assert "aug_run" not in [b.key for b in at.button] and at.image  # the variants are drawn
