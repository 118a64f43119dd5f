"""Two charts drawn on a canvas by the aeviz.latent component (assets/charts.js): the Explorer's latent map and a
histogram.

They are what a student's first screen shows, and plotly.js (4.5 MB, loaded by Streamlit with a page's first plotly
chart) was a third of that page's load in the browser: `aeviz bench class` measures the first screen of a student
who joins a busy class. Every other figure stays with plotly (aeviz.plots).

A click on the map reruns the page with the clicked test index in the map's state (new_click tells a new click
from the one the state still holds); a click on the same point again counts again. The histogram tells the range
and count of the bar under the pointer.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from aeviz.ui.components.latent import _component, _floats, _json_numbers, _noop

SELECTED = "selected"  # the map's state: {"i": test index, "n": the page's click count}


def latent_map(*, key: str, xy, labels=None, label_names: Sequence[str] = (), x_range: tuple[float, float],
               y_range: tuple[float, float], titles: Sequence[str] = ("z₁", "z₂"), image: str | None = None,
               opacity: float = 0.6, prior: bool = False, ring: int | None = None, height: int = 560,
               frozen: bool = False) -> None:
    """Test samples at their 2-D codes `xy` (N, 2), coloured by the integer `labels` (named by `label_names`),
    over [x_range] x [y_range] (a square box: the axes share one scale).

    image: a PNG data: URL laid under the points over that box (the decoded plane); prior: N(0, I)'s density and
    its sigma circles beneath them. ring: the index to circle (the selected sample). frozen: clicks select nothing
    (the teacher leads). A click sets the state st.session_state[key]["selected"] = {"i": index, "n": click
    count}: read it with new_click before the page uses its selection."""
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"the map needs (N, 2) codes, not {xy.shape}")
    if not (x_range[1] > x_range[0] and y_range[1] > y_range[0]):
        raise ValueError(f"the map's ranges must be wider than a point, not {tuple(x_range)} x {tuple(y_range)}")
    data = {"mode": "map", "xy": _json_numbers(xy, 4),
            "labels": _json_numbers(labels, integers=True) if labels is not None and len(label_names) else "[]",
            "label_names": [str(n) for n in label_names], "x_range": _floats(x_range), "y_range": _floats(y_range),
            "titles": [str(t) for t in titles], "image": image or "", "opacity": float(opacity), "prior": bool(prior),
            "height": int(height), "frozen": bool(frozen), "value": None if ring is None else int(ring)}
    with st.container(gap=None, key=f"{key}-box"):
        _component()(key=key, default={SELECTED: None}, data=data, **{f"on_{SELECTED}_change": _noop})


def new_click(key: str, got) -> int | None:
    """The index of a click not seen before (each click carries the page's click count), else None."""
    if not isinstance(got, dict) or not isinstance(got.get("i"), (int, float)):
        return None
    seen = st.session_state.get(f"{key}::seen")
    st.session_state[f"{key}::seen"] = got
    return None if seen == got else int(got["i"])


def histogram(*, key: str, counts, edges, title: str = "", x_title: str = "", y_title: str = "count",
              height: int = 320) -> None:
    """A histogram: `counts` over the bins between `edges` (one more than counts, as numpy.histogram gives them);
    hovering a bar tells its range and count."""
    counts, edges = np.asarray(counts), np.asarray(edges, dtype=np.float64)
    if counts.ndim != 1 or edges.shape != (len(counts) + 1,):
        raise ValueError(f"{len(edges)} edges for {len(counts)} bars; a histogram has one edge more than bars")
    data = {"mode": "bars", "counts": [int(c) for c in counts], "edges": _floats(edges), "title": title,
            "x_title": x_title, "y_title": y_title, "height": int(height)}
    with st.container(gap=None, key=f"{key}-box"):
        _component()(key=key, data=data)
