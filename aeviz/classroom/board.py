"""What the class board shows about one entry: its metadata and its figures. Numpy in, numpy out; never imports
streamlit.

Every entry of a room is drawn from the same inputs: the same test images (picked by SEED), the same subset of test
points on its latent map, and, for a VAE, prior samples drawn with the same seed, so entries differ only by what
their students chose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from ..models import Autoencoder
from ..uses import compare

SEED = 0  # the test images, the map's points and the prior samples every entry is drawn with
N_IMAGES = 8  # test images reconstructed by every entry
N_SAMPLES = 8  # prior samples per VAE entry
MAP_POINTS = 400  # test points on each small latent map: enough to see the shape, light enough for 30 maps
SORTS = {"arrival": "order of arrival", "test_mse": "test MSE (lowest first)", "latent_dim": "latent size",
         "beta": "β", "author": "student"}


def model_card(model: Autoencoder, data: Dataset) -> dict[str, float]:
    """The one set of model metrics (the zoo's model card), so the board's table matches every other page."""
    from ..zoo import trained_card

    return trained_card(model, data)


def _round(value: float) -> float | None:
    """6 significant digits (the table shows at most 4); non-finite values become None (JSON has no NaN)."""
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None


def entry_meta(model: Autoencoder, data: Dataset, note: str = "") -> dict:
    """What the board keeps beside an entry's weights: the choices it is sorted and filtered by, and its model card
    (measured once, when it is submitted, not on every render of the board)."""
    c = model.config
    return {"objective": c.objective, "arch": c.arch, "dataset": c.dataset, "latent_dim": c.latent_dim,
            "beta": c.beta if c.objective == "variational" else None, "label": c.label, "note": note,
            "card": {k: _round(v) for k, v in model_card(model, data).items()}}


def matches(meta: dict, objectives=(), latents=(), beta: tuple[float, float] | None = None) -> bool:
    """Whether an entry passes the board's filters (an empty choice lets everything through; β filters VAEs only)."""
    if objectives and meta.get("objective") not in objectives:
        return False
    if latents and meta.get("latent_dim") not in latents:
        return False
    b = meta.get("beta")
    return beta is None or b is None or beta[0] <= b <= beta[1]


def sort_key(sort: str):
    """Key for sorted() over (entry, meta) pairs; missing values go last."""
    def key(pair):
        entry, meta = pair
        if sort == "author":
            return (0, entry.author.casefold(), entry.id)
        value = (meta.get("card") or {}).get(sort) if sort == "test_mse" else meta.get(sort)
        if sort == "arrival" or value is None:
            return (sort != "arrival", 0.0, entry.id)
        return (0, float(value), entry.id)
    return key


@dataclass(frozen=True)
class Figures:
    """One entry's pictures, drawn from the board's shared inputs."""

    xy: np.ndarray  # (MAP_POINTS, 2) the codes of the map's test points: z itself for 2-D codes, else PCA
    labels: np.ndarray  # (MAP_POINTS,) their classes (or colour values)
    recon: np.ndarray | None  # (N_IMAGES, *sample_shape) reconstructions of the shared test images
    samples: np.ndarray | None  # (N_SAMPLES, *sample_shape) decoded N(0, I) draws with SEED (VAEs only)


def map_points(data: Dataset) -> np.ndarray:
    """The test indices every entry's latent map shows."""
    return compare.picks(len(data.x_test), MAP_POINTS, SEED)


def test_images(data: Dataset) -> np.ndarray:
    """The test indices every entry reconstructs."""
    return compare.picks(len(data.x_test), N_IMAGES, SEED)


def figures(model: Autoencoder, data: Dataset, images: bool = True) -> Figures:
    """An entry's map, reconstructions and samples (the last two only for data drawn as images)."""
    from .. import analysis

    idx = map_points(data)
    xy = analysis.map_2d(analysis.embed(model, data.x_test[idx])).astype(np.float32)
    labels = data.y_test.numpy()[idx]
    if not images:
        return Figures(xy, labels, None, None)
    shape = data.sample_shape
    picked = data.x_test[test_images(data)]
    recon = analysis.reconstruct(model, picked).reshape(len(picked), *shape)
    samples = (compare.prior_samples(model, N_SAMPLES, SEED, shape)
               if model.config.objective == "variational" else None)
    return Figures(xy, labels, recon, samples)
