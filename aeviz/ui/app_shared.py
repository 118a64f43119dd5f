"""Pieces the application pages share: quickly trained page models, the MNIST model sweep, image display."""
from __future__ import annotations

import numpy as np
import streamlit as st

import aeviz
from aeviz import applications, plots
from aeviz.config import ModelConfig, TrainConfig
from aeviz.models import Autoencoder
from aeviz.ui import common


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

        model, hist = aeviz.train(mc, tc, common.dataset(mc.dataset), show)
        bar.empty()
        store[(mc, tc)] = (model, hist.seconds)
    return store[(mc, tc)]


def is_trained(mc: ModelConfig, tc: TrainConfig) -> bool:
    """Whether quick_model would answer at once."""
    return (mc, tc) in _quick_store()


def sweep_source(k: int, dataset: str = "mnist") -> str | None:
    """Name of the pretrained vanilla MLP autoencoder with latent size k on dataset, if there is one."""
    for name, card in common.cards().items():
        c = card.config
        if (c.objective, c.arch, c.dataset, c.latent_dim) == ("vanilla", "mlp", dataset, k) and name.startswith("ae-mlp-z"):
            return name
    return None


def sweep_model(k: int, dataset: str = "mnist", train: bool = True) -> tuple[Autoencoder | None, str]:
    """(model, where it comes from) for latent size k: pretrained if one exists, else trained here (if train)."""
    name = sweep_source(k, dataset)
    if name:
        return common.pretrained_model(name), f"pretrained {name}"
    mc, tc = applications.quick_configs(dataset, k)
    if not (train or is_trained(mc, tc)):
        return None, "not trained yet"
    model, seconds = quick_model(mc, tc, f"an autoencoder with z={k}")
    return model, f"trained here: {tc.epochs} epochs, {seconds:.0f} s"


def image_model() -> tuple[str, Autoencoder] | None:
    """The sidebar's model if it is an image model; otherwise one st.info sentence and None."""
    key = common.current_key()
    if key is None:
        st.info("There is no model yet: train one on the Explorer page or add checkpoints to pretrained/.")
        return None
    model = common.get_model(key)
    if not applications.is_image_model(model):
        st.info(f"This page works on images; the sidebar model '{key}' is for {model.config.dataset}. "
                "Pick an image model (for example ae-mlp-z16 or vae-mlp-z16) in the sidebar.")
        return None
    return key, model


def show_images(images, captions, width: int = 140) -> None:
    """A row of images with captions, scaled up without smoothing so pixels stay visible."""
    cols = st.columns(len(images))
    for col, img, cap in zip(cols, images, captions):
        col.image(_upscale(plots.as_images(np.asarray(img)[None])[0], width), caption=cap, clamp=True, width=width)


def _upscale(img: np.ndarray, width: int) -> np.ndarray:
    f = max(1, width // img.shape[-1])
    return np.kron(img, np.ones((f, f), np.float32))


def show_grid(images, ncols: int, width: int = 700, caption: str | None = None) -> None:
    """A mosaic of images, scaled up without smoothing."""
    mosaic = _upscale(plots.tile(images, ncols), width)
    st.image(mosaic, caption=caption, clamp=True, width=min(width, mosaic.shape[1]))


def powers_of_ten(fig, axis: str = "y"):
    """Label a log axis only at 10^k, written as powers: minor 2s and 5s confuse a class."""
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(type="log", dtick=1, exponentformat="power")
    return fig
