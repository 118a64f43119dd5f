"""Dimensionality reduction: the 2-D autoencoder code beside PCA, UMAP and t-SNE, with their scores and times."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aeviz import analysis, plots
from aeviz.ui import state
from aeviz.uses import reduction, sweep

DATASETS = ("swiss-roll", "s-curve", "mnist")
SLOW = ("umap", "tsne")
TITLES = {"autoencoder": "Autoencoder code", "pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


def render() -> None:
    """Draw the page."""
    st.title("Dimensionality reduction")
    st.caption("Four ways to draw high-dimensional data on a flat page. Each map places the same 1,000 test points; "
               "the colour is the same everywhere, so you can see which neighbourhoods each method keeps.")
    name = st.radio("Data", DATASETS, horizontal=True, key="red_data",
                    format_func=lambda n: {"mnist": "MNIST digits (784-D)"}.get(n, f"{n} (3-D)"))
    data = state.dataset(name)
    x, y = data.x_test.numpy(), data.y_test.numpy()
    continuous = not data.label_names
    pca_xy, pca_s = analysis.timed(reduction.pca_map, data.x_train.numpy(), x)
    maps = {"autoencoder": _autoencoder_map(name), "pca": (pca_xy, pca_s, f"fit on {len(data.x_train):,} training samples")}
    slow = st.toggle("Also compute UMAP and t-SNE", key="red_slow",
                     help="UMAP compiles itself the first time (10–60 s); t-SNE takes 5–30 s. Results are kept for everyone.")
    if slow:
        for method in SLOW:
            with st.spinner(f"Computing {TITLES[method]} of 1,000 points (the first UMAP also compiles itself)…"):
                maps[method] = _slow_map(name, method)
    else:
        st.caption("UMAP and t-SNE are off: switch them on above (UMAP compiles itself the first time, 10–60 s).")
    if data.kind == "points":
        _data_view(x, y)
    _maps(maps, y, data.label_names)
    _table(x, y, maps, continuous, name)


def _autoencoder_map(name: str) -> tuple[np.ndarray, float, str]:
    """(2-D codes of the test set, seconds, where the model comes from)."""
    data = state.dataset(name)
    r = state.current()
    model = state.model(r) if r else None
    if model is not None and model.config.dataset == name and model.config.latent_dim == 2:
        xy, sec = analysis.timed(analysis.embed, model, data.x_test)
        trained = (getattr(model, "metrics", {}) or {}).get("train_seconds")
        note = f"the sidebar model {r.name}" + (f", trained offline in {trained:.0f} s" if trained else "")
        return xy, sec, note
    mc, tc = sweep.quick_configs(name, 2)
    r, train_s = state.quick_model(mc, tc, "a 2-D autoencoder")
    model = state.model(r)
    xy, sec = analysis.timed(analysis.embed, model, data.x_test)
    return xy, sec + train_s, f"trained here: MLP {mc.hidden}, {tc.epochs} epochs (time includes training)"


@st.cache_data(show_spinner=False, max_entries=8)
def _slow_map(name: str, method: str) -> tuple[np.ndarray, float, str]:
    x = state.dataset(name).x_test.numpy()
    xy, sec = analysis.timed(analysis.project, x, method)
    return xy, sec, "fit on the 1,000 test points (the server's first UMAP also compiles it)" if method == "umap" else "fit on the 1,000 test points"


def _data_view(x, t) -> None:
    left, right = st.columns([2, 3])
    with left:
        st.plotly_chart(plots.points_3d(x, t, "The data itself, in 3-D (drag to turn)"), key="red_3d")
    with right:
        st.markdown("**What to look for.** The points lie on a curved 2-D sheet; the colour t is the position "
                    "along it. A good 2-D map lays the sheet flat, so the colour runs smoothly from one side to the other. "
                    "PCA can only turn the data and drop a direction: it looks at the sheet from one side, so a roll "
                    "stays rolled up and an S stays an S.")
        state.explain("Trustworthiness asks: are the 5 nearest neighbours of a point in the map also close in the "
                       "data? It is 1 when no stranger moves in (Venna & Kaski 2001).",
                       r"T(k) = 1 - \frac{2}{n k (2n - 3k - 1)} \sum_i \sum_{j \in U_k(i)} \big(r(i,j) - k\big)")


def _maps(maps: dict, y, label_names) -> None:
    methods = list(maps)
    for row in range(0, len(methods), 2):
        cols = st.columns(2)
        for col, method in zip(cols, methods[row: row + 2]):
            xy = maps[method][0]
            with col:
                st.plotly_chart(plots.latent_scatter(xy, y, label_names, TITLES[method], height=380,
                                                     axis_titles=("axis 1", "axis 2")), key=f"red_map_{method}")


def _table(x, y, maps: dict, continuous: bool, name: str) -> None:
    rows = []
    for method, (xy, sec, note) in maps.items():
        rows.append({"method": TITLES[method], **reduction.map_scores(x, xy, y, continuous),
                     "seconds": round(sec, 3), "how": note})
    table = pd.DataFrame(rows).set_index("method")
    st.subheader("How well each map keeps the data's structure")
    st.dataframe(table, column_config={c: st.column_config.NumberColumn(format="%.3f")
                                       for c in table.columns if c not in ("seconds", "how")})
    state.explain(_reading(table, continuous, name))


def _reading(table: pd.DataFrame, continuous: bool, name: str) -> str:
    tw = table["trustworthiness"]
    text = (f"Trustworthiness: PCA {tw['PCA']:.3f}, autoencoder {tw['Autoencoder code']:.3f}"
            + "".join(f", {m} {tw[m]:.3f}" for m in ("UMAP", "t-SNE") if m in tw) + ". ")
    if continuous:
        un = table["unrolled (linear R²)"]
        text += (f"'Unrolled' is the R² of reading the position t along one straight direction of the map: "
                 f"PCA {un['PCA']:.2f}, autoencoder {un['Autoencoder code']:.2f}"
                 + "".join(f", {m} {un[m]:.2f}" for m in ("UMAP", "t-SNE") if m in un) + ". ")
        if name == "swiss-roll":
            text += ("PCA keeps the roll rolled up, so no straight line in its map follows the colour; a nonlinear map "
                     "(UMAP, t-SNE) lays the sheet flat. The small autoencoder is nonlinear too, but it only learns to "
                     "rebuild the points: it often folds or tears the sheet, which the 5-NN R² of position shows.")
    else:
        text += "5-NN accuracy: the digit of each test point guessed from its 5 nearest neighbours in the map (half the points vote for the other half)."
    return text
