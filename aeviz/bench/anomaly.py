"""`aeviz bench anomaly` (ten one-vs-rest MNIST tasks, and the tables: breast-cancer and wine) and `aeviz bench
signals` (spans in the test signals). Each part prints its figures and returns them as JSON-able values."""
from __future__ import annotations

import time

import numpy as np

from .. import analysis, config_for
from ..config import ModelConfig, TrainConfig
from ..data import ANOMALY_TYPES, Dataset, load
from ..models import Autoencoder
from ..train import train, training_set
from ..uses import anomaly
from ..uses.anomaly import SPAN_DEFAULTS, TABULAR_MODEL, TABULAR_TRAIN

# Chosen by a small sweep on the hardest digits (2, 3, 4, 5, 8): a convolutional VAE beat MLP and convolutional
# plain autoencoders, denoising, and scoring by negative ELBO; its reconstruction error is the score.
BENCH_MODEL = dict(arch="conv", objective="variational", latent_dim=16, hidden=anomaly.CONV_HIDDEN)
PCA_SWEEP = (4, 8, 16, 32, 64)
SPAN_SCORES = ("event precision", "event recall", "point precision", "point recall", "signals flagged")

# Fixed before any test figure was seen: a small MLP for 30 inputs, a 4-d code, many short epochs on 257 rows. An
# exploratory run with hidden (16,) and 300 epochs scored higher (0.937, 3 seeds); it was not adopted, so the
# figure stays untuned on the test set.
TABULAR_PCA_SWEEP = (1, 2, 4, 8, 16)
WINE_MODEL = {"latent_dim": 2, "hidden": (32, 16)}
WINE_EPOCHS = 300
PARTS = ("digits", "tabular")


# Ten one-vs-rest tasks on the built-in MNIST.

def one_vs_rest(data: Dataset, mc: ModelConfig, tc: TrainConfig, kind: str = "mse") -> dict:
    """Per digit k: train on digit k only, score every test image; AUROC of the model and of PCA baselines."""
    y = data.y_test.numpy()
    out: dict = {"auroc": [], "pca": {k: [] for k in PCA_SWEEP}, "train_seconds": []}
    for digit in range(10):
        tcd = TrainConfig(**{**tc.__dict__, "normal_classes": (digit,)})
        model, hist = train(mc, tcd, data)
        anomalous = anomaly.is_anomaly(y, [digit])
        out["auroc"].append(analysis.roc(anomaly.scores(model, data.x_test, kind), anomalous)[2])
        for k in PCA_SWEEP:
            out["pca"][k].append(analysis.roc(anomaly.pca_scores(training_set(data, tcd), data.x_test, k), anomalous)[2])
        out["train_seconds"].append(hist.seconds)
        print(f"  digit {digit}: model AUROC {out['auroc'][-1]:.4f}   PCA ({mc.latent_dim} components) AUROC "
              f"{out['pca'][mc.latent_dim][-1]:.4f}   ({hist.seconds:.1f} s training)", flush=True)
    return out


def digits(epochs: int = 80, seed: int = 0) -> dict:
    """Run the ten one-vs-rest MNIST tasks and return their figures."""
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


# Tables: one-class detection on breast-cancer, the latent map of wine. Fixed split (data.SPLIT_SEED), fixed seeds.

def _mean_sd(values) -> tuple[float, float]:
    return round(float(np.mean(values)), 4), round(float(np.std(values)), 4)


def breast_cancer(seeds: int = 5, epochs: int = TABULAR_TRAIN["epochs"]) -> dict:
    """AUROC (malignant = anomaly) of an autoencoder, of PCA at the same code size and of an IsolationForest."""
    d = load("breast-cancer")
    x_tr, x_te, anomalous = d.x_train.numpy(), d.x_test.numpy(), d.y_test.numpy() > 0
    mc = config_for("breast-cancer", **TABULAR_MODEL)
    ae, forest, seconds, pca = [], [], [], {}
    for seed in range(seeds):
        model, hist = train(mc, TrainConfig(**{**TABULAR_TRAIN, "epochs": epochs}, seed=seed, eval_every=0), d)
        r = anomaly.detector_aurocs(model, x_tr, x_te, anomalous, TABULAR_PCA_SWEEP, seed)
        ae.append(r["autoencoder"])
        forest.append(r["isolation_forest"])
        pca = {k: round(v, 4) for k, v in r["pca"].items()}  # the same every seed: PCA draws nothing
        seconds.append(hist.seconds)
    k = mc.latent_dim
    return {"n_train_benign": len(x_tr), "n_test_benign": int((~anomalous).sum()),
            "n_test_malignant": int(anomalous.sum()),
            "model": f"{mc.label} {list(mc.hidden)}, {epochs} epochs, batch {TABULAR_TRAIN['batch_size']}, "
                     f"lr {TABULAR_TRAIN['lr']}",
            "ae_auroc": [round(v, 4) for v in ae], "ae_auroc_mean_sd": _mean_sd(ae),
            "pca_components": k, "pca_auroc": pca[k], "pca_auroc_by_k": pca,
            "iforest_auroc": [round(v, 4) for v in forest], "iforest_auroc_mean_sd": _mean_sd(forest),
            "ae_train_seconds_mean": round(float(np.mean(seconds)), 2)}


