"""Data augmentation: new variants of a few real samples, decoded from codes near theirs (a VAE's posterior, or a
step of the training codes' spread), and whether they help a classifier that has few labelled images.
Numpy in, numpy out."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import torch

from .. import analysis
from ..data import Dataset
from ..models import Autoencoder


def code_spread(model: Autoencoder, x_train) -> np.ndarray:
    """Standard deviation of each code dimension over the training set: the unit of 'how far' for a plain AE."""
    return analysis.embed(model, x_train).std(0)




@torch.inference_mode()
def augment(model: Autoencoder, x, n: int, scale: float, seed: int = 0, spread=None,
            mode: str = "posterior") -> np.ndarray:
    """n decoded variants of each sample of x, grouped by sample: shape (len(x) * n, *input_shape).

    mode "posterior" (VAEs only) samples z = mu + scale * sigma * eps; mode "code" (and any non-VAE) moves the
    code by scale * spread * eps, with spread the per-dimension std of the training codes.
    """
    x = model.shape(torch.as_tensor(np.asarray(x, np.float32)))
    gen = torch.Generator().manual_seed(seed)
    if mode == "posterior" and model.has_prior:
        _, extras = model.posterior(x)
        mu, logvar = extras["mu"].repeat_interleave(n, 0), extras["logvar"].repeat_interleave(n, 0)
        return model.decode(model.sample_posterior(mu, logvar, gen, scale)).numpy()
    if spread is None:
        raise ValueError("A plain autoencoder needs the spread of its training codes to know how far to move.")
    mu = model.encode(x).repeat_interleave(n, 0)
    sigma = torch.as_tensor(np.asarray(spread, np.float32)).expand(len(mu), -1)
    return model.decode(mu + scale * sigma * torch.randn(mu.shape, generator=gen)).numpy()


def to_npz(images, labels=None) -> bytes:
    """The images (and labels) as a compressed .npz file in memory."""
    buf = io.BytesIO()
    arrays = {"x": np.asarray(images, np.float32)}
    if labels is not None:
        arrays["y"] = np.asarray(labels)
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def to_png_zip(images, prefix: str = "variant") -> bytes:
    """A zip of 8-bit greyscale PNGs, one per image."""
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, img in enumerate(np.clip(np.asarray(images, np.float32).reshape(len(images), *np.shape(images)[-2:]), 0, 1)):
            png = io.BytesIO()
            Image.fromarray((img * 255).round().astype(np.uint8), "L").save(png, "PNG")
            zf.writestr(f"{prefix}_{i:03d}.png", png.getvalue())
    return buf.getvalue()


def few_shot_sample(y_train, per_class: int, seed: int) -> np.ndarray:
    """Indices of per_class training samples of each class, drawn with a seed."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y_train)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)])


def _pixel_classifier_accuracy(x, y, data: Dataset) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=1000).fit(np.asarray(x).reshape(len(x), -1), y)
    return float(clf.score(data.x_test.numpy().reshape(len(data.x_test), -1), data.y_test.numpy()))


def few_shot_gain(model: Autoencoder, data: Dataset, per_class: int = 10, n_aug: int = 5, scale: float = 1.0,
                  seeds=(0, 1, 2, 3, 4), spread=None, mode: str = "posterior", progress=None) -> dict[str, list[float]]:
    """Test accuracy of a logistic regression on few real images, without and with n_aug variants of each, per seed."""
    out: dict[str, list[float]] = {"real only": [], "real + augmented": []}
    y_all = data.y_train.numpy()
    for i, seed in enumerate(seeds):
        idx = few_shot_sample(y_all, per_class, seed)
        x, y = data.x_train.numpy()[idx], y_all[idx]
        out["real only"].append(_pixel_classifier_accuracy(x, y, data))
        x_aug = augment(model, x, n_aug, scale, seed, spread, mode)
        out["real + augmented"].append(_pixel_classifier_accuracy(
            np.concatenate([x, x_aug]), np.concatenate([y, np.repeat(y, n_aug)]), data))
        if progress:
            progress((i + 1) / len(seeds))
    return out
