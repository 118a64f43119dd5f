"""Anomaly detection with autoencoders: one-class scores, thresholds, error maps, a PCA baseline, time-series spans.

The idea: train on normal samples only; whatever the model reconstructs badly (a high score) is flagged.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import analysis, images
from ..config import TrainConfig
from ..models import Autoencoder

SCORES = {"mse": "reconstruction error (mean squared error per pixel)", "nelbo": "negative ELBO (nats)"}
# Channels of the convolutional one-class models: the page trains what `aeviz bench anomaly` measured.
CONV_HIDDEN = (16, 32)
TABULAR_MODEL = {"latent_dim": 4, "hidden": (64, 32)}  # the breast-cancer autoencoder (page and bench alike)
TABULAR_TRAIN = {"epochs": 200, "batch_size": 32, "lr": 1e-3}


def one_class(normal, **train_kw) -> TrainConfig:
    """A TrainConfig that trains on the normal classes only."""
    return TrainConfig(normal_classes=tuple(int(k) for k in normal), **train_kw)


def is_anomaly(y, normal) -> np.ndarray:
    """True where a label is not one of the normal classes."""
    return ~np.isin(np.asarray(y), [int(k) for k in normal])


@torch.inference_mode()
def scores(model: Autoencoder, x, kind: str = "mse", batch_size: int = 500) -> np.ndarray:
    """Anomaly score per sample: mean squared reconstruction error ('mse') or negative ELBO in nats ('nelbo')."""
    if kind == "nelbo":
        x = torch.as_tensor(np.asarray(x, np.float32))
        return np.concatenate([analysis.negative_elbo(model, xb) for xb in x.split(batch_size)])
    return analysis.per_sample_mse(x, analysis.reconstruct(model, x))


def pca_scores(x_normal, x, k: int) -> np.ndarray:
    """The linear baseline: squared error of x after projecting onto k principal components of the normal data."""
    pca = analysis.fit_pca(x_normal, k)
    return analysis.per_sample_mse(x, analysis.pca_reconstruct(pca, x))


def iforest_scores(x_normal, x, seed: int = 0) -> np.ndarray:
    """The tree baseline: scikit-learn's IsolationForest fit on the normal samples; higher is more anomalous."""
    from sklearn.ensemble import IsolationForest

    flat = np.asarray(x_normal).reshape(len(x_normal), -1)
    forest = IsolationForest(random_state=seed).fit(flat)
    return -forest.score_samples(np.asarray(x).reshape(len(x), -1))  # lower score_samples: more abnormal


def detector_aurocs(model: Autoencoder, x_normal, x, anomalous, pca_ks=(), seed: int = 0) -> dict:
    """AUROC on the same samples of the autoencoder's reconstruction error, an IsolationForest's score and PCA's
    reconstruction error with each k in pca_ks (all fit on the normal samples x_normal)."""
    def auroc(s):
        return analysis.roc(s, anomalous)[2]

    return {"autoencoder": auroc(scores(model, x)), "isolation_forest": auroc(iforest_scores(x_normal, x, seed)),
            "pca": {k: auroc(pca_scores(x_normal, x, k)) for k in pca_ks}}


def percentile_threshold(normal_scores, p: float) -> float:
    """The score below which p % of the normal scores lie."""
    return float(np.percentile(np.asarray(normal_scores, np.float64), p))


def percentile_of(value: float, normal_scores) -> float:
    """Percentage of normal scores strictly below value: where a new input ranks among normal ones."""
    return float(100.0 * np.mean(np.asarray(normal_scores) < value))


