"""Denoising & regularizers: noisy in, clean out; what sparsity and contraction do to a code.

Three tabs; only the open one runs. The models are picked per slot on the page (defaults from the zoo),
so the sidebar's model does not have to be a denoiser. Heavy numbers are cached per model fingerprint.
"""
from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from aeviz.models import Autoencoder
from aeviz.ui import state

TABS = ("Denoising", "Sparse", "Contractive")
DIGIT_SHAPES = ((1, 28, 28), (28, 28))  # MNIST-like models: uploads and drawings become 28x28 digits


def digit_keys() -> list[str]:
    """Models (pretrained or this session's) that read 28x28 digit images."""
    return [k for k in state.model_keys() if _config(k).input_shape in DIGIT_SHAPES]


def _config(key: str):
    if key.startswith(state.SESSION):
        return state.get_model(key).config
    return state.cards()[key].config


def pick(label: str, keys: list[str], key: str, prefer: list[str], objective: str | None = None,
         help: str | None = None, container=st) -> str:
    """A model selectbox: the sidebar's model if it has the wanted (non-vanilla) objective, else a zoo name."""
    if st.session_state.get(key) not in keys:
        current = state.current_key()
        if objective not in (None, "vanilla") and current in keys and _config(current).objective == objective:
            prefer = [current, *prefer]
        fallback = [k for k in keys if objective and _config(k).objective == objective]
        st.session_state[key] = next(k for k in [*prefer, *fallback, *keys] if k in keys)
    return container.selectbox(label, keys, key=key, format_func=state.describe, help=help)


def token(key: str) -> str:
    """A cache key for a model: its name if pretrained, name plus a hash of its weights if from this session."""
    if not key.startswith(state.SESSION):
        return key
    seen = st.session_state.setdefault("lab_tokens", {})
    if key not in seen:
        h = hashlib.sha1()
        for name, t in state.get_model(key).state_dict().items():
            h.update(name.encode())
            h.update(t.detach().numpy().tobytes())
        seen[key] = f"{key}#{h.hexdigest()[:16]}"
    return seen[key]


def models(keys) -> dict[str, Autoencoder]:
    """The models behind keys, by key."""
    return {k: state.get_model(k) for k in keys}


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
    current = state.current_key()
    if current and current not in keys:
        st.info(f"The sidebar's model ({current}) does not read 28x28 digits, "
                "so this page uses the digit models picked below.")
    for tab, draw in zip(st.tabs(TABS, key="lab_tab", on_change="rerun"),
                         (denoise.render, sparse.render, contractive.render)):
        with tab:
            if tab.open:
                draw(keys)
