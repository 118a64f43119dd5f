"""Shared UI pieces: cached pretrained models and data, session models, the sidebar model picker."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

import aeviz
from aeviz import analysis, io
from aeviz.config import ModelConfig, TrainConfig
from aeviz.data import Dataset
from aeviz.data import load as load_data
from aeviz.models import Autoencoder
from aeviz.uses import is_image_model, sweep

DEFAULT_MODEL = "ae-mlp-z2"
ICON = str(Path(__file__).parent / "static" / "icon.png")  # served by the app: no font server needed offline
SESSION = "session: "  # prefix of models that live in this browser session only
MAX_UPLOAD_MB = 20


@st.cache_resource(show_spinner=False)
def cards() -> dict[str, io.Card]:
    """Pretrained model cards by name (metadata only)."""
    return {c.name: c for c in io.pretrained()}


@st.cache_resource(show_spinner="Loading the pretrained model…")
def pretrained_model(name: str) -> Autoencoder:
    """A pretrained model shared by every session: read-only, used for inference only."""
    return aeviz.load(cards()[name].path)


@st.cache_resource(show_spinner="Loading data…")
def dataset(name: str) -> Dataset:
    """A dataset shared by every session (tensors are never modified)."""
    return load_data(name)


@st.cache_data(show_spinner=False)
def pretrained_codes(name: str) -> np.ndarray:
    """Codes of the pretrained model's test set."""
    model = pretrained_model(name)
    return analysis.embed(model, dataset(model.config.dataset).x_test)


def session_models() -> dict[str, Autoencoder]:
    """Models trained or uploaded in this session: they belong to this student only."""
    return st.session_state.setdefault("session_models", {})


def add_session_model(name: str, model: Autoencoder) -> str:
    """Keep a model in this session under a unique key and return the key."""
    models = session_models()
    key, n = SESSION + name, 2
    while key in models:
        key, n = f"{SESSION}{name} ({n})", n + 1
    models[key] = model
    st.session_state.pop(f"codes::{key}", None)
    return key


def model_keys() -> list[str]:
    """Every model a page can show: pretrained first, then this session's."""
    return list(cards()) + list(session_models())


def get_model(key: str) -> Autoencoder:
    """The model behind a key (pretrained or session)."""
    return session_models()[key] if key.startswith(SESSION) else pretrained_model(key)


def codes(key: str) -> np.ndarray:
    """Test-set codes of a model (cached across sessions for pretrained, per session otherwise)."""
    if not key.startswith(SESSION):
        return pretrained_codes(key)
    cache_key = f"codes::{key}"
    if cache_key not in st.session_state:
        model = get_model(key)
        st.session_state[cache_key] = analysis.embed(model, dataset(model.config.dataset).x_test)
    return st.session_state[cache_key]


def describe(key: str) -> str:
    """One-line option label: name, variant and its headline figure."""
    if key.startswith(SESSION):
        return f"{key} · {get_model(key).config.label}"
    card = cards()[key]
    mse = card.metrics.get("test_mse")
    return f"{key} · {card.config.label}" + (f" · test MSE {mse:.4f}" if mse is not None else "")


def current_key() -> str | None:
    """The model chosen in the sidebar (falls back to the default pretrained model)."""
    keys = model_keys()
    key = st.session_state.get("model")
    if key in keys:
        return key
    return DEFAULT_MODEL if DEFAULT_MODEL in keys else (keys[0] if keys else None)


def _on_upload() -> None:
    upload = st.session_state.get("upload")
    st.session_state["upload_error"] = None
    if upload is None:
        return
    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_MB * 2**20:
        st.session_state["upload_error"] = f"{upload.name} is larger than {MAX_UPLOAD_MB} MB; aeviz checkpoints are far smaller."
        return
    try:
        model = aeviz.load(data, name=upload.name)
    except aeviz.CheckpointError as err:
        st.session_state["upload_error"] = str(err)
        return
    st.session_state["model"] = add_session_model(upload.name.removesuffix(".safetensors"), model)


