"""The tabular part of the anomaly benchmark, at a size that runs in a second."""
import pytest

from aeviz.uses import tabular as uses_tabular


def test_breast_cancer_figures_compare_the_autoencoder_with_pca_and_an_isolation_forest():
    r = uses_tabular.breast_cancer(seeds=1, epochs=2)
    assert (r["n_train_benign"], r["n_test_benign"], r["n_test_malignant"]) == (257, 100, 212)
    assert r["pca_components"] == 4 and r["pca_auroc"] == r["pca_auroc_by_k"][4] == pytest.approx(0.94, abs=0.005)
    assert len(r["ae_auroc"]) == 1 and 0.5 < r["ae_auroc"][0] <= 1
    assert r["iforest_auroc"][0] == pytest.approx(0.965, abs=0.005)  # random_state 0: the same forest every run


def test_wine_figures_are_knn_accuracies_of_the_latent_map():
    r = uses_tabular.wine(seeds=1, epochs=2)
    assert r["pca2_knn_acc"] == pytest.approx(0.96) and r["all_13_features_knn_acc"] == pytest.approx(0.96)
    assert 0 < r["ae_knn_acc"][0] <= 1