def wine(seeds: int = 5, epochs: int = WINE_EPOCHS) -> dict:
    """5-NN accuracy on the 2-d codes of the test wines (a latent map that separates cultivars scores high)."""
    d = load("wine")
    mc = config_for("wine", **WINE_MODEL)
    acc = []
    for seed in range(seeds):
        model, _ = train(mc, TrainConfig(epochs=epochs, batch_size=16, lr=1e-3, seed=seed, eval_every=0), d)
        acc.append(analysis.knn_accuracy(analysis.embed(model, d.x_train), d.y_train.numpy(),
                                         analysis.embed(model, d.x_test), d.y_test.numpy()))
    pca = analysis.fit_pca(d.x_train.numpy(), 2)
    pca_acc = analysis.knn_accuracy(pca.transform(d.x_train.numpy()), d.y_train.numpy(),
                                    pca.transform(d.x_test.numpy()), d.y_test.numpy())
    raw_acc = analysis.knn_accuracy(d.x_train.numpy(), d.y_train.numpy(), d.x_test.numpy(), d.y_test.numpy())
    return {"model": f"{mc.label} {list(mc.hidden)}, {epochs} epochs", "ae_knn_acc": [round(v, 4) for v in acc],
            "ae_knn_acc_mean_sd": _mean_sd(acc), "pca2_knn_acc": round(pca_acc, 4),
            "all_13_features_knn_acc": round(raw_acc, 4)}


def tabular(seeds: int = 5) -> dict:
    """Both tables' figures, and the seconds they took."""
    start = time.perf_counter()
    out = {"breast_cancer": breast_cancer(seeds), "wine": wine(seeds)}
    out["seconds"] = round(time.perf_counter() - start, 1)
    bc, w = out["breast_cancer"], out["wine"]
    print(f"breast-cancer ({bc['n_train_benign']} benign to train on; {bc['n_test_benign']} benign and "
          f"{bc['n_test_malignant']} malignant to score), AUROC over {seeds} seeds: autoencoder "
          f"{bc['ae_auroc_mean_sd'][0]:.4f} ± {bc['ae_auroc_mean_sd'][1]:.4f}   PCA ({bc['pca_components']} "
          f"components) {bc['pca_auroc']:.4f}   IsolationForest {bc['iforest_auroc_mean_sd'][0]:.4f} ± "
          f"{bc['iforest_auroc_mean_sd'][1]:.4f}")
    print(f"wine, 5-NN accuracy of the test wines' 2-d codes over {seeds} seeds: autoencoder "
          f"{w['ae_knn_acc_mean_sd'][0]:.4f} ± {w['ae_knn_acc_mean_sd'][1]:.4f}   PCA {w['pca2_knn_acc']:.4f}   "
          f"all 13 measurements {w['all_13_features_knn_acc']:.4f}   (total {out['seconds']:.0f} s)")
    return out


def run(part: str = "all", epochs: int = 80, seed: int = 0, seeds: int = 5) -> dict:
    """The digits' figures at the top level (as before the tables joined) and the tables' under "tabular"."""
    if part not in ("all", *PARTS):
        raise SystemExit(f"Unknown part '{part}'; choose all or one of {', '.join(PARTS)}.")
    out = digits(epochs, seed) if part in ("all", "digits") else {}
    if part in ("all", "tabular"):
        out["tabular"] = tabular(seeds)
    return out


# Time series: spans in the 1,000 test signals.

def series(model: Autoencoder, normal_train: int = 500) -> dict:
    """Span detection on the 1,000 test signals at the page's default settings: precision and recall per type."""
    data = load("signals")
    s = SPAN_DEFAULTS
    x = data.x_test.numpy()
    errors, train_errors = anomaly.step_errors(model, x), anomaly.step_errors(model, data.x_train[:normal_train].numpy())
    t = anomaly.series_threshold(train_errors, s["window"], s["percentile"])
    rows = anomaly.span_report(errors, data.extras["mask"].numpy(), data.y_test.numpy(), ANOMALY_TYPES, t,
                               s["window"], s["min_len"], s["merge_gap"])
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
