"""The latent-size sweep of the feature-extraction and compression pages and of `aeviz bench applications`: the
sizes, the pretrained model that stands for a size, and the small model trained live where none does."""
from __future__ import annotations

from collections.abc import Iterable

from .. import config_for
from ..config import ModelConfig, TrainConfig
from ..data import load as load_data
from ..io import Card

LATENT_SIZES = (2, 4, 8, 16, 32)


def quick_configs(dataset: str, latent_dim: int) -> tuple[ModelConfig, TrainConfig]:
    """The small, seeded model a page trains live when no pretrained one fits: seconds on one CPU core."""
    if load_data(dataset).kind == "points":
        return (config_for(dataset, latent_dim=latent_dim, hidden=(64, 64), recon="mse"),
                TrainConfig(epochs=60, batch_size=128, lr=3e-3, eval_every=0))
    return (config_for(dataset, latent_dim=latent_dim, hidden=(256, 128)),
            TrainConfig(epochs=20, batch_size=64, lr=2e-3, eval_every=0))


def pretrained_for(k: int, dataset: str, cards: Iterable[Card]) -> str | None:
    """The name of the pretrained model that stands for latent size k on dataset: the one built with
    aeviz.config_for's defaults at that size (a plain MLP autoencoder), or None when the cards hold none."""
    wanted = config_for(dataset, latent_dim=k)
    return next((card.name for card in cards if card.config == wanted), None)
