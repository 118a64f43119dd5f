"""Draw samples of any kind: images as crisp upscaled pixels, signals as lines, 3-D point clouds in 3-D, and the
rows of a table (any number of features) as bars, one per named feature."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aeviz import plots
from aeviz.data import Dataset
from aeviz.ui import widgets
from aeviz.userdata import unscale

MAX_BARS = 40  # features per row drawn as bars; longer vectors are drawn as a line


def kind(data: Dataset) -> str:
    """'image', 'signal' (a sequence: one line per feature), 'points' (a 3-D cloud: swiss roll, S-curve) or
    'table' (a vector of any length with named features: tables, user arrays).

    Data read from a file (or a built-in table) carry extras["preprocessing"]: their vectors are tables even with
    3 columns, and their multi-feature sequences are series, not the rows of an image (mnist-rows)."""
    shape = data.sample_shape
    from_file = bool(data.extras.get("preprocessing"))
    if data.kind == "image" or len(shape) == 3:
        return "image"
    if len(shape) == 2:
        return "signal" if shape[1] == 1 or from_file else "image"
    return "points" if shape == (3,) and not from_file else "table"


def _upscale(img: np.ndarray, k: int) -> np.ndarray:
    # nearest neighbour keeps pixels crisp; the browser would blur a small image it enlarges
    return (plots.upscale(np.clip(img, 0.0, 1.0), k) * 255).astype(np.uint8)


def pixels(x, size: int = 140) -> np.ndarray:
    """One image sample ((1, H, W) or (H, W)) as a uint8 image upscaled to about `size` px."""
    x = np.asarray(x, np.float32)
    img = x.reshape(x.shape[-2:])
    return _upscale(img, max(1, size // max(img.shape)))


def mosaic(x, ncols: int, size: int = 56) -> np.ndarray:
    """Many image samples tiled in rows of ncols, each about `size` px, as one crisp uint8 image."""
    imgs = plots.as_images(np.asarray(x, np.float32).reshape(-1, *np.shape(x)[-2:]))
    return _upscale(plots.tile(imgs, ncols, pad=1), max(1, size // max(imgs.shape[1:])))


def signal_figure(series: dict[str, np.ndarray], height: int = 220, title: str = "",
                  columns: list[str] | None = None) -> go.Figure:
    """Named sequences over time steps; a sequence of several features gives one line per feature."""
    curves = {}
    for name, v in series.items():
        v = np.asarray(v)
        v = v.reshape(len(v), -1) if v.ndim > 1 else v[:, None]
        for j in range(v.shape[1]):
            feature = (columns[j] if columns and j < len(columns) else f"feature {j + 1}")
            curves[name if v.shape[1] == 1 else f"{name} · {feature}"] = v[:, j]
    steps = len(next(iter(curves.values())))
    fig = plots.line_chart(np.arange(steps), curves, "time step", "value", title=title)
    fig.update_traces(mode="lines")  # 128 markers per curve would hide the shape
    # the legend at the top right: a title sits at the top left, and the two overlapped
    return fig.update_layout(height=height, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1,
                                                        xanchor="right"))


def points_figure(data: Dataset, series: dict[str, np.ndarray], height: int = 320, title: str = "") -> go.Figure:
    """Named groups of samples: for a 3-D cloud, in 3-D over the test set drawn faintly; for a table, each group's
    rows as lines over the named features (table_figure)."""
    if kind(data) == "table":
        return table_figure(data, series, height, title)
    bg = data.x_test.numpy()[::3]
    fig = go.Figure(go.Scatter3d(x=bg[:, 0], y=bg[:, 1], z=bg[:, 2], mode="markers", name="test set",
                                 marker=dict(size=2, color="#cccccc"), hoverinfo="skip"))
    for i, (name, p) in enumerate(series.items()):
        p = np.asarray(p).reshape(-1, 3)
        fig.add_trace(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers+lines" if len(p) > 1 else "markers",
                                   name=name, marker=dict(size=6, color=plots.PALETTE[i % 10])))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0), title=title,
                      scene=dict(xaxis_title="x", yaxis_title="y", zaxis_title="z"))
    return fig


# --- tables: a row is a vector of named features --------------------------------------------------------

def feature_names(data: Dataset) -> list[str]:
    """The features' names: the file's columns, else x1, x2, ..."""
    columns = (data.extras.get("preprocessing") or {}).get("columns") or []
    d = int(np.prod(data.sample_shape))
    return list(columns) if len(columns) == d else [f"x{j + 1}" for j in range(d)]


def standardised(data: Dataset, v) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(what to draw, values in the file's units or None, axis title) for rows v (N, D) in the model's [0, 1].

    Features of a table come in units that differ by orders of magnitude (an area in mm², a smoothness near 0.1), so
    bars on one axis show each value standardised, z = (value - training mean) / standard deviation, and the
    file's units (unscale) go in the hover text and the table beside them."""
    pre = data.extras.get("preprocessing") or {}
    v = np.asarray(v, np.float64).reshape(-1, int(np.prod(data.sample_shape)))
    scaler = pre.get("scaler") or {}
    if scaler.get("type") != "standard-logistic":
        return v, None, "value (scaled to [0, 1])"
    raw = unscale(v, pre)
    z = (raw - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])
    return z, raw, "standardised value z"


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def table_figure(data: Dataset, series: dict[str, np.ndarray], height: int = 320, title: str = "") -> go.Figure:
    """Rows of a table: one row per name as grouped bars (a sample, its reconstruction), many rows per name (a path,
    a sweep, samples) as lines; more than MAX_BARS features as lines too."""
    names = feature_names(data)
    drawn = {k: standardised(data, v) for k, v in series.items()}
    y_title = next(iter(drawn.values()))[2]
    if all(len(z) == 1 for z, _, _ in drawn.values()) and len(names) <= MAX_BARS:
        hover = {k: [f"{_fmt(r)} in the file's units (z = {z_:.2f})" for r, z_ in zip(raw[0], z[0])]
                 for k, (z, raw, _) in drawn.items() if raw is not None}
        return plots.feature_bars(names, {k: z[0] for k, (z, _, _) in drawn.items()}, y_title, hover or None,
                                  title, height)
    return plots.feature_lines(names, {k: z for k, (z, _, _) in drawn.items()}, y_title, title, height)


