"""Draw samples of any kind: images as crisp upscaled pixels, signals as lines, points in 3-D."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aeviz import plots
from aeviz.data import Dataset


def kind(data: Dataset) -> str:
    """'image' for anything with rows and columns (mnist-rows too), 'signal' for 1-channel sequences, else 'points'."""
    shape = data.sample_shape
    if len(shape) == 3 or (len(shape) == 2 and shape[1] > 1):
        return "image"
    return "signal" if len(shape) == 2 else "points"


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


def signal_figure(series: dict[str, np.ndarray], height: int = 220, title: str = "") -> go.Figure:
    """Named 1-channel sequences over time steps."""
    first = np.asarray(next(iter(series.values()))).reshape(-1)
    fig = plots.line_chart(np.arange(len(first)), {k: np.asarray(v).reshape(-1) for k, v in series.items()},
                           "time step", "value", title=title)
    fig.update_traces(mode="lines")  # 128 markers per curve would hide the shape
    return fig.update_layout(height=height, legend=dict(orientation="h", y=1.02, yanchor="bottom"))


def points_figure(background, series: dict[str, np.ndarray], height: int = 320, title: str = "") -> go.Figure:
    """3-D points: the test set faintly, then each named group of points on top."""
    bg = np.asarray(background)[::3]
    fig = go.Figure(go.Scatter3d(x=bg[:, 0], y=bg[:, 1], z=bg[:, 2], mode="markers", name="test set",
                                 marker=dict(size=2, color="#cccccc"), hoverinfo="skip"))
    for i, (name, p) in enumerate(series.items()):
        p = np.asarray(p).reshape(-1, 3)
        fig.add_trace(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers+lines" if len(p) > 1 else "markers",
                                   name=name, marker=dict(size=6, color=plots.PALETTE[i % 10])))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0), title=title,
                      scene=dict(xaxis_title="x", yaxis_title="y", zaxis_title="z"))
    return fig


def sample(data: Dataset, x, caption: str, key: str, size: int = 140) -> None:
    """Draw one sample of the dataset's kind."""
    k = kind(data)
    if k == "image":
        st.image(pixels(x, size), caption=caption)
    elif k == "signal":
        st.plotly_chart(signal_figure({caption: x}, height=200), key=key)
    else:
        st.plotly_chart(points_figure(data.x_test, {caption: x}, height=260), key=key)


def pair(data: Dataset, x, x_hat, key: str, size: int = 140) -> None:
    """A sample and its reconstruction, side by side (images) or overlaid (signals, points)."""
    k = kind(data)
    if k == "image":
        a, b = st.columns(2)
        a.image(pixels(x, size), caption="original x")
        b.image(pixels(x_hat, size), caption="reconstruction x̂")
    elif k == "signal":
        st.plotly_chart(signal_figure({"original x": x, "reconstruction x̂": x_hat}), key=key)
    else:
        st.plotly_chart(points_figure(data.x_test, {"original x": x, "reconstruction x̂": x_hat}), key=key)
