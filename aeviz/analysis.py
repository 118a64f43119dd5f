"""Numbers and arrays about models and data: numpy in, numpy out. Never imports streamlit."""
from __future__ import annotations

import threading
import time

import numpy as np
import torch

from . import losses
from .models import Autoencoder

UMAP_LOCK = threading.Lock()  # numba's default threading layer can abort the process on concurrent fits


def _tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.float()
    a = np.asarray(x, dtype=np.float32)
    return torch.as_tensor(a if a.flags.writeable else a.copy())  # shared caches hand out read-only arrays


def _device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (a GPU while `aeviz train --device cuda` takes snapshots)."""
    return next(model.parameters()).device


@torch.inference_mode()
def embed(model: Autoencoder, x, batch_size: int = 1000) -> np.ndarray:
    """Codes z (the posterior mean for a VAE) of x, shape (N, latent_dim)."""
    x, dev = _tensor(x), _device(model)
    return torch.cat([model.encode(xb.to(dev)).cpu() for xb in x.split(batch_size)]).numpy()


@torch.inference_mode()
def decode(model: Autoencoder, z, batch_size: int = 1000) -> np.ndarray:
    """x_hat in [0,1] for codes z, shape (N, *input_shape)."""
    z, dev = _tensor(z).reshape(-1, model.config.latent_dim), _device(model)
    return torch.cat([model.decode(zb.to(dev)).cpu() for zb in z.split(batch_size)]).numpy()


def reconstruct(model: Autoencoder, x, batch_size: int = 1000) -> np.ndarray:
    """decode(encode(x)), same shape as the model's samples."""
    return decode(model, embed(model, x, batch_size), batch_size)


def per_sample_mse(x, x_hat) -> np.ndarray:
    """Mean squared error of each sample, over its values."""
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    return ((x - x_hat) ** 2).reshape(len(x), -1).mean(1)


