"""Feature extraction: how well a classifier reads the class off an autoencoder's codes, PCA's or the raw values.
Numpy in, numpy out."""
from __future__ import annotations

import numpy as np

from .. import analysis
from . import K_NEIGHBOURS


def pca_features(x_train, x_test, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k PCA coefficients of the training and test samples (PCA fit on the training set)."""
    pca = analysis.fit_pca(x_train, k)
    return tuple(pca.transform(np.asarray(x).reshape(len(x), -1)) for x in (x_train, x_test))


def feature_scores(train_codes, y_train, test_codes, y_test) -> dict[str, float]:
    """Test accuracy of a linear probe and of 5-NN trained on the features."""
    return {"linear probe": analysis.linear_probe_accuracy(train_codes, y_train, test_codes, y_test),
            "5-NN": analysis.knn_accuracy(train_codes, y_train, test_codes, y_test, k=K_NEIGHBOURS)}