def confusion(scores_, is_anomaly_, threshold: float) -> dict[str, int]:
    """Counts of true negatives, false positives, false negatives and true positives; flagged means score > threshold."""
    from sklearn.metrics import confusion_matrix

    tn, fp, fn, tp = confusion_matrix(np.asarray(is_anomaly_, bool), np.asarray(scores_) > threshold,
                                      labels=[False, True]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def rates(c: dict[str, int]) -> dict[str, float]:
    """Recall (true positive rate), false positive rate, precision and accuracy from confusion counts."""
    def ratio(a, b):
        return a / b if b else float("nan")

    return {"recall": ratio(c["tp"], c["tp"] + c["fn"]), "fpr": ratio(c["fp"], c["fp"] + c["tn"]),
            "precision": ratio(c["tp"], c["tp"] + c["fp"]), "accuracy": ratio(c["tp"] + c["tn"], sum(c.values()))}


def worst_mistakes(scores_, is_anomaly_, threshold: float, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the n worst false positives (highest-scored normals) and false negatives (lowest-scored anomalies)."""
    s, a = np.asarray(scores_), np.asarray(is_anomaly_, bool)
    fp = np.flatnonzero(~a & (s > threshold))
    fn = np.flatnonzero(a & (s <= threshold))
    return fp[np.argsort(-s[fp], kind="stable")][:n], fn[np.argsort(s[fn], kind="stable")][:n]


def pixel_errors(x, x_hat) -> np.ndarray:
    """Squared error of every value: where the model failed to reconstruct."""
    return (np.asarray(x, np.float32) - np.asarray(x_hat, np.float32)) ** 2


def letter(ch: str) -> np.ndarray:
    """A letter drawn with Pillow's default font, converted to a 28x28 digit the way MNIST's were."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(img).text((64, 64), ch, fill=255, font=ImageFont.load_default(size=96), anchor="mm",
                              stroke_width=2, stroke_fill=255)  # a pen-like stroke, as thick as MNIST ink
    return images.from_array(np.asarray(img), name=f"the letter {ch}")


def far_inputs(digit, letters: str = "AKX", seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs far from any digit (28x28 in [0,1]): noise, a blank, the digit inverted, printed letters."""
    rng = np.random.default_rng(seed)
    digit = np.asarray(digit, np.float32).reshape(28, 28)
    out = {"Gaussian noise": np.clip(0.5 + 0.3 * rng.standard_normal((28, 28)), 0, 1).astype(np.float32),
           "blank": np.zeros((28, 28), np.float32),
           "inverted digit": 1.0 - digit}
    return out | {f"letter {ch}": letter(ch) for ch in letters}


# Time series: per-step errors of a sequence autoencoder, smoothed, thresholded into spans.

def step_errors(model: Autoencoder, x) -> np.ndarray:
    """Squared reconstruction error at every time step (mean over features), shape (N, steps)."""
    x = np.asarray(x, np.float32)
    e = pixel_errors(x, analysis.reconstruct(model, x))
    return e.reshape(len(x), x.shape[1], -1).mean(2)


def smooth(e, window: int) -> np.ndarray:
    """Moving average over the last axis (window 1 leaves e as it is): one noisy step is not an event."""
    from scipy.ndimage import uniform_filter1d

    e = np.asarray(e, np.float64)
    return e if window <= 1 else uniform_filter1d(e, size=int(window), axis=-1, mode="nearest")


def mask_to_spans(mask) -> list[tuple[int, int]]:
    """Contiguous runs of True as (start, stop) pairs, stop exclusive."""
    d = np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def spans_to_mask(spans, steps: int) -> np.ndarray:
    """A boolean mask of length steps, True inside the spans."""
    mask = np.zeros(steps, bool)
    for s, t in spans:
        mask[s:t] = True
    return mask


def detect_spans(e, threshold: float, min_len: int = 1, merge_gap: int = 0) -> list[tuple[int, int]]:
    """Runs of steps with error above threshold; runs at most merge_gap steps apart join, shorter than min_len go."""
    merged: list[tuple[int, int]] = []
    for s, t in mask_to_spans(np.asarray(e) > threshold):
        if merged and s - merged[-1][1] <= merge_gap:
            merged[-1] = (merged[-1][0], t)
        else:
            merged.append((s, t))
    return [(s, t) for s, t in merged if t - s >= min_len]


def event_span(true_mask) -> tuple[int, int] | None:
    """One injected anomaly as one event: from its first to its last labelled step (None for a normal signal)."""
    idx = np.flatnonzero(true_mask)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else None


def pointwise_pr(pred_mask, true_mask) -> tuple[float, float]:
    """(precision, recall) over every time step of every signal."""
    pred, true = np.asarray(pred_mask, bool).ravel(), np.asarray(true_mask, bool).ravel()
    tp = np.sum(pred & true)
    return (tp / pred.sum() if pred.any() else float("nan")), (tp / true.sum() if true.any() else float("nan"))


def event_pr(pred_spans: list[list[tuple[int, int]]], true_masks) -> tuple[float, float]:
    """(precision, recall) per event: a detected span is right if it overlaps the signal's injected anomaly,
    an anomaly is found if any detected span overlaps it."""
    right = n_pred = found = n_true = 0
    for spans, mask in zip(pred_spans, true_masks):
        ev = event_span(mask)
        hits = [ev is not None and s < ev[1] and t > ev[0] for s, t in spans]
        right, n_pred = right + sum(hits), n_pred + len(spans)
        if ev is not None:
            found, n_true = found + any(hits), n_true + 1
    return (right / n_pred if n_pred else float("nan")), (found / n_true if n_true else float("nan"))


def detect_all(errors, threshold: float, window: int = 1, min_len: int = 1,
               merge_gap: int = 0) -> tuple[list[list[tuple[int, int]]], np.ndarray]:
    """Detected spans and their mask for every signal's per-step errors (N, steps)."""
    e = smooth(errors, window)
    spans = [detect_spans(row, threshold, min_len, merge_gap) for row in e]
    return spans, np.stack([spans_to_mask(s, e.shape[1]) for s in spans])


def span_report(errors, true_masks, types, type_names, threshold: float, window: int = 1, min_len: int = 1,
                merge_gap: int = 0) -> list[dict]:
    """Point-wise and per-event precision and recall, for all signals and for each anomaly type."""
    spans, pred = detect_all(errors, threshold, window, min_len, merge_gap)
    true_masks, types = np.asarray(true_masks, bool), np.asarray(types)
    rows = []
    for name, keep in [("all", np.ones(len(types), bool))] + [(n, types == k) for k, n in enumerate(type_names)]:
        if not keep.any():
            continue
        pp, pr = pointwise_pr(pred[keep], true_masks[keep])
        ep, er = event_pr([s for s, k in zip(spans, keep) if k], true_masks[keep])
        rows.append({"signals": name, "count": int(keep.sum()), "point precision": pp, "point recall": pr,
                     "event precision": ep, "event recall": er,
                     "signals flagged": float(np.mean([bool(s) for s, k in zip(spans, keep) if k]))})
    return rows


# The settings the page starts with: smoothing window, shortest span, merge gap (steps), and the threshold as the
# percentile of the normal training signals' worst smoothed error (95: 5 % of them would raise an alarm).
SPAN_DEFAULTS = {"window": 5, "min_len": 3, "merge_gap": 5, "percentile": 95}


def series_threshold(train_errors, window: int, percentile: float) -> float:
    """The threshold at which percentile % of normal signals stay below it at every step (after smoothing)."""
    return percentile_threshold(smooth(train_errors, window).max(1), percentile)
