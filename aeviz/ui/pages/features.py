"""Feature extraction: how useful autoencoder codes are to a simple classifier, against PCA and raw pixels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aeviz import analysis, plots
from aeviz.ui import state
from aeviz.uses import features, is_image_model
from aeviz.uses import sweep as latent_sweep

DATASET = "mnist"
METRICS = ("linear probe", "5-NN")


def render() -> None:
    """Draw the page."""
    st.title("Feature extraction")
    st.caption("Use the encoder as a feature extractor: encode each image to its code z and train a simple "
               "classifier on the codes of 4,000 labelled training digits. If the code keeps what tells digits "
               "apart, a straight line (linear probe) or the 5 nearest neighbours (5-NN) classify the 1,000 test "
               "digits well. The autoencoder never saw a label.")
    _sidebar_data()
    sizes = latent_sweep.LATENT_SIZES
    _train_button(sizes)
    rows = [{"features": "raw pixels", "size": 784, **_raw_scores(), "source": "the 784 pixel values"}]
    for k in sizes:
        r, source = state.sweep_model(k, DATASET, train=False)
        if r is not None:
            rows.append({"features": "autoencoder", "size": k, **_scores(r), "source": source})
    rows += [{"features": "PCA", "size": k, **_pca_scores(k), "source": "fit on the training images"} for k in sizes]
    table = _in_order(pd.DataFrame(rows + _extra_rows()))
    _figures(table, sizes)
    st.dataframe(table, hide_index=True, height=36 * (len(table) + 1) + 4,
                 column_config={m: st.column_config.NumberColumn(format="%.3f") for m in METRICS})
    _reading(table)


def _in_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by features (in the order they first appear: raw pixels, autoencoder, PCA, ...), each group
    by code size: the zoo lists vae-mlp-z16 before vae-mlp-z2."""
    first = {f: i for i, f in enumerate(dict.fromkeys(table["features"]))}
    return table.sort_values(["features", "size"], key=lambda c: c.map(first) if c.name == "features" else c,
                             kind="stable").reset_index(drop=True)


def _sidebar_data() -> None:
    """The sidebar model on its own data, when that is not the digits: its codes against PCA and the raw values.
    Features are judged by how well a classifier reads the classes off them, so the data need class labels."""
    r = state.current()
    if r is None or state.config(r).dataset == DATASET:
        return
    data = state.dataset(state.config(r).dataset)
    what = data.name.removeprefix("user:")
    if not data.label_names or len(np.unique(data.y_train.numpy())) < 2:
        why = "no class labels" if not data.label_names else "training samples of one class only (normal rows)"
        st.info(f"Feature extraction needs class labels, and the data of the sidebar's model {r.name} ({what}) have "
                f"{why}; the digits below still show how it works.")
        return
    k = state.config(r).latent_dim
    st.subheader(f"The sidebar's model on its own data: {what}")
    d = int(np.prod(data.sample_shape))
    x_tr, x_te = data.x_train.numpy().reshape(len(data.x_train), -1), data.x_test.numpy().reshape(len(data.x_test), -1)
    y_tr, y_te = data.y_train.numpy(), data.y_test.numpy()
    pca_tr, pca_te = features.pca_features(x_tr, x_te, min(k, d, len(x_tr)))
    rows = [{"features": "raw values", "size": d, **features.feature_scores(x_tr, y_tr, x_te, y_te)},
            {"features": "PCA", "size": k, **features.feature_scores(pca_tr, y_tr, pca_te, y_te)},
            {"features": f"autoencoder {r.name}", "size": k, **_own_scores(r)}]
    st.dataframe(rows, hide_index=True, column_config={m: st.column_config.NumberColumn(format="%.3f") for m in METRICS})
    state.explain(f"{len(data.label_names)} classes; the classifiers train on the codes of {len(x_tr):,} labelled "
                   f"training samples and are scored on {len(x_te):,} test samples. The autoencoder never saw a label.")
    st.subheader("The digits")


@state.per_model(show_spinner="Encoding the data and fitting the classifiers on the codes…")
def _own_scores(model) -> dict[str, float]:
    d = state.dataset(model.config.dataset)
    tr, te = analysis.embed(model, d.x_train), analysis.embed(model, d.x_test)
    return features.feature_scores(tr, d.y_train.numpy(), te, d.y_test.numpy())