def sidebar() -> None:
    """The shared model picker: pretrained, uploaded or trained in this session."""
    with st.sidebar:
        keys = model_keys()
        if not keys:
            st.warning("No models yet: pretrained/ is empty, so train one on the Explorer page.")
            return
        st.session_state["model"] = st.session_state.pop("model_next", None) or current_key()  # see select_model
        st.selectbox("Model", keys, key="model", format_func=describe,
                     help="Pretrained models load at once; models you train or upload stay in your session only.")
        with st.expander("Upload a checkpoint"):
            st.file_uploader(f"An aeviz .safetensors file (at most {MAX_UPLOAD_MB} MB)", type=["safetensors"],
                             key="upload", on_change=_on_upload)
            if st.session_state.get("upload_error"):
                st.error(st.session_state["upload_error"])


def explain(text: str, latex: str | None = None) -> None:
    """The short 'what am I looking at' note under a view, with an optional equation."""
    st.caption(text)
    if latex:
        st.latex(latex)


def select_model(key: str) -> None:
    """Make key the picked model: at once if the picker is not drawn yet in this run, else from the next run."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.session_state["model"] = key
    except StreamlitAPIException:  # the sidebar's selectbox already ran: it takes the key on the next run
        st.session_state["model_next"] = key


# --- models trained on the page for everyone (seeded, so every student gets the same weights) ---

@st.cache_resource(show_spinner=False)
def _quick_store() -> dict:
    return {}


def quick_model(mc: ModelConfig, tc: TrainConfig, label: str = "") -> tuple[Autoencoder, float]:
    """(model, training seconds) for a config, trained once per server with a progress bar, then shared read-only.

    Training is seeded, so every student asking for the same configs gets the same weights.
    """
    store = _quick_store()
    if (mc, tc) not in store:
        bar = st.progress(0.0, text=f"Training {label or mc.label} here ({tc.epochs} epochs)…")

        def show(p: aeviz.Progress) -> None:
            if p.epoch_end:
                bar.progress(p.step / p.total_steps, text=f"Training {label or mc.label}: epoch {p.epoch}/{tc.epochs}")

        model, hist = aeviz.train(mc, tc, dataset(mc.dataset), show)
        bar.empty()
        store[(mc, tc)] = (model, hist.seconds)
    return store[(mc, tc)]


def is_trained(mc: ModelConfig, tc: TrainConfig) -> bool:
    """Whether quick_model would answer at once."""
    return (mc, tc) in _quick_store()


def sweep_source(k: int, dataset: str = "mnist") -> str | None:
    """Name of the pretrained vanilla MLP autoencoder with latent size k on dataset, if there is one."""
    return sweep.pretrained_for(k, dataset, cards().values())


def sweep_model(k: int, dataset: str = "mnist", train: bool = True) -> tuple[Autoencoder | None, str]:
    """(model, where it comes from) for latent size k: pretrained if one exists, else trained here (if train)."""
    name = sweep_source(k, dataset)
    if name:
        return pretrained_model(name), f"pretrained {name}"
    mc, tc = sweep.quick_configs(dataset, k)
    if not (train or is_trained(mc, tc)):
        return None, "not trained yet"
    model, seconds = quick_model(mc, tc, f"an autoencoder with z={k}")
    return model, f"trained here: {tc.epochs} epochs, {seconds:.0f} s"


def image_model() -> tuple[str, Autoencoder] | None:
    """The sidebar's model if it is an image model; otherwise one st.info sentence and None."""
    key = current_key()
    if key is None:
        st.info("There is no model yet: train one on the Explorer page or add checkpoints to pretrained/.")
        return None
    model = get_model(key)
    if not is_image_model(model):
        st.info(f"This page works on images; the sidebar model '{key}' is for {model.config.dataset}. "
                "Pick an image model (for example ae-mlp-z16 or vae-mlp-z16) in the sidebar.")
        return None
    return key, model