def table_values(data: Dataset, series: dict[str, np.ndarray]) -> dict[str, list]:
    """One row per feature: its name and each named vector's value in the file's units (or [0, 1] without a
    scaler), as a column dict for st.dataframe."""
    out: dict[str, list] = {"feature": feature_names(data)}
    for name, v in series.items():
        z, raw, _ = standardised(data, v)
        out[name] = [float(_fmt(x)) for x in (raw if raw is not None else z)[0]]
    return out


def table_pairs(data: Dataset, x, x_hat, captions: list[str], key: str) -> None:
    """Table rows beside their reconstructions, two to a line."""
    for row in range(0, len(x), 2):
        for col, j in zip(st.columns(2), range(row, min(row + 2, len(x)))):
            col.plotly_chart(table_figure(data, {"x": x[j], "x̂": x_hat[j]}, height=260, title=captions[j]),
                             key=f"{key}_{j}")


def feature_errors(data: Dataset, x, x_hat) -> go.Figure:
    """Mean squared error per feature over the test set: which columns the code keeps and which it loses."""
    err = ((np.asarray(x) - np.asarray(x_hat)) ** 2).reshape(len(x), -1).mean(0)
    names = feature_names(data)
    title = "Error per feature over the test set: what the code loses"
    if len(names) > MAX_BARS:
        return plots.feature_lines(names, {"mean squared error": err[None]}, "MSE per value ([0, 1] units)", title)
    return plots.feature_bars(names, {"mean squared error": err}, "MSE per value (the model's [0, 1] units)",
                              title=title)


def sample(data: Dataset, x, caption: str, key: str, size: int = 140) -> None:
    """Draw one sample of the dataset's kind."""
    k = kind(data)
    if k == "image":
        widgets.image(pixels(x, size), caption=caption)
    elif k == "signal":
        st.plotly_chart(signal_figure({caption: x}, height=200, columns=series_columns(data)), key=key)
    else:
        st.plotly_chart(points_figure(data, {caption: x}, height=260), key=key)


_SIGNAL_PAIRS = widgets.ContentMemo(256)  # a signal and its reconstruction -> their figure, as plotly's dict (a figure
# built with plotly's objects cost ~8 ms on every run)


def pair(data: Dataset, x, x_hat, key: str, size: int = 140) -> None:
    """A sample and its reconstruction, side by side (images) or overlaid (signals, points, table rows as bars,
    with the values in the file's units in a table under the bars)."""
    k = kind(data)
    if k == "image":  # one element for both (two columns were five messages on every run)
        widgets.image([pixels(x, size), pixels(x_hat, size)], caption=["original x", "reconstruction x̂"])
    elif k == "signal":
        columns = series_columns(data)
        spec = _SIGNAL_PAIRS.get(np.stack([np.asarray(x, np.float32), np.asarray(x_hat, np.float32)]),
                                 lambda a: signal_figure({"original x": a[0], "reconstruction x̂": a[1]},
                                                         columns=columns).to_dict(), tuple(columns or ()))
        st.plotly_chart(plots.checked(spec), key=key)
    elif k == "table":
        series = {"original x": x, "reconstruction x̂": x_hat}
        st.plotly_chart(table_figure(data, series), key=key)
        with st.expander("The values in the file's units"):
            st.dataframe(table_values(data, series), hide_index=True, key=f"{key}::values")
    else:
        st.plotly_chart(points_figure(data, {"original x": x, "reconstruction x̂": x_hat}), key=key)


def series_columns(data: Dataset) -> list[str] | None:
    """A series' feature names (the columns of a long series cut into windows), if it has them."""
    columns = (data.extras.get("preprocessing") or {}).get("columns") or []
    return list(columns) if len(data.sample_shape) == 2 and len(columns) == data.sample_shape[1] else None
