"""Dimensionality reduction: an autoencoder's 2-D codes against PCA, t-SNE and UMAP maps, and how to score a map.
Numpy in, numpy out."""
from __future__ import annotations

import numpy as np

from .. import analysis
from . import K_NEIGHBOURS


def pca_map(x_train, x) -> np.ndarray:
    """2-D PCA coordinates of x, with the components fit on the training set."""
    flat = np.asarray(x).reshape(len(x), -1)
    return analysis.fit_pca(x_train, 2).transform(flat).astype(np.float32)


def _halves(n: int) -> tuple[slice, slice]:
    return slice(0, n, 2), slice(1, n, 2)  # t-SNE and UMAP maps exist for the test points only: split them


def neighbour_score(xy, y, continuous: bool) -> float:
    """5-NN accuracy on the map (R² of a continuous label such as the roll position), fit on one half, scored on
    the other."""
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
