import math

import numpy as np
import pytest

import aeviz
from aeviz import analysis
from aeviz.data import load
from aeviz.uses import anomaly


def test_auroc_is_one_for_perfect_separation_and_zero_reversed():
    y = np.array([0, 0, 0, 1, 1])
    assert analysis.roc([0.1, 0.2, 0.3, 0.8, 0.9], y)[2] == 1.0
    assert analysis.roc([0.9, 0.8, 0.7, 0.2, 0.1], y)[2] == 0.0


def test_auroc_known_small_example():
    # of the 4 (anomaly, normal) pairs, 3 are ranked right: 0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4; 0.35 < 0.4 is not
    fpr, tpr, auc = analysis.roc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert auc == pytest.approx(0.75)
    assert fpr[-1] == tpr[-1] == 1.0


def test_percentile_threshold_and_rank():
    normal = np.arange(1, 101, dtype=float)  # 1..100
    assert anomaly.percentile_threshold(normal, 50) == pytest.approx(50.5)
    assert anomaly.percentile_threshold(normal, 95) == pytest.approx(95.05)
    assert anomaly.percentile_threshold(normal, 100) == 100.0
    assert anomaly.percentile_of(95.5, normal) == pytest.approx(95.0)
    assert anomaly.percentile_of(0.0, normal) == 0.0


def test_confusion_counts_and_rates():
    s = np.array([0.1, 0.2, 0.6, 0.7, 0.3, 0.8, 0.9])
    a = np.array([0, 0, 0, 0, 1, 1, 1], bool)
    c = anomaly.confusion(s, a, 0.5)
    assert c == {"tn": 2, "fp": 2, "fn": 1, "tp": 2}
    r = anomaly.rates(c)
    assert r["recall"] == pytest.approx(2 / 3) and r["fpr"] == pytest.approx(0.5)
    assert r["precision"] == pytest.approx(0.5) and r["accuracy"] == pytest.approx(4 / 7)
    assert anomaly.confusion(s, a, 0.7)["fp"] == 0  # flagged means strictly above the threshold
    assert math.isnan(anomaly.rates({"tn": 3, "fp": 0, "fn": 0, "tp": 0})["recall"])


def test_worst_mistakes_are_ordered_by_how_wrong_they_are():
    s = np.array([0.9, 0.6, 0.1, 0.2, 0.05, 0.8])
    a = np.array([0, 0, 0, 1, 1, 1], bool)
    fp, fn = anomaly.worst_mistakes(s, a, 0.5)
    assert fp.tolist() == [0, 1] and fn.tolist() == [4, 3]
    assert anomaly.worst_mistakes(s, a, 0.5, n=1)[0].tolist() == [0]


def test_is_anomaly_and_one_class_config():
    assert anomaly.is_anomaly([0, 1, 2, 3], [1, 3]).tolist() == [True, False, True, False]
    tc = anomaly.one_class([7], epochs=3)
    assert tc.normal_classes == (7,) and tc.epochs == 3


def test_pca_baseline_separates_a_subspace_from_the_rest():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((2, 20))
    normal = rng.standard_normal((200, 2)) @ basis
    test = np.concatenate([rng.standard_normal((50, 2)) @ basis, rng.standard_normal((50, 20))])
    s = anomaly.pca_scores(normal, test, 2)
    assert s[:50].max() < 1e-10 < s[50:].min()


@pytest.fixture(scope="module")
def one_class_models():
    data = load("digits")
    tc = anomaly.one_class([0], epochs=15, batch_size=32)
    return {obj: aeviz.train(aeviz.config_for("digits", objective=obj, hidden=(32, 16), latent_dim=4), tc, data)[0]
            for obj in ("vanilla", "variational")}, data


def test_scores_rank_the_normal_class_lower(one_class_models):
    models, data = one_class_models
    a = anomaly.is_anomaly(data.y_test.numpy(), [0])
    for obj, model in models.items():
        for kind in ("mse", "nelbo"):
            s = anomaly.scores(model, data.x_test, kind)
            assert s.shape == (360,) and np.isfinite(s).all()
            assert analysis.roc(s, a)[2] > 0.9, (obj, kind)
    mse = anomaly.scores(models["vanilla"], data.x_test[:5])
    x_hat = analysis.reconstruct(models["vanilla"], data.x_test[:5])
    np.testing.assert_allclose(mse, anomaly.pixel_errors(data.x_test[:5], x_hat).reshape(5, -1).mean(1), rtol=1e-5)


def test_far_inputs_are_mnist_like_images():
    d = load("mnist")
    far = anomaly.far_inputs(d.x_test[0].numpy(), letters="AB")
    assert list(far) == ["Gaussian noise", "blank", "inverted digit", "letter A", "letter B"]
    for name, img in far.items():
        assert img.shape == (28, 28) and img.min() >= 0 and img.max() <= 1, name
    assert far["blank"].max() == 0
    np.testing.assert_allclose(far["inverted digit"] + d.x_test[0, 0].numpy(), 1.0)
    a = far["letter A"]
    assert a.max() == pytest.approx(1.0) and a[:2].max() == a[-2:].max() == 0  # ink, centred
    assert 0.05 < (a > 0.5).mean() < 0.3


def test_mask_and_spans_round_trip():
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], bool)
    spans = anomaly.mask_to_spans(mask)
    assert spans == [(1, 3), (5, 6), (7, 10)]
    assert (anomaly.spans_to_mask(spans, 10) == mask).all()
    assert anomaly.mask_to_spans(np.zeros(5, bool)) == []


