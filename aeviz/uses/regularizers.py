"""What the regularised autoencoders do differently: denoising curves, code sparsity, learned features,
encoder Jacobians and code robustness. Numpy in, numpy out; never imports streamlit."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import analysis, nets
from ..data import corrupt
from ..models import Autoencoder

FILTERS = ("median", "gaussian")
ACTIVE = 0.1  # a unit is active on an image above this share of its largest activation on the test set


def _tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, np.float32))


def classical_filter(x, kind: str = "median", size: float = 3) -> np.ndarray:
    """A per-image median (size x size window) or Gaussian (sigma = size / 3) filter from scipy, same shape as x."""
    from scipy import ndimage

    x = np.asarray(x, np.float32)  # the leading axes (batch, channel) get size 1 / sigma 0: no mixing across them
    if kind == "median":
        return ndimage.median_filter(x, size=[1] * (x.ndim - 2) + [int(size)] * 2, mode="constant")
    if kind == "gaussian":
        return ndimage.gaussian_filter(x, sigma=[0] * (x.ndim - 2) + [size / 3] * 2, mode="constant")
    raise ValueError(f"Unknown filter '{kind}'; choose one of {', '.join(FILTERS)}.")


def outputs(models: dict[str, Autoencoder], x_noisy, filter_kind: str = "median") -> dict[str, np.ndarray]:
    """What each method makes of a noisy batch: the noisy input itself, every model's output, the filter."""
    x_noisy = np.asarray(x_noisy, np.float32)
    out = {"noisy input": x_noisy}
    for name, model in models.items():
        out[name] = analysis.reconstruct(model, x_noisy).reshape(x_noisy.shape)
    out[f"{filter_kind} filter"] = classical_filter(x_noisy, filter_kind)
    return out


def scores(x_clean, results: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """(PSNR in dB, SSIM) of each method's result against the clean images."""
    return {k: (analysis.psnr(x_clean, v), analysis.ssim(x_clean, v)) for k, v in results.items()}


def psnr_curves(models: dict[str, Autoencoder], x, noise: str, levels, filter_kind: str = "median",
                seed: int = 0) -> dict[str, np.ndarray]:
    """PSNR of each method (noisy input, every model, the filter) at each noise level, on the same noisy draws."""
    curves: dict[str, list[float]] = {}
    for level in levels:
        results = outputs(models, corrupt(x, noise, float(level), seed), filter_kind)
        for k, v in results.items():
            curves.setdefault(k, []).append(analysis.psnr(x, v))
    return {k: np.asarray(v) for k, v in curves.items()}


def denoising_figures(denoiser: Autoencoder, vanilla: Autoencoder, x, sigma: float = 0.5,
                      filter_kind: str = "median", seed: int = 0) -> dict[str, float]:
    """PSNR (dB) of the noisy input, the denoiser, the vanilla AE and the filter at Gaussian sigma (clipped)."""
    results = outputs({"denoised": denoiser, "vanilla AE": vanilla}, corrupt(x, "gaussian", sigma, seed),
                      filter_kind)
    return {k: analysis.psnr(x, v) for k, v in results.items()}


@dataclass(frozen=True)
class Activity:
    """How a model's code units fire on a set of images."""

    z: np.ndarray  # (N, units) activations
    active: np.ndarray  # (N, units) bool: |z| above ACTIVE x that unit's largest |z|
    per_image: np.ndarray  # (N,) fraction of units active on each image
    per_unit: np.ndarray  # (units,) fraction of images on which each unit is active


def activity(model: Autoencoder, x, share: float = ACTIVE) -> Activity:
    """Code activations and which units are active, judged against each unit's own scale (so it is fair
    to a model whose codes are simply smaller)."""
    z = analysis.embed(model, x)
    peak = np.abs(z).max(0, keepdims=True)
    active = np.abs(z) > share * np.where(peak > 0, peak, np.inf)
    return Activity(z, active, active.mean(1), active.mean(0))


def _linears(model: Autoencoder) -> tuple[nn.Linear, nn.Linear]:
    enc = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
    dec = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    if not nets.ARCHS[model.config.arch].dense or not enc or len(model.config.input_shape) < 2:
        raise ValueError("Feature images need an MLP model on images; pick one such as sparse-mlp-z64.")
    return enc[0], dec[-1]


def features(model: Autoencoder, which: str = "encoder", n: int = 64, units=None) -> np.ndarray:
    """(n, H, W) images of what units respond to (first-layer encoder rows) or draw (last decoder columns).

    units picks which units, in order (default: the first n). Each image is scaled symmetrically:
    grey is 0, white positive, black negative weights.
    """
    first, last = _linears(model)
    w = (first.weight if which == "encoder" else last.weight.T).detach().numpy()
    w = w[np.asarray(units)[:n]] if units is not None else w[:n]
    h, wd = model.config.input_shape[-2:]
    scale = np.abs(w).max(1, keepdims=True)
    return (0.5 + 0.5 * w / np.where(scale > 0, scale, 1.0)).reshape(-1, h, wd)


def jacobian_norms(model: Autoencoder, x, batch_size: int = 250) -> np.ndarray:
    """||dz/dx||_F of the encoder at each sample (exact, one backward pass per code dimension)."""
    out = []
    for xb in _tensor(x).split(batch_size):
        xb = xb.clone().requires_grad_(True)
        with torch.enable_grad():  # callers may be scoring under no_grad
            z = model.encode(xb)
        sq = torch.zeros(len(xb))
        for k in range(z.shape[1]):  # samples are independent, so row k of each J comes from one pass
            (g,) = torch.autograd.grad(z[:, k].sum(), xb, retain_graph=k < z.shape[1] - 1)
            sq += g.square().flatten(1).sum(1)
        out.append(sq.sqrt())
    return torch.cat(out).numpy()


def shift(x, pixels: int) -> np.ndarray:
    """Images (N, [C,] H, W) moved by `pixels` in each of the four directions, stacked: (4N, ...); zeros fill in."""
    x = np.asarray(x, np.float32)
    if x.ndim < 3:
        raise ValueError("Shifting needs images (N, [C,] H, W); this model's samples are not images.")
    if pixels == 0:
        return np.concatenate([x] * 4)
    p = int(pixels)
    moved = []
    for axis, sign in ((-1, 1), (-1, -1), (-2, 1), (-2, -1)):
        y = np.roll(x, sign * p, axis=axis)
        edge = [slice(None)] * x.ndim
        edge[axis] = slice(0, p) if sign > 0 else slice(-p, None)
        y[tuple(edge)] = 0.0
        moved.append(y)
    return np.concatenate(moved)


def code_spread(z: np.ndarray) -> float:
    """Mean distance of codes from their mean: the yardstick that makes code movements comparable."""
    return float(np.linalg.norm(z - z.mean(0), axis=1).mean())


def robustness(model: Autoencoder, x, kind: str, sizes, seed: int = 0) -> np.ndarray:
    """Mean ||z(x + perturbation) - z(x)|| / code spread for each size: Gaussian sigma ('noise') or pixels ('shift')."""
    x = np.asarray(x, np.float32)
    z = analysis.embed(model, x)
    spread = code_spread(z)
    moved = []
    for s in sizes:
        if kind == "noise":
            x_p, z_ref = corrupt(x, "gaussian", float(s), seed), z
        elif kind == "shift":
            x_p, z_ref = shift(x, int(s)), np.concatenate([z] * 4)
        else:
            raise ValueError(f"Unknown perturbation '{kind}'; choose noise or shift.")
        moved.append(np.linalg.norm(analysis.embed(model, x_p) - z_ref, axis=1).mean() / spread)
    return np.asarray(moved)
