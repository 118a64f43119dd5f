"""Model cards of the pretrained zoo: the figures stored in each checkpoint, its 2-D views, the README table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import analysis as A
from . import regularizers as R
from .data import Dataset
from .io import Card, pretrained
from .models import Autoencoder

NOISE_SIGMA = 0.5  # the denoising figures use Gaussian noise of this sigma, clipped to [0,1]
NOISE_SEED = 0  # one fixed noisy copy of the test set, the same one the regularizer lab draws
ROBUST_SIGMA = 0.1  # small input noise for the code-robustness figure of the contractive comparison
NELBO_SAMPLES = 10  # Monte-Carlo draws of z per image for the negative ELBO
SNAPSHOT_DTYPE = np.float16  # latent-2 training snapshots: 4 kB per epoch instead of 8


def noisy_test(data: Dataset, sigma: float = NOISE_SIGMA) -> np.ndarray:
    """The test set with fixed Gaussian noise of sigma, clipped to [0,1]."""
    return R.noisy(data.x_test, "gaussian", sigma, NOISE_SEED)


def test_mse(model: Autoencoder, x: np.ndarray) -> float:
    """Mean per-sample MSE between x and its reconstruction."""
    return float(A.per_sample_mse(x, A.reconstruct(model, x)).mean())


def pca_mse(data: Dataset, k: int) -> float:
    """Test MSE of PCA with k components fit on the same training samples."""
    x = data.x_test.numpy()
    return float(A.per_sample_mse(x, A.pca_reconstruct(A.fit_pca(data.x_train.numpy(), k), x)).mean())


def _label_metrics(model: Autoencoder, data: Dataset, x_test: np.ndarray) -> dict:
    """kNN accuracy of the codes where labels are classes; AUROC where they are all 'normal'; trustworthiness of
    the codes where the label is a continuous colour (the manifolds)."""
    y_train, y_test = data.y_train.numpy(), data.y_test.numpy()
    if not data.label_names and len(np.unique(y_train)) > 1:
        return {"trustworthiness": A.trustworthiness(x_test, A.embed(model, x_test))}
    if len(np.unique(y_train)) > 1:
        codes = A.embed(model, data.x_train), A.embed(model, x_test)
        return {"knn_acc": A.knn_accuracy(codes[0], y_train, codes[1], y_test)}
    score = A.per_sample_mse(x_test, A.reconstruct(model, x_test))  # anomalies reconstruct worse
    return {"auroc": A.roc(score, y_test > 0)[2]}


def card_metrics(model: Autoencoder, data: Dataset, vanilla: Autoencoder | None = None) -> dict[str, float]:
    """The model-card figures on the test set; vanilla is the same-size plain AE a denoiser is compared with."""
    c = model.config
    x = data.x_test.numpy()
    mse, base = test_mse(model, x), pca_mse(data, c.latent_dim)
    m = {"test_mse": mse, "pca_mse": base, "mse_ratio": mse / base, **_label_metrics(model, data, x)}
    if c.objective == "variational":
        m["nelbo"] = float(A.negative_elbo(model, x, samples=NELBO_SAMPLES).mean())
    if c.arch == "mlp" and c.objective in ("vanilla", "sparse", "contractive"):  # the regularizer lab's figures
        m["active_fraction"] = float(R.activity(model, x).per_image.mean())
        m["jacobian_norm"] = float(R.jacobian_norms(model, x).mean())
        m["code_shift"] = float(R.robustness(model, x, "noise", [ROBUST_SIGMA], NOISE_SEED)[0])
    if c.objective == "denoising":
        noisy = noisy_test(data)
        m |= {"psnr_noisy": A.psnr(x, noisy), "psnr_denoised": A.psnr(x, A.reconstruct(model, noisy))}
        if vanilla is not None:
            m["psnr_vanilla_noisy"] = A.psnr(x, A.reconstruct(vanilla, noisy))
    return m


def views(model: Autoencoder, data: Dataset) -> dict[str, np.ndarray]:
    """PCA and UMAP maps of the test codes for latent > 2, so the app never waits on UMAP."""
    if model.config.latent_dim <= 2:
        return {}
    codes = A.embed(model, data.x_test)
    return {"pca": A.project(codes, "pca"), "umap": A.project(codes, "umap", seed=0)}


class Snapshots:
    """Training callback: the test codes of a latent-2 model after every epoch, to scrub through training."""

    def __init__(self, x_test: torch.Tensor):
        self.x_test, self.codes, self.epochs = x_test, [], []

    def __call__(self, p) -> None:
        if not p.epoch_end:
            return
        p.model.eval()  # the VAE would otherwise draw z (and consume the training RNG) while encoding
        self.codes.append(A.embed(p.model, self.x_test).astype(SNAPSHOT_DTYPE))
        p.model.train()
        self.epochs.append(p.epoch)

    def arrays(self) -> dict[str, np.ndarray]:
        """snapshots (K, N, 2) and snapshot_epochs (K,)."""
        return {"snapshots": np.stack(self.codes), "snapshot_epochs": np.array(self.epochs, np.int32)}


def _fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _row(card: Card) -> str:
    m, c = card.metrics, card.config
    denoise = (f"{m['psnr_noisy']:.1f} → {m['psnr_denoised']:.1f} (plain AE {m['psnr_vanilla_noisy']:.1f})"
               if "psnr_denoised" in m else "")
    cells = [f"`{card.name}`", c.objective, c.arch, c.dataset, f"{int(m['params']):,}", str(c.latent_dim),
             str(int(m["epochs"])), f"{m['train_seconds']:.0f}", f"{m['test_mse']:.4f}", f"{m['pca_mse']:.4f}",
             f"{m['mse_ratio']:.3f}", _fmt(m.get("nelbo"), ".1f"), denoise]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| variant | objective | arch | data | parameters | latent | epochs | training s | test MSE | PCA MSE "
          "| MSE / PCA | −ELBO (nats) | PSNR σ=0.5 dB: noisy → denoised |\n"
          "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")


def readme(folder: Path, order: list[str] = ()) -> str:
    """pretrained/README.md, generated from the checkpoints' metadata only; rows in `order`, then by name."""
    rank = {name: i for i, name in enumerate(order)}
    cards = sorted(pretrained(folder), key=lambda c: (rank.get(c.name, len(rank)), c.name))
    size = sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))
    seconds = sum(c.metrics["train_seconds"] for c in cards)
    return "\n".join([
        "# Pretrained zoo",
        "",
        "Generated by `aeviz pretrain` (or `aeviz pretrain --only NAME ...` for some entries); do not edit. "
        "The build is deterministic: one torch thread and fixed seeds give the same weights, byte for byte, on "
        "the same machine. Every figure below is read from the checkpoints' metadata and measured on the 1,000 "
        "held-out test samples (`mnist`: PCA fit on the same 4,000 training images).",
        "",
        HEADER,
        *(_row(c) for c in cards),
        "",
        f"- {len(cards)} models, {size / 1e6:.1f} MB in all (weights stored as float16), "
        f"{seconds / 60:.1f} min of training (wall clock on the shared machine that built them).",
        "- MSE is per value, averaged over samples. PCA MSE uses as many components as the model has latent units.",
        f"- −ELBO: Bernoulli −log p(x|z) on the [0,1] pixels plus KL(q(z|x) ‖ N(0, I)), nats per image, "
        f"{NELBO_SAMPLES} draws of z.",
        f"- Denoising: Gaussian noise σ = {NOISE_SIGMA} clipped to [0,1]; the plain AE is the vanilla model "
        "of the same size on the same noisy inputs.",
        "- Each `<name>.views.safetensors` holds `pca` and `umap` maps of the test codes (latent > 2), or the "
        "test codes after each training epoch (`snapshots`, `snapshot_epochs`; latent 2).",
        "",
    ])
