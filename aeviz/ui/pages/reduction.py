"""Dimensionality reduction: the 2-D autoencoder code beside PCA, UMAP and t-SNE, with their scores and times."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aeviz import analysis, plots
from aeviz.ui import state
from aeviz.ui.pages.explorer import draw
from aeviz.uses import K_NEIGHBOURS, reduction, sweep

DATASETS = ("swiss-roll", "s-curve", "mnist", "wine", "breast-cancer")
MAX_POINTS = 1000  # test points per map: trustworthiness compares all pairs
SLOW = ("umap", "tsne")
TITLES = {"autoencoder": "Autoencoder code", "pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


def render() -> None:
    """Draw the page."""
    st.title("Dimensionality reduction")
    st.caption("Four ways to draw high-dimensional data on a flat page. Each map places the same test points (at "
               "most 1,000); the colour is the same everywhere, so you can see which neighbourhoods each method keeps.")
    name = st.radio("Data", _choices(), horizontal=True, key="red_data", format_func=_title)
    data = state.dataset(name)
    x, y = _test(name)
    continuous = not data.label_names and np.ptp(y) > 0
    pca_xy, pca_s = analysis.timed(reduction.pca_map, data.x_train.numpy(), x)
    maps = {"autoencoder": _autoencoder_map(name), "pca": (pca_xy, pca_s, f"fit on {len(data.x_train):,} training samples")}
    slow = st.toggle("Also compute UMAP and t-SNE", key="red_slow",
                     help="UMAP compiles itself the first time (10–60 s); t-SNE takes 5–30 s. Results are kept for everyone.")
    if slow:
        for method in SLOW:
            with st.spinner(f"Computing {TITLES[method]} of {len(x):,} points (the first UMAP also compiles itself)…"):
                maps[method] = _slow_map(name, method)
    else:
        st.caption("UMAP and t-SNE are off: switch them on above (UMAP compiles itself the first time, 10–60 s).")
    if draw.kind(data) == "points":
        _data_view(x, y)
    _maps(maps, y, data.label_names)
    _table(x, y, maps, continuous, name)


def _choices() -> list[str]:
    """The built-in sets, and the sidebar model's data when it is another (any vectors, images or series)."""
    names = list(DATASETS)
    r = state.current()
    if r is not None and state.config(r).dataset not in names:
        names.append(state.config(r).dataset)
    return names


def _title(name: str) -> str:
    if name == "mnist":
        return "MNIST digits (784-D)"
    d = int(np.prod(state.dataset(name).sample_shape))
    return f"your data {name.removeprefix('user:')} ({d}-D)" if name.startswith("user:") else f"{name} ({d}-D)"


def _test(name: str) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS test samples and their labels, evenly spaced (all of them for the built-in sets)."""
    data = state.dataset(name)
    idx = np.linspace(0, len(data.x_test) - 1, min(len(data.x_test), MAX_POINTS)).round().astype(int)
    return data.x_test.numpy()[idx], data.y_test.numpy()[idx]


def _autoencoder_map(name: str) -> tuple[np.ndarray, float, str]:
    """(2-D codes of the test set, seconds, where the model comes from)."""
    r = state.current()
    model = state.model(r) if r else None
    x = _test(name)[0]
    if model is not None and model.config.dataset == name and model.config.latent_dim == 2:
        xy, sec = analysis.timed(analysis.embed, model, x)
        trained = (getattr(model, "metrics", {}) or {}).get("train_seconds")
        note = f"the sidebar model {r.name}" + (f", trained offline in {trained:.0f} s" if trained else "")
        return xy, sec, note
    mc, tc = sweep.quick_configs(name, 2)
    r, train_s = state.quick_model(mc, tc, "a 2-D autoencoder")
    model = state.model(r)
    xy, sec = analysis.timed(analysis.embed, model, x)
    return xy, sec + train_s, f"trained here: MLP {mc.hidden}, {tc.epochs} epochs (time includes training)"


@st.cache_data(show_spinner=False, max_entries=8)
def _slow_map(name: str, method: str) -> tuple[np.ndarray, float, str]:
    x = _test(name)[0]
    xy, sec = analysis.timed(analysis.project, x, method)
    note = " (the server's first UMAP also compiles it)" if method == "umap" else ""
    return xy, sec, f"fit on the {len(x):,} test points{note}"


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
    if len(x) <= 2 * K_NEIGHBOURS:
        st.info(f"The {len(x)} test samples are too few to score the maps: trustworthiness asks about each point's "
                f"{K_NEIGHBOURS} nearest neighbours among more than twice as many.")
        return
    rows = []
    for method, (xy, sec, note) in maps.items():
        scores = reduction.map_scores(x, xy, y, continuous)
        if np.ptp(y) == 0:  # no labels: only the neighbours of the data can be checked
            scores = {"trustworthiness": scores["trustworthiness"]}
        rows.append({"method": TITLES[method], **scores, "seconds": round(sec, 3), "how": note})
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
        text += ("5-NN accuracy: the label of each test point guessed from its 5 nearest neighbours in the map (half "
                 "the points vote for the other half)." if "5-NN accuracy" in table else
                 "The data have no labels, so only trustworthiness can judge the maps.")
    return text
