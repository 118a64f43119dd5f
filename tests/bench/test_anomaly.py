"""`aeviz bench anomaly`'s parts (one-vs-rest digits, the tables) at sizes that run in seconds."""
import numpy as np
import pytest

import aeviz
from aeviz.bench import anomaly as bench_anomaly
from aeviz.data import load


def test_one_vs_rest_runs_ten_tasks_with_pca_baselines(capsys):
    data = load("digits")
    mc = aeviz.config_for("digits", hidden=(16, 8), latent_dim=4)
    r = bench_anomaly.one_vs_rest(data, mc, aeviz.TrainConfig(epochs=1, batch_size=64, eval_every=0))
    assert len(r["auroc"]) == len(r["train_seconds"]) == 10 and set(r["pca"]) == set(bench_anomaly.PCA_SWEEP)
    assert all(0 <= a <= 1 for a in r["auroc"]) and all(len(v) == 10 for v in r["pca"].values())
    assert np.mean(r["pca"][16]) > 0.9  # the linear baseline is strong on digits
    assert capsys.readouterr().out.count("digit ") == 10


def test_breast_cancer_figures_compare_the_autoencoder_with_pca_and_an_isolation_forest():
    r = bench_anomaly.breast_cancer(seeds=1, epochs=2)
    assert (r["n_train_benign"], r["n_test_benign"], r["n_test_malignant"]) == (257, 100, 212)
    assert r["pca_components"] == 4 and r["pca_auroc"] == r["pca_auroc_by_k"][4] == pytest.approx(0.94, abs=0.005)
    assert len(r["ae_auroc"]) == 1 and 0.5 < r["ae_auroc"][0] <= 1
    assert r["iforest_auroc"][0] == pytest.approx(0.965, abs=0.005)  # random_state 0: the same forest every run


def test_wine_figures_are_knn_accuracies_of_the_latent_map():
    r = bench_anomaly.wine(seeds=1, epochs=2)
    assert r["pca2_knn_acc"] == pytest.approx(0.96) and r["all_13_features_knn_acc"] == pytest.approx(0.96)
    assert 0 < r["ae_knn_acc"][0] <= 1


def test_the_anomaly_bench_reports_the_tables_under_tabular(monkeypatch):
    monkeypatch.setattr(bench_anomaly, "digits", lambda epochs, seed: {"mean_auroc": 0.5, "epochs": epochs})
    monkeypatch.setattr(bench_anomaly, "tabular", lambda seeds: {"seeds": seeds})
    assert bench_anomaly.run("all", 3, 0, 2) == {"mean_auroc": 0.5, "epochs": 3, "tabular": {"seeds": 2}}
    assert bench_anomaly.run("tabular", seeds=1) == {"tabular": {"seeds": 1}}
    assert bench_anomaly.run("digits", epochs=4) == {"mean_auroc": 0.5, "epochs": 4}
    with pytest.raises(SystemExit, match="Unknown part 'tables'; choose all or one of digits, tabular."):
        bench_anomaly.run("tables")


def test_the_anomaly_page_trains_the_benchmarked_channels():
    from aeviz.uses import anomaly

    assert bench_anomaly.BENCH_MODEL["hidden"] == anomaly.CONV_HIDDEN
