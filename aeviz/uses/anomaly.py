"""Anomaly detection with autoencoders: one-class scores, thresholds, error maps, a PCA baseline, time-series spans.

The idea: train on normal samples only; whatever the model reconstructs badly (a high score) is flagged.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import analysis, images
from ..config import ModelConfig, TrainConfig
from ..data import Dataset
from ..models import Autoencoder

SCORES = {"mse": "reconstruction error (mean squared error per pixel)", "nelbo": "negative ELBO (nats)"}


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
SPAN_SCORES = ("event precision", "event recall", "point precision", "point recall", "signals flagged")


def series_threshold(train_errors, window: int, percentile: float) -> float:
    """The threshold at which percentile % of normal signals stay below it at every step (after smoothing)."""
    return percentile_threshold(smooth(train_errors, window).max(1), percentile)


def series_bench(model: Autoencoder, normal_train: int = 500) -> dict:
    """Span detection on the 1,000 test signals at the page's default settings: precision and recall per type."""
    from ..data import ANOMALY_TYPES, load

    data = load("signals")
    s = SPAN_DEFAULTS
    x = data.x_test.numpy()
    errors, train_errors = step_errors(model, x), step_errors(model, data.x_train[:normal_train].numpy())
    t = series_threshold(train_errors, s["window"], s["percentile"])
    rows = span_report(errors, data.extras["mask"].numpy(), data.y_test.numpy(), ANOMALY_TYPES, t, s["window"],
                       s["min_len"], s["merge_gap"])
    print(f"{len(x)} test signals; threshold {t:.4f} (the {s['percentile']}th percentile of {normal_train} normal "
          f"training signals' worst smoothed error), window {s['window']}, shortest span {s['min_len']}, merge gap "
          f"{s['merge_gap']}.")
    print(f"  {'signals':<16}{'count':>6}{'event P':>9}{'event R':>9}{'point P':>9}{'point R':>9}{'flagged':>9}")
    out = {"threshold": round(t, 5), **s}
    for r in rows:
        print(f"  {r['signals']:<16}{r['count']:>6}" + "".join(f"{r[k]:>9.3f}" for k in SPAN_SCORES))
        tag = r["signals"].replace(" ", "_")
        out |= {f"{tag}_{k.replace(' ', '_')}": (None if np.isnan(r[k]) else round(float(r[k]), 4))
                for k in SPAN_SCORES}
    return out


# The benchmark: ten one-vs-rest tasks on the built-in MNIST.

# Chosen by a small sweep on the hardest digits (2, 3, 4, 5, 8): a convolutional VAE beat MLP and convolutional
# plain autoencoders, denoising, and scoring by negative ELBO; its reconstruction error is the score.
BENCH_MODEL = dict(arch="conv", objective="variational", latent_dim=16, hidden=(16, 32))
PCA_SWEEP = (4, 8, 16, 32, 64)


def one_vs_rest(data: Dataset, mc: ModelConfig, tc: TrainConfig, kind: str = "mse") -> dict:
    """Per digit k: train on digit k only, score every test image; AUROC of the model and of PCA baselines."""
    from ..train import train, training_set

    y = data.y_test.numpy()
    out: dict = {"auroc": [], "pca": {k: [] for k in PCA_SWEEP}, "train_seconds": []}
    for digit in range(10):
        tcd = TrainConfig(**{**tc.__dict__, "normal_classes": (digit,)})
        model, hist = train(mc, tcd, data)
        anomalous = is_anomaly(y, [digit])
        out["auroc"].append(analysis.roc(scores(model, data.x_test, kind), anomalous)[2])
        for k in PCA_SWEEP:
            out["pca"][k].append(analysis.roc(pca_scores(training_set(data, tcd), data.x_test, k), anomalous)[2])
        out["train_seconds"].append(hist.seconds)
        print(f"  digit {digit}: model AUROC {out['auroc'][-1]:.4f}   PCA ({mc.latent_dim} components) AUROC "
              f"{out['pca'][mc.latent_dim][-1]:.4f}   ({hist.seconds:.1f} s training)", flush=True)
    return out


def bench(epochs: int = 80, seed: int = 0) -> dict:
    """Run the ten one-vs-rest MNIST tasks and return the figures `aeviz bench anomaly` prints."""
    from .. import config_for
    from ..data import load

    start = time.perf_counter()
    data = load("mnist")
    mc = config_for("mnist", **BENCH_MODEL)
    tc = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, eval_every=0)
    k = mc.latent_dim
    print(f"One-vs-rest on the built-in mnist: train on one digit's {int((data.y_train == 0).sum())} training images, "
          f"score all {len(data.y_test)} test images by reconstruction error. Model: {mc.label} {mc.hidden}, "
          f"{epochs} epochs, batch {tc.batch_size}, lr {tc.lr}; baseline: PCA with {k} components (as many as "
          f"the code) fit on the same images.", flush=True)
    r = one_vs_rest(data, mc, tc)
    pca_means = {c: float(np.mean(v)) for c, v in r["pca"].items()}
    best = max(pca_means, key=pca_means.get)
    result = {"auroc": [round(v, 4) for v in r["auroc"]], "mean_auroc": round(float(np.mean(r["auroc"])), 4),
              "pca_auroc": [round(v, 4) for v in r["pca"][k]], "pca_mean_auroc": round(pca_means[k], 4),
              "pca_components": k, "pca_best_components": best, "pca_best_mean_auroc": round(pca_means[best], 4),
              "model": f"{mc.label} {list(mc.hidden)}", "epochs": epochs,
              "train_seconds": round(float(np.sum(r["train_seconds"])), 1),
              "seconds": round(time.perf_counter() - start, 1)}
    print(f"  mean: model {result['mean_auroc']:.4f}   PCA ({k} components) {result['pca_mean_auroc']:.4f}   "
          f"PCA at its best k on these test sets ({best}) {result['pca_best_mean_auroc']:.4f}   "
          f"(total {result['seconds']:.0f} s)")
    return result
