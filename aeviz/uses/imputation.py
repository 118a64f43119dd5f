"""Fill missing pixels with an autoencoder, and the mean-image baseline.

Two methods: iterated reconstruction (keep what is known, decode again, repeat), and fitting the code (search the
latent space for the z whose decoding matches the known pixels, then read the missing ones off the decoder).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .. import analysis
from ..models import Autoencoder

MASKS = ("top half", "bottom half", "left half", "right half", "box", "random pixels")


def make_mask(height: int, width: int, kind: str, rate: float = 0.5, box: tuple[int, int, int] = (8, 8, 12),
              seed: int = 0) -> np.ndarray:
    """(height, width) booleans, True where a pixel is missing.

    box is (top row, left column, side); rate is the fraction of missing pixels for "random pixels".
    """
    m = np.zeros((height, width), bool)
    if kind == "top half":
        m[: height // 2] = True
    elif kind == "bottom half":
        m[height // 2:] = True
    elif kind == "left half":
        m[:, : width // 2] = True
    elif kind == "right half":
        m[:, width // 2:] = True
    elif kind == "box":
        r, c, side = box
        m[max(r, 0): r + side, max(c, 0): c + side] = True
    elif kind == "random pixels":
        m = np.random.default_rng(seed).random((height, width)) < rate
    else:
        raise ValueError(f"Unknown mask '{kind}'; choose one of {', '.join(MASKS)}.")
    return m


def mean_fill(x, missing, mean_image) -> np.ndarray:
    """The baseline: each missing pixel takes the training-set mean of that pixel."""
    x = np.asarray(x, np.float32)
    return np.where(missing, np.broadcast_to(mean_image, x.shape), x).astype(np.float32)


METHODS = ("fit the code", "iterated reconstruction")


def impute(model: Autoencoder, x, missing, mean_image, iterations: int) -> np.ndarray:
    """States of iterated reconstruction, shape (iterations + 1, *x.shape); state 0 is the mean fill.

    Each step decodes the current guess and copies only the missing pixels from it, so known pixels never change.
    """
    return np.stack(list(iter_impute(model, x, missing, mean_image, iterations)))


def iter_impute(model: Autoencoder, x, missing, mean_image, iterations: int) -> Iterator[np.ndarray]:
    """impute's states one at a time, so a caller can score them without holding them all."""
    x = np.asarray(x, np.float32)
    state = mean_fill(x, missing, mean_image)
    yield state
    for _ in range(iterations):
        state = np.where(missing, analysis.reconstruct(model, state).reshape(x.shape), x).astype(np.float32)
        yield state


def iter_fit_code(model: Autoencoder, x, missing, mean_image, steps: int, lr: float = 0.05,
                  prior: float = 1e-3) -> Iterator[np.ndarray]:
    """Fill by searching the code: yields the fill after each of `steps` Adam steps; the first is the mean fill.

    Starts from z = encode(mean fill) and minimises, per image, the squared error on the known pixels only plus
    prior * |z|^2 (a weak pull towards the origin, where the codes of real digits live). The missing pixels are then
    taken from decode(z); the known pixels never change. The model's weights are not touched.
    """
    x = np.asarray(x, np.float32)
    start = mean_fill(x, missing, mean_image)
    yield start
    if steps <= 0:
        return
    known = torch.as_tensor(~np.broadcast_to(missing, x.shape).reshape(len(x), -1), dtype=torch.float32)
    target = torch.as_tensor(x.reshape(len(x), -1))
    with torch.no_grad():
        z = model.encode(torch.as_tensor(start)).detach().clone()
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    low, high = model.code_range  # a sparse code stays where the encoder could have put it
    for _ in range(steps):
        with torch.enable_grad():
            out = model.decode(z).reshape(len(x), -1)
            loss = (((out - target) ** 2) * known).sum(1).sum() + prior * (z ** 2).sum()
            (z.grad,) = torch.autograd.grad(loss, z)
        opt.step()
        if (low, high) != (None, None):
            with torch.no_grad():
                z.clamp_(low, high)
        yield np.where(missing, out.detach().numpy().reshape(x.shape), x).astype(np.float32)


def fit_code(model: Autoencoder, x, missing, mean_image, steps: int, **kw) -> np.ndarray:
    """iter_fit_code's states stacked, shape (steps + 1, *x.shape)."""
    return np.stack(list(iter_fit_code(model, x, missing, mean_image, steps, **kw)))


def fill_states(method: str, model: Autoencoder, x, missing, mean_image, steps: int) -> Iterator[np.ndarray]:
    """The states of either method by its name in METHODS."""
    if method == "fit the code":
        return iter_fit_code(model, x, missing, mean_image, steps)
    if method == "iterated reconstruction":
        return iter_impute(model, x, missing, mean_image, steps)
    raise ValueError(f"Unknown imputation method '{method}'; choose one of {', '.join(METHODS)}.")


def missing_mse(x, x_filled, missing) -> np.ndarray:
    """Per-sample mean squared error over the missing pixels only."""
    x, x_filled = np.asarray(x, np.float64), np.asarray(x_filled, np.float64)
    m = np.broadcast_to(missing, x.shape).reshape(len(x), -1)
    sq = ((x - x_filled) ** 2).reshape(len(x), -1)
    return (sq * m).sum(1) / np.maximum(m.sum(1), 1)
