"""The anomaly page: one-class training, threshold by value and by percentile, failure modes, time series."""
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import aeviz
from aeviz import analysis
from aeviz.data import ANOMALY_TYPES, load
from aeviz.uses import anomaly


def _page():
    from aeviz.ui.pages import anomaly

    anomaly.render()


def _app() -> AppTest:
    return AppTest.from_function(_page, default_timeout=120)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _settle(at: AppTest) -> AppTest:
    """Wait for the page's own first training (digit 0, started when the page opens) to end."""
    at.session_state["anomaly::job"].wait(120)
    return at.run()


def _train(at: AppTest, digits=(3,), kind="autoencoder", z=2) -> AppTest:
    _settle(at)
    at.multiselect(key="anomaly_normal").set_value(list(digits))
    at.radio(key="anomaly_kind").set_value(kind)
    at.select_slider(key="anomaly_z").set_value(z)
    at.number_input(key="anomaly_epochs").set_value(1)
    at.run()
    at.button(key="anomaly::start").click().run()
    at.session_state["anomaly::job"].wait(120)
    return at.run()


@pytest.fixture(scope="module")
def trained() -> AppTest:
    """The page after training a tiny one-class autoencoder (digit 3 normal, z=2, one epoch)."""
    return _train(_app().run())


def test_the_page_trains_its_default_set_up_when_it_opens():
    at = _app().run()
    job = at.session_state["anomaly::job"]
    assert job.tc.normal_classes == (0,) and job.tc.epochs == 20 and job.mc.latent_dim == 8
    assert not at.info  # no "nothing trained" note: a progress bar instead
    at = _settle(at)
    assert at.session_state["mine"][job.model_key][0].name.startswith("one-class 0")
    assert 0.9 < float(_metrics(at)["AUROC"]) <= 1  # digit 0 against the rest: measured 0.99


def _result(at: AppTest, kind: str = "mse") -> dict:
    """What the page scores, recomputed from the trained model itself."""
    job = at.session_state["anomaly::job"]
    model = at.session_state["mine"][job.model_key][1]
    data = load("mnist")
    x = data.x_test.numpy()
    x_train = data.x_train.numpy()[np.isin(data.y_train.numpy(), job.tc.normal_classes)]
    return {"x": x, "kind": kind, "is_anomaly": anomaly.is_anomaly(data.y_test.numpy(), job.tc.normal_classes),
            "scores": anomaly.scores(model, x, kind), "train_scores": anomaly.scores(model, x_train, kind)}


def test_training_on_one_digit_scores_every_test_image(trained):
    at = trained
    job = at.session_state["anomaly::job"]
    assert job.tc.normal_classes == (3,) and job.tc.epochs == 1
    assert at.session_state["mine"][job.model_key][0].name.startswith("one-class 3")
    assert at.button(key="anomaly::start").label == "Train on the 400 normal training images"
    r = _result(at)
    y = load("mnist").y_test.numpy()
    assert r["scores"].shape == (1000,) and (r["is_anomaly"] == (y != 3)).all() and r["train_scores"].shape == (400,)
    m = _metrics(at)
    assert float(m["AUROC"]) == pytest.approx(analysis.roc(r["scores"], y != 3)[2], abs=5e-4)
    assert 0.5 < float(m["AUROC"]) <= 1
    assert 0.8 < float(m["AUROC of PCA"]) <= 1
    assert "model" not in at.session_state  # select=False: the sidebar keeps its model


def test_percentile_threshold_sets_the_numbers_shown(trained):
    at = trained
    r = _result(at)
    for p in (95.0, 80.0):
        at.slider(key="anomaly_p").set_value(p).run()
        t = np.percentile(r["train_scores"], p)
        c = anomaly.confusion(r["scores"], r["is_anomaly"], t)
        m = _metrics(at)
        assert m["Threshold τ"] == f"{t:.4g}"
        assert m["Recall"] == f"{100 * c['tp'] / 900:.1f} %"
        assert m["False alarm rate"] == f"{100 * c['fp'] / 100:.1f} %"
    table = at.dataframe[0].value
    assert table["normal"].tolist().count("yes") == 1 and table.loc[3, "normal"] == "yes"


def test_moving_the_threshold_by_value(trained, slider_end):
    at = trained
    r = _result(at)
    at.radio(key="anomaly_mode").set_value("by value").run()
    slider = next(s for s in at.slider if s.key.startswith("anomaly_t::"))
    t = float(np.median(r["scores"]))
    slider.set_value(t).run()
    m = _metrics(at)
    t_shown = float(m["Threshold τ"])
    assert t_shown == pytest.approx(t, rel=1e-3)
    flagged = r["scores"] > next(s for s in at.slider if s.key.startswith("anomaly_t::")).value
    assert m["Recall"] == f"{100 * flagged[r['is_anomaly']].mean():.1f} %"
    assert m["False alarm rate"] == f"{100 * flagged[~r['is_anomaly']].mean():.1f} %"
    slider = next(s for s in at.slider if s.key.startswith("anomaly_t::"))
    slider.set_value(slider_end(slider)).run()  # the right end, as a browser sends it, is kept
    assert float(_metrics(at)["Threshold τ"]) == pytest.approx(slider.max, rel=1e-3)
    at.radio(key="anomaly_mode").set_value(at.radio(key="anomaly_mode").options[0]).run()