def _train_button(sizes) -> None:
    missing = [k for k in sizes if state.sweep_model(k, DATASET, train=False)[0] is None]
    if not missing:
        return
    mc, tc = latent_sweep.quick_configs(DATASET, missing[0])
    st.info(f"No pretrained autoencoder with z = {', '.join(map(str, missing))}. The button trains them here "
            f"(MLP {mc.hidden}, {tc.epochs} epochs each, seeded: up to about half a minute each on a busy CPU); "
            "they are then kept for every student.")
    if st.button(f"Train z = {', '.join(map(str, missing))} now", key="feat_train"):
        for k in missing:
            state.sweep_model(k, DATASET, train=True)
        st.rerun()


@st.cache_data(show_spinner="Fitting the classifiers on raw pixels…")
def _raw_scores() -> dict[str, float]:
    d = state.dataset(DATASET)
    return features.feature_scores(d.x_train.numpy(), d.y_train.numpy(), d.x_test.numpy(), d.y_test.numpy())


@st.cache_data(show_spinner=False)
def _pca_scores(k: int) -> dict[str, float]:
    d = state.dataset(DATASET)
    tr, te = features.pca_features(d.x_train.numpy(), d.x_test.numpy(), k)
    return features.feature_scores(tr, d.y_train.numpy(), te, d.y_test.numpy())


@state.per_model(show_spinner="Encoding the digits and fitting the classifiers on the codes…")
def _scores(model) -> dict[str, float]:
    d = state.dataset(DATASET)
    tr, te = analysis.embed(model, d.x_train), analysis.embed(model, d.x_test)
    return features.feature_scores(tr, d.y_train.numpy(), te, d.y_test.numpy())


def _extra_rows() -> list[dict]:
    """Pretrained VAEs and the sidebar model, as single points beside the sweep."""
    rows, seen = [], set()
    for name, card in state.cards().items():
        c = card.config
        if c.dataset == DATASET and c.objective == "variational" and c.arch == "mlp" and c.beta == 1.0:
            rows.append({"features": "VAE (μ)", "size": c.latent_dim, **_scores(name), "source": f"pretrained {name}"})
            seen.add(name)
    r = state.current()
    sweep = {state.sweep_source(k, DATASET) for k in latent_sweep.LATENT_SIZES}
    if r and r.id not in seen and r.id not in sweep:
        model = state.model(r)
        if model.config.dataset == DATASET and is_image_model(model):
            source = f"pretrained {r.name}" if r.zoo else "yours"
            rows.append({"features": f"sidebar: {r.name}", "size": model.config.latent_dim, **_scores(r),
                         "source": source})
    return rows


def _figures(table: pd.DataFrame, sizes) -> None:
    cols = st.columns(2)
    for col, metric in zip(cols, METRICS):
        series = {}
        for feat, group in table[table["features"] != "raw pixels"].groupby("features", sort=False):
            group = group.sort_values("size")
            series[feat] = (group["size"], group[metric], [f"z={s}: {v:.3f}" for s, v in zip(group["size"], group[metric])])
        raw = float(table.loc[table["features"] == "raw pixels", metric].iloc[0])
        series["raw pixels (784 values)"] = (list(sizes), [raw] * len(sizes), [f"{raw:.3f}"] * len(sizes))
        fig = plots.xy_series(series, "code size (numbers per image, log scale)", f"{metric} test accuracy",
                              f"{metric} accuracy on 1,000 test digits", log_x=True, height=380)
        fig.update_xaxes(tickvals=list(sizes))
        col.plotly_chart(fig, key=f"feat_fig_{metric}")


def _versus(wins: list[str], losses: list[str]) -> str:
    """One sentence: at which code sizes the autoencoder beats PCA."""
    if not losses:
        return f"the autoencoder's code beats PCA at every size with a model (z = {', '.join(wins)})."
    if not wins:
        return f"PCA is as good or better at every size with a model (z = {', '.join(losses)})."
    return f"the autoencoder's code beats PCA at z = {', '.join(wins)} and not at z = {', '.join(losses)}."


def _reading(table: pd.DataFrame) -> None:
    ae = table[table["features"] == "autoencoder"].set_index("size")
    pca = table[table["features"] == "PCA"].set_index("size")
    raw = table[table["features"] == "raw pixels"].iloc[0]
    text = f"Raw pixels: linear probe {raw['linear probe']:.3f}, 5-NN {raw['5-NN']:.3f}. "
    for metric in METRICS:
        wins = [str(k) for k in ae.index if ae.loc[k, metric] > pca.loc[k, metric]]
        losses = [str(k) for k in ae.index if ae.loc[k, metric] <= pca.loc[k, metric]]
        text += f"{metric}: {_versus(wins, losses)} "
    state.explain(text + "Read the table for the exact figures; a size without an autoencoder row has no model yet.")
