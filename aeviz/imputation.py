"""Fill missing pixels by iterated reconstruction: keep what is known, decode again, repeat."""
from __future__ import annotations

import numpy as np

from . import analysis
from .models import Autoencoder

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


def impute(model: Autoencoder, x, missing, mean_image, iterations: int) -> np.ndarray:
    """States of iterated reconstruction, shape (iterations + 1, *x.shape); state 0 is the mean fill.

    Each step decodes the current guess and copies only the missing pixels from it, so known pixels never change.
    """
    x = np.asarray(x, np.float32)
    state = mean_fill(x, missing, mean_image)
    states = [state]
    for _ in range(iterations):
        state = np.where(missing, analysis.reconstruct(model, state).reshape(x.shape), x).astype(np.float32)
        states.append(state)
    return np.stack(states)


def missing_mse(x, x_filled, missing) -> np.ndarray:
    """Per-sample mean squared error over the missing pixels only."""
    x, x_filled = np.asarray(x, np.float64), np.asarray(x_filled, np.float64)
    m = np.broadcast_to(missing, x.shape).reshape(len(x), -1)
    sq = ((x - x_filled) ** 2).reshape(len(x), -1)
    return (sq * m).sum(1) / np.maximum(m.sum(1), 1)