def psnr(x, x_hat) -> float:
    """Peak signal-to-noise ratio in dB for values in [0,1], from the mean MSE over all samples."""
    mse = float(np.mean((np.asarray(x, np.float64) - np.asarray(x_hat, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def ssim(x, x_hat) -> float:
    """Mean structural similarity over a batch of images (N, [1,] H, W) in [0,1] (scikit-image)."""
    from skimage.metrics import structural_similarity

    x = np.asarray(x, np.float64).reshape(len(x), *np.shape(x)[-2:])
    x_hat = np.asarray(x_hat, np.float64).reshape(x.shape)
    win = min(7, x.shape[-1] - (1 - x.shape[-1] % 2))
    return float(np.mean([structural_similarity(a, b, data_range=1.0, win_size=win) for a, b in zip(x, x_hat)]))


NELBO_SAMPLES = 10  # Monte-Carlo draws of z per sample for the negative ELBO, wherever it is shown


@torch.inference_mode()
def negative_elbo(model: Autoencoder, x, samples: int = NELBO_SAMPLES, seed: int = 0) -> np.ndarray:
    """-ELBO per sample in nats: -log p(x|z) under the model's own likelihood (losses.neg_log_likelihood: Bernoulli
    for recon="bce", Gaussian for "mse"), averaged over `samples` draws of z ~ q(z|x), plus KL(q(z|x) || N(0,I)).

    For a model without a prior it is the -log p(x|z) term at z = encode(x).
    """
    x = model.shape(_tensor(x))
    kind = model.config.recon
    if not model.has_prior:
        return losses.neg_log_likelihood(model.decoder(model.encode(x)), x, kind, normalised=True).numpy()
    gen = torch.Generator().manual_seed(seed)
    _, extras = model.posterior(x)
    mu, logvar = extras["mu"], extras["logvar"]
    rec = torch.zeros(len(x))
    for _ in range(samples):
        z = model.sample_posterior(mu, logvar, gen)
        rec += losses.neg_log_likelihood(model.decoder(z), x, kind, normalised=True)
    return (rec / samples + losses.kl_normal(mu, logvar, per_dim=True).sum(1)).numpy()


def interpolate(z0, z1, steps: int, method: str = "linear") -> np.ndarray:
    """steps codes from z0 to z1: linear (lerp) or spherical (slerp, keeps the norm's path on the sphere)."""
    return path_point(z0, z1, np.linspace(0.0, 1.0, steps), method)


def path_point(z0, z1, t, method: str = "linear") -> np.ndarray:
    """The code at t in [0, 1] (a number, or an array of them: one code each) on interpolate's path."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.asarray(t, np.float64)[..., None]
    if method == "linear":
        return (1 - t) * z0 + t * z1
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # (anti)parallel codes: slerp degenerates to lerp
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def latent_grid(lo: tuple[float, float], hi: tuple[float, float], n: int) -> np.ndarray:
    """n*n codes on a regular grid over a 2-D latent plane, row by row from the top (high z2) down."""
    z1 = np.linspace(lo[0], hi[0], n)
    z2 = np.linspace(hi[1], lo[1], n)
    return np.array([[a, b] for b in z2 for a in z1], np.float32)


def traversal(z, dims, span: float, steps: int) -> np.ndarray:
    """Codes that sweep each of dims across z[d] +- span: shape (len(dims) * steps, latent_dim)."""
    z = np.asarray(z, np.float32)
    rows = []
    for d in dims:
        zs = np.repeat(z[None], steps, 0)
        zs[:, d] = np.linspace(z[d] - span, z[d] + span, steps)
        rows.append(zs)
    return np.concatenate(rows)


def dimension_influence(model: Autoencoder, z, scale) -> np.ndarray:
    """How much x_hat changes (mean |dx|) when each code dimension moves by one `scale` step."""
    z = np.asarray(z, np.float32)
    scale = np.broadcast_to(np.asarray(scale, np.float32), z.shape)
    shifted = np.repeat(z[None], len(z), 0) + np.diag(scale)
    base = decode(model, z[None])
    return np.abs(decode(model, shifted) - base).reshape(len(z), -1).mean(1)


def fit_pca(x_train, k: int):
    """A scikit-learn PCA with k components fit on flattened training samples."""
    from sklearn.decomposition import PCA

    return PCA(n_components=k, random_state=0).fit(np.asarray(x_train).reshape(len(x_train), -1))


def pca_reconstruct(pca, x) -> np.ndarray:
    """Project x onto the PCA subspace and back; same shape as x."""
    flat = np.asarray(x).reshape(len(x), -1)
    return pca.inverse_transform(pca.transform(flat)).reshape(np.shape(x))


def project(codes, method: str, seed: int = 0) -> np.ndarray:
    """2-D map of codes by 'pca', 'umap' or 'tsne' (codes with 2 columns are returned as they are)."""
    codes = np.asarray(codes, np.float32).reshape(len(codes), -1)
    if codes.shape[1] == 2 or method == "none":
        return codes[:, :2]
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(2, random_state=seed).fit_transform(codes).astype(np.float32)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, random_state=seed, init="pca", perplexity=30).fit_transform(codes).astype(np.float32)
    if method == "umap":
        with UMAP_LOCK:
            import umap

            return umap.UMAP(n_components=2, random_state=seed).fit_transform(codes).astype(np.float32)
    raise ValueError(f"Unknown projection '{method}'; choose pca, umap or tsne.")


def map_2d(z, previous=None) -> np.ndarray:
    """Codes as a 2-D map (float32): as they are for 2 dimensions, beside a zero column for 1, their first two
    principal components beyond 2, each component's sign following `previous` (the last map), so a map that is
    redrawn as a model trains does not flip."""
    z = np.asarray(z, np.float32).reshape(len(z), -1)
    if z.shape[1] == 1:
        return np.column_stack([z[:, 0], np.zeros(len(z), np.float32)])
    xy = project(z, "pca")
    if previous is not None and z.shape[1] > 2:
        xy = xy * np.where((xy * previous).sum(0) < 0, -1.0, 1.0).astype(np.float32)
    return xy


def timed(fn, *args, **kwargs):
    """(result, seconds) of fn(*args, **kwargs)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def roc(scores, is_anomaly):
    """(false positive rates, true positive rates, AUROC) with higher scores meaning more anomalous."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(is_anomaly, scores)
    return fpr, tpr, float(roc_auc_score(is_anomaly, scores))


def trustworthiness(x, embedding, k: int = 5) -> float:
    """How well k-nearest neighbours in the embedding were neighbours in x (scikit-learn), in [0,1]."""
    from sklearn.manifold import trustworthiness as tw

    return float(tw(np.asarray(x).reshape(len(x), -1), embedding, n_neighbors=k))


def knn_accuracy(train_codes, y_train, test_codes, y_test, k: int = 5) -> float:
    """Test accuracy of a k-NN classifier on codes."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(k).fit(np.asarray(train_codes).reshape(len(train_codes), -1), y_train)
    return float(clf.score(np.asarray(test_codes).reshape(len(test_codes), -1), y_test))


def linear_probe_accuracy(train_codes, y_train, test_codes, y_test) -> float:
    """Test accuracy of a logistic regression on standardised codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(np.asarray(train_codes).reshape(len(train_codes), -1), y_train)
    return float(clf.score(np.asarray(test_codes).reshape(len(test_codes), -1), y_test))