def test_detect_spans_merges_gaps_and_drops_short_runs():
    e = np.array([0, 5, 5, 0, 5, 0, 0, 0, 5, 0], float)
    assert anomaly.detect_spans(e, 1.0) == [(1, 3), (4, 5), (8, 9)]
    assert anomaly.detect_spans(e, 1.0, merge_gap=1) == [(1, 5), (8, 9)]
    assert anomaly.detect_spans(e, 1.0, min_len=2) == [(1, 3)]
    assert anomaly.detect_spans(e, 1.0, min_len=2, merge_gap=3) == [(1, 9)]


def test_smooth_keeps_length_and_spreads_a_spike():
    e = np.zeros(11)
    e[5] = 9.0
    s = anomaly.smooth(e, 3)
    assert s.shape == (11,) and s[4] == s[5] == s[6] == pytest.approx(3.0) and s[3] == 0
    assert (anomaly.smooth(e, 1) == e).all()


def test_planted_anomaly_is_found_with_perfect_precision_and_recall():
    rng = np.random.default_rng(0)
    errors = np.abs(rng.normal(0, 0.01, (3, 100)))
    truth = np.zeros((3, 100), bool)
    truth[1, 40:55] = True  # one planted anomaly in signal 1; signals 0 and 2 are normal
    errors[1, 40:55] += 1.0
    spans, pred = anomaly.detect_all(errors, threshold=0.5)
    assert spans == [[], [(40, 55)], []]
    assert anomaly.pointwise_pr(pred, truth) == (1.0, 1.0)
    assert anomaly.event_pr(spans, truth) == (1.0, 1.0)


def test_event_and_pointwise_scores_on_partial_detections():
    truth = np.zeros((2, 20), bool)
    truth[0, 5:10] = True
    spans = [[(8, 12), (15, 17)], [(0, 2)]]  # one overlap, two false alarms, signal 1 is normal
    pred = np.stack([anomaly.spans_to_mask(s, 20) for s in spans])
    p, r = anomaly.pointwise_pr(pred, truth)
    assert p == pytest.approx(2 / 8) and r == pytest.approx(2 / 5)
    assert anomaly.event_pr(spans, truth) == (pytest.approx(1 / 3), 1.0)
    assert anomaly.event_span(np.array([0, 0, 1, 0, 1, 0], bool)) == (2, 5)  # spikes: one event, first to last


def test_span_report_has_a_row_per_type():
    truth = np.zeros((3, 20), bool)
    truth[1, 5:10] = True
    errors = truth.astype(float)
    rows = anomaly.span_report(errors, truth, [0, 2, 0], ["normal", "spike", "level shift"], threshold=0.5)
    assert [r["signals"] for r in rows] == ["all", "normal", "level shift"]
    assert rows[0]["event recall"] == 1.0 and rows[0]["point precision"] == 1.0
    assert rows[1]["signals flagged"] == 0.0 and rows[2]["signals flagged"] == 1.0


def test_step_errors_of_a_sequence_model():
    data = load("signals")
    mc = aeviz.config_for("signals", arch="rnn", hidden=(8,), latent_dim=2)
    model, _ = aeviz.train(mc, aeviz.TrainConfig(epochs=1, batch_size=100, max_train=100, eval_every=0), data)
    e = anomaly.step_errors(model, data.x_test[:4])
    assert e.shape == (4, 128) and (e >= 0).all()
    np.testing.assert_allclose(e.mean(1), anomaly.scores(model, data.x_test[:4]), rtol=1e-5)


def test_plot_builders_for_the_page():
    from aeviz import plots

    rgb = plots.heat_rgb(np.array([[0.0, 0.5, 2.0]]), vmax=1.0)
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].sum() < 20 and rgb[0, 2].sum() > 600  # dark at 0, bright at (and above) vmax
    fig = plots.confusion_figure({"tn": 5, "fp": 1, "fn": 2, "tp": 7})
    assert np.array(fig.data[0].z).tolist() == [[5, 1], [2, 7]] and "false negatives<br>2" in fig.data[0].text[1]
    truth = np.zeros(20, bool)
    truth[3] = True
    fig = plots.signal_figure(np.zeros(20), np.zeros(20), np.ones(20), np.ones(20), 0.5, [(2, 6), (10, 12)], truth)
    assert [s.type for s in fig.layout.shapes] == ["line"] + ["rect"] * 4  # threshold; 2 spans shaded in both rows
    assert list(next(t for t in fig.data if t.name == "injected anomaly").x) == [3]


def test_iforest_scores_rank_outliers_above_the_normal_cloud():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(300, 4))
    x = np.concatenate([rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 6.0])
    s = anomaly.iforest_scores(normal, x, seed=0)
    assert s.shape == (100,) and s[50:].min() > s[:50].max()
    np.testing.assert_array_equal(s, anomaly.iforest_scores(normal, x, seed=0))


def test_detector_aurocs_score_the_same_samples_three_ways():
    data = load("breast-cancer")
    x_tr, x_te, anomalous = data.x_train.numpy(), data.x_test.numpy(), data.y_test.numpy() > 0
    model, _ = aeviz.train(aeviz.config_for("breast-cancer", latent_dim=4, hidden=(16,)),
                           aeviz.TrainConfig(epochs=2, eval_every=0), data)
    r = anomaly.detector_aurocs(model, x_tr, x_te, anomalous, pca_ks=(2, 4), seed=0)
    assert set(r) == {"autoencoder", "isolation_forest", "pca"} and set(r["pca"]) == {2, 4}
    assert r["autoencoder"] == pytest.approx(analysis.roc(anomaly.scores(model, x_te), anomalous)[2])
    assert r["pca"][4] == pytest.approx(0.94, abs=0.005)  # measured: PCA with 4 components on this split
    assert r["isolation_forest"] == pytest.approx(0.965, abs=0.005)  # random_state 0: the same forest every run
