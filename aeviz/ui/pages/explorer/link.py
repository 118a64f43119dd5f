"""The Explorer's shareable state in the page address: ?sample=42&view=traversal&z=0.53,-1.20.

sample: the selected test sample; view: the open tab; z: the latent sliders' point (codes of at most 2 dimensions).
A link that was just opened (or pushed by a teacher) sets the widgets; after that the widgets write the address.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from aeviz.ui import state
from aeviz.ui.pages.explorer.latent_map import Ctx

KEYS = ("sample", "view", "z")
VIEWS = {"reconstructions": "Reconstructions", "traversal": "Traversal", "interpolation": "Interpolation",
         "sampling": "Sampling (VAE)", "history": "Latent history"}  # id in the address -> tab label
TAB_KEY, SAMPLE_KEY = "ex_view", "ex_idx"
LAST = "ex_url"  # the explorer parameters this session last wrote or read


def slider_key(ctx: Ctx, idx: int, d: int) -> str:
    """The session key of latent slider d for the selected sample (each model and sample keeps its own)."""
    return f"ex_z::{ctx.key}::{idx}::{d}"


def _ours(params: dict) -> dict[str, str]:
    return {k: params[k] for k in KEYS if k in params}


def load(ctx: Ctx, z_range: tuple[np.ndarray, np.ndarray]) -> None:
    """Before the widgets: a link's sample, tab and latent point, when the link is new to this session."""
    ss = st.session_state
    url = _ours(st.query_params.to_dict())
    if not url or (url == ss.get(LAST) and SAMPLE_KEY in ss and TAB_KEY in ss):
        return  # (after another page, whose run dropped the Explorer's widgets, the address is read again)
    ss[LAST] = url
    n = len(ctx.z)
    try:
        idx = int(url.get("sample", ss.get(SAMPLE_KEY, 0)))
    except ValueError:
        idx = ss.get(SAMPLE_KEY, 0)
    idx = int(np.clip(idx, 0, n - 1))
    ss[SAMPLE_KEY] = idx
    if url.get("view") in VIEWS:
        ss[TAB_KEY] = VIEWS[url["view"]]
    if "z" in url and ctx.z.shape[1] <= 2:
        try:
            z = [float(v) for v in url["z"].split(",")]
        except ValueError:
            return
        lo, hi = z_range
        if len(z) == ctx.z.shape[1] and all(np.isfinite(z)):
            for d, v in enumerate(z):
                ss[slider_key(ctx, idx, d)] = float(np.clip(v, lo[d], hi[d]))


def _write(params: dict[str, str]) -> None:
    ss = st.session_state
    current = st.query_params.to_dict()
    if _ours(current) != params:
        st.query_params.from_dict({**params, **state.private_params()})
    ss[LAST] = params


def save(ctx: Ctx, idx: int) -> None:
    """After the widgets: write the sample and the tab (and keep the latent point) in the address."""
    params = {"sample": str(idx)}
    tab = next((k for k, label in VIEWS.items() if label == st.session_state.get(TAB_KEY)), None)
    if tab:
        params["view"] = tab
    z = st.session_state.get(LAST, {}).get("z")
    if z and ctx.z.shape[1] <= 2 and all(slider_key(ctx, idx, d) in st.session_state for d in range(ctx.z.shape[1])):
        params["z"] = z
    _write(params)


def save_point(ctx: Ctx, idx: int, z: np.ndarray) -> None:
    """From the sliders (a fragment): the latent point they decode, for codes of at most 2 dimensions."""
    if ctx.z.shape[1] > 2:
        return
    params = dict(st.session_state.get(LAST) or {"sample": str(idx)})
    params["z"] = ",".join(f"{v:.4g}" for v in np.asarray(z).reshape(-1))
    _write(params)