def test_failure_modes_tab_scores_far_inputs(trained):
    at = trained
    at.session_state["anomaly_tab"] = "Failure modes"
    at.run()
    assert not at.exception
    m = _metrics(at)
    assert m["Far-away inputs"] == "6"
    rows = at.dataframe[0].value
    assert rows["input"].tolist() == ["Gaussian noise", "blank", "inverted digit", "letter A", "letter K", "letter X"]
    model = at.session_state["mine"][at.session_state["anomaly::job"].model_key][1]
    probes = anomaly.far_inputs(_result(at)["x"][~_result(at)["is_anomaly"]][0], "AKX")
    np.testing.assert_allclose(rows["score"], anomaly.scores(model, np.stack(list(probes.values()))[:, None]), rtol=1e-5)
    passed = (rows["decision"] == "passed as normal").sum()
    assert m["Passed as normal"] == str(passed)
    at.text_input(key="anomaly_letters").set_value("Q").run()
    assert _metrics(at)["Far-away inputs"] == "4"
    radio = at.radio(key="anomaly_probe_model")
    assert radio.options[0] == "your one-class model (normal: 3)" and radio.options[1].endswith("(trained on all digits)")
    radio.set_value(radio.options[1]).run()
    name = radio.options[1].split(" ")[0]
    rows = at.dataframe[0].value
    model = aeviz.load(next(c.path for c in aeviz.pretrained() if c.name == name))
    general = {"train_scores": anomaly.scores(model, load("mnist").x_train[:1000].numpy())}
    np.testing.assert_allclose(rows["score"], anomaly.scores(model, np.stack(list(
        anomaly.far_inputs(load("mnist").x_test[0].numpy(), "Q").values()))[:, None]), rtol=1e-5)
    assert _metrics(at)["Threshold τ"] == f"{np.percentile(general['train_scores'], 95):.4g}"
    at.session_state["anomaly_tab"] = "Digits"
    at.run()


def test_vae_scores_by_negative_elbo():
    at = _train(_app().run(), digits=(1,), kind="VAE")
    mse_auc = float(_metrics(at)["AUROC"])
    at.radio(key="anomaly_score").set_value("nelbo").run()
    r = _result(at, "nelbo")
    assert r["kind"] == "nelbo" and r["scores"].min() > 0
    assert float(_metrics(at)["AUROC"]) == pytest.approx(analysis.roc(r["scores"], r["is_anomaly"])[2], abs=5e-4)
    assert float(_metrics(at)["AUROC"]) != mse_auc


def test_time_series_tab_with_the_pretrained_model(slider_end):
    from aeviz.ui.pages import anomaly as page

    at = _app()
    at.session_state["anomaly_tab"] = "Time series"
    at.run()
    assert not at.exception
    name = at.selectbox(key="anomaly_series_model").value
    assert aeviz.load(next(c.path for c in aeviz.pretrained() if c.name == name)).config.dataset == "signals"
    r = page._series_errors(name)  # cached per model: the numbers the page used
    data = load("signals")
    truth, y = data.extras["mask"].numpy(), data.y_test.numpy()
    peaks = anomaly.smooth(r["train_errors"], 5).max(1)

    def t_slider():
        return next(s for s in at.slider if s.key.startswith("anomaly_series_t::"))

    def expected(t):
        return anomaly.span_report(r["errors"], truth, y, ANOMALY_TYPES, t, 5, 3, 5)[0]

    assert t_slider().value == pytest.approx(np.percentile(peaks, 95), rel=0.01)
    row = expected(t_slider().value)
    m = _metrics(at)
    assert m["Event recall"] == f"{100 * row['event recall']:.1f} %"
    assert m["Point precision"] == f"{100 * row['point precision']:.1f} %"
    t_slider().set_value(t_slider().value * 2).run()
    row2 = expected(t_slider().value)
    assert _metrics(at)["Event recall"] == f"{100 * row2['event recall']:.1f} %"
    assert row2["event recall"] <= row["event recall"]
    t_slider().set_value(slider_end(t_slider())).run()
    assert t_slider().value == t_slider().max  # the right end, as a browser sends it, is kept
    at.selectbox(key="anomaly_type").set_value("level shift").run()
    signal = at.select_slider(key="anomaly_signal::level shift")
    assert len(signal.options) == (y == 2).sum() and all(y[int(o)] == 2 for o in signal.options)
    assert any(f"Signal #{signal.value} (level shift)" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert table["signals"].tolist() == ["all", *ANOMALY_TYPES]


def test_time_series_tab_trains_a_model_when_none_is_pretrained(monkeypatch, tmp_path):
    from aeviz import io
    from aeviz.ui import state

    monkeypatch.setattr(io, "PRETRAINED", tmp_path)
    state.forget_zoo()
    try:
        at = _app()
        at.session_state["anomaly_tab"] = "Time series"
        at.run()
        assert "No recurrent model of the signals yet" in at.info[0].value
        at.slider(key="anomaly_series_epochs").set_value(1).run()
        at.button(key="anomaly-signals::start").click().run()
        at.session_state["anomaly-signals::job"].wait(120)
        at.run()
        assert not at.exception
        picked = at.selectbox(key="anomaly_series_model").value
        assert at.session_state["mine"][picked][0].name == "signals rnn z8"
        assert at.session_state["anomaly-signals::job"].tc.epochs == 1
        assert _metrics(at)["Event recall"].endswith("%")
    finally:
        state.forget_zoo()
