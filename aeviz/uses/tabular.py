"""Autoencoders on real tables: one-class anomaly detection on `breast-cancer` (train on benign tumours, score
every test tumour by reconstruction error) against PCA's reconstruction error and scikit-learn's IsolationForest,
and the latent map of `wine`. Fixed split (data.SPLIT_SEED) and fixed seeds. The tabular part of the anomaly
benchmark: `python -m aeviz.uses.tabular` prints its figures as one JSON object.
"""
from __future__ import annotations

import json
import time

import numpy as np

from ..config import TrainConfig

# Fixed before any test figure was seen: a small MLP for 30 inputs, a 4-d code, many short epochs on 257 rows. An
# exploratory run with hidden (16,) and 300 epochs scored higher (0.937, 3 seeds); it was not adopted, so the
# figure stays untuned on the test set.
TABULAR_MODEL = {"latent_dim": 4, "hidden": (64, 32)}
TABULAR_TRAIN = {"epochs": 200, "batch_size": 32, "lr": 1e-3}
PCA_SWEEP = (1, 2, 4, 8, 16)
WINE_MODEL = {"latent_dim": 2, "hidden": (32, 16)}
WINE_EPOCHS = 300


def _mean_sd(values) -> tuple[float, float]:
    return round(float(np.mean(values)), 4), round(float(np.std(values)), 4)


def breast_cancer(seeds: int = 5, epochs: int = TABULAR_TRAIN["epochs"]) -> dict:
    """AUROC (malignant = anomaly) of an autoencoder, of PCA at the same code size and of an IsolationForest."""
    from sklearn.ensemble import IsolationForest

    from .. import analysis, config_for
    from ..data import load
    from ..train import train
    from .anomaly import pca_scores, scores

    d = load("breast-cancer")
    x_tr, x_te, anomalous = d.x_train.numpy(), d.x_test.numpy(), d.y_test.numpy() > 0
    mc = config_for("breast-cancer", **TABULAR_MODEL)
    ae, forest, seconds = [], [], []
    for seed in range(seeds):
        model, hist = train(mc, TrainConfig(**{**TABULAR_TRAIN, "epochs": epochs}, seed=seed, eval_every=0), d)
        ae.append(analysis.roc(scores(model, x_te), anomalous)[2])
        seconds.append(hist.seconds)
        iso = IsolationForest(random_state=seed).fit(x_tr)
        forest.append(analysis.roc(-iso.score_samples(x_te), anomalous)[2])  # lower score_samples: more abnormal
    pca = {k: round(analysis.roc(pca_scores(x_tr, x_te, k), anomalous)[2], 4) for k in PCA_SWEEP}
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
    from .. import analysis, config_for
    from ..data import load
    from ..train import train

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


def tabular_bench(seeds: int = 5) -> dict:
    """Both tables' figures, and the seconds it took."""
    start = time.perf_counter()
    out = {"breast_cancer": breast_cancer(seeds), "wine": wine(seeds)}
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


if __name__ == "__main__":
    print(json.dumps(tabular_bench()))
