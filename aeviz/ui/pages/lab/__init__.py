"""Denoising & regularizers: noisy in, clean out; what sparsity and contraction do to a code.

Three tabs; only the open one runs. The models are picked per slot on the page (defaults from the zoo),
so the sidebar's model does not have to be a denoiser. Heavy numbers are cached per model fingerprint.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from aeviz.ui import state

TABS = ("Denoising", "Sparse", "Contractive")
DIGIT_SHAPES = ((1, 28, 28), (28, 28))  # MNIST-like models: uploads and drawings become 28x28 digits


def digit_keys() -> list[str]:
    """Models (pretrained or this session's) that read 28x28 digit images."""
    return [k for k in state.ids() if state.config(k).input_shape in DIGIT_SHAPES]


def pick(label: str, keys: list[str], key: str, prefer: list[str], objective: str | None = None,
         help: str | None = None, container=st) -> str:
    """A model selectbox: the sidebar's model if it has the wanted (non-vanilla) objective, else a zoo name."""
    if st.session_state.get(key) not in keys:
        current = state.current_id()
        if objective not in (None, "vanilla") and current in keys and state.config(current).objective == objective:
            prefer = [current, *prefer]
        fallback = [k for k in keys if objective and state.config(k).objective == objective]
        st.session_state[key] = next(k for k in [*prefer, *fallback, *keys] if k in keys)
    return container.selectbox(label, keys, key=key, format_func=state.describe, help=help)



def test_digits(n: int | None = None) -> np.ndarray:
    """The first n held-out MNIST test digits, (n, 1, 28, 28)."""
    x = state.dataset("mnist").x_test
    return (x if n is None else x[:n]).numpy()


def render() -> None:
    """Draw the page."""
    from aeviz.ui.pages.lab import contractive, denoise, sparse

    st.title("Denoising & regularizers")
    st.caption("Three ways to make an autoencoder learn something useful rather than copy its input: "
               "undo noise (denoising), use few units at a time (sparse), and ignore tiny input changes (contractive).")
    keys = digit_keys()
    if not keys:
        st.info("This page needs autoencoders of 28x28 digit images; the pretrained zoo has them, "
                "or train one on the Explorer page.")
        return
    current = state.current_id()
    if current and current not in keys:
        st.info(f"The sidebar's model ({state.name(current)}) does not read 28x28 digits, "
                "so this page uses the digit models picked below.")
    for tab, draw in zip(st.tabs(TABS, key="lab_tab", on_change="rerun"),
                         (denoise.render, sparse.render, contractive.render)):
        with tab:
            if tab.open:
                draw(keys)
