"""Uses of a trained autoencoder: dimensionality reduction, feature extraction and data augmentation.

Compression lives in compression.py and imputation in imputation.py. Numpy in, numpy out; never imports streamlit.
"""
from __future__ import annotations

import io
import zipfile

import numpy as np
import torch

from .. import analysis, config_for
from ..config import ModelConfig, TrainConfig
from ..data import Dataset
from ..data import load as load_data
from ..models import Autoencoder

LATENT_SIZES = (2, 4, 8, 16, 32)  # the sweep of the feature-extraction and compression pages
K_NEIGHBOURS = 5


def quick_configs(dataset: str, latent_dim: int) -> tuple[ModelConfig, TrainConfig]:
    """The small, seeded model a page trains live when no pretrained one fits: seconds on one CPU core."""
    if load_data(dataset).kind == "points":
        return (config_for(dataset, latent_dim=latent_dim, hidden=(64, 64), recon="mse"),
                TrainConfig(epochs=60, batch_size=128, lr=3e-3, eval_every=0))
    return (config_for(dataset, latent_dim=latent_dim, hidden=(256, 128)),
            TrainConfig(epochs=20, batch_size=64, lr=2e-3, eval_every=0))


def is_image_model(model: Autoencoder) -> bool:
    """True for models of (C, H, W) images, the ones the image pages can use."""
    return len(model.config.input_shape) == 3


# Dimensionality reduction ---------------------------------------------------------------------------

def pca_map(x_train, x) -> np.ndarray:
    """2-D PCA coordinates of x, with the components fit on the training set."""
    flat = np.asarray(x).reshape(len(x), -1)
    return analysis.fit_pca(x_train, 2).transform(flat).astype(np.float32)


def _halves(n: int) -> tuple[slice, slice]:
    return slice(0, n, 2), slice(1, n, 2)  # t-SNE and UMAP maps exist for the test points only: split them


def neighbour_score(xy, y, continuous: bool) -> float:
    """5-NN accuracy on the map (R² of a continuous label such as the roll position), fit on one half, scored on the other."""
    from sklearn.neighbors import KNeighborsRegressor

    a, b = _halves(len(xy))
    y = np.asarray(y)
    if not continuous:
        return analysis.knn_accuracy(xy[a], y[a], xy[b], y[b], k=K_NEIGHBOURS)
    return float(KNeighborsRegressor(K_NEIGHBOURS).fit(xy[a], y[a]).score(xy[b], y[b]))


def unrolling_score(xy, t) -> float:
    """R² of the roll position read along one straight direction of the map: near 1 only if the sheet is unrolled."""
    from sklearn.linear_model import LinearRegression

    a, b = _halves(len(xy))
    t = np.asarray(t)
    return float(LinearRegression().fit(xy[a], t[a]).score(xy[b], t[b]))


def map_scores(x, xy, y, continuous: bool) -> dict[str, float]:
    """The table row of one 2-D map of x: trustworthiness, 5-NN score and (for manifolds) unrolling."""
    row = {"trustworthiness": analysis.trustworthiness(x, xy, k=K_NEIGHBOURS),
           ("5-NN R² of position" if continuous else "5-NN accuracy"): neighbour_score(xy, y, continuous)}
    if continuous:
        row["unrolled (linear R²)"] = unrolling_score(xy, y)
    return row


# Feature extraction ---------------------------------------------------------------------------------

def pca_features(x_train, x_test, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k PCA coefficients of the training and test samples (PCA fit on the training set)."""
    pca = analysis.fit_pca(x_train, k)
    return pca.transform(np.asarray(x_train).reshape(len(x_train), -1)), pca.transform(np.asarray(x_test).reshape(len(x_test), -1))


def feature_scores(train_codes, y_train, test_codes, y_test) -> dict[str, float]:
    """Test accuracy of a linear probe and of 5-NN trained on the features."""
    return {"linear probe": analysis.linear_probe_accuracy(train_codes, y_train, test_codes, y_test),
            "5-NN": analysis.knn_accuracy(train_codes, y_train, test_codes, y_test, k=K_NEIGHBOURS)}


# Data augmentation ----------------------------------------------------------------------------------

def code_spread(model: Autoencoder, x_train) -> np.ndarray:
    """Standard deviation of each code dimension over the training set: the unit of 'how far' for a plain AE."""
    return analysis.embed(model, x_train).std(0)


AUGMENT_MODES = ("posterior", "code")


@torch.inference_mode()
def augment(model: Autoencoder, x, n: int, scale: float, seed: int = 0, spread=None,
            mode: str = "posterior") -> np.ndarray:
    """n decoded variants of each sample of x, grouped by sample: shape (len(x) * n, *input_shape).

    mode "posterior" (VAEs only) samples z = mu + scale * sigma * eps; mode "code" (and any non-VAE) moves the
    code by scale * spread * eps, with spread the per-dimension std of the training codes.
    """
    x = model.shape(torch.as_tensor(np.asarray(x, np.float32)))
    _, extras = model.posterior(x)
    gen = torch.Generator().manual_seed(seed)
    if mode == "posterior" and "logvar" in extras:
        mu, sigma = extras["mu"], (0.5 * extras["logvar"]).exp()
    else:
        if spread is None:
            raise ValueError("A plain autoencoder needs the spread of its training codes to know how far to move.")
        mu, sigma = model.encode(x), torch.as_tensor(np.asarray(spread, np.float32)).expand(len(x), -1)
    mu, sigma = mu.repeat_interleave(n, 0), sigma.repeat_interleave(n, 0)
    z = mu + scale * sigma * torch.randn(mu.shape, generator=gen)
    return model.decode(z).numpy()


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
