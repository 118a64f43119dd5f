import json
import math
import re

import pytest
import torch

import aeviz
from aeviz import losses
from aeviz.config import ConfigError, TrainConfig
from aeviz.data import load
from aeviz.train import History, diverged, evaluate, readable, training_set


def tiny(objective: str = "vanilla", **kw):
    return aeviz.config_for("digits", objective=objective, hidden=(16, 8), **kw)


FAST = TrainConfig(epochs=2, batch_size=256)  # 6 steps per epoch on digits


def test_train_returns_an_eval_model_and_a_full_history():
    model, hist = aeviz.train(tiny("variational"), FAST)
    assert not model.training and hist.status == "finished"
    assert hist.message.startswith("Trained 2 epochs in ")
    assert hist.epochs == [1, 2] and len(hist.step_loss) == 12 and hist.samples == 2 * 1437
    assert set(hist.train) == set(hist.test) == {"loss", "recon", "kl"}
    assert all(len(v) == 2 and all(math.isfinite(t) for t in v) for v in hist.train.values())
    assert hist.samples_per_s > 0
    assert json.loads(json.dumps(hist.to_dict()))["status"] == "finished"


def test_loss_goes_down_over_epochs():
    _, hist = aeviz.train(tiny(), TrainConfig(epochs=4, batch_size=64))
    assert hist.train["loss"][-1] < hist.train["loss"][0]
    assert hist.test["loss"][-1] < hist.test["loss"][0]


def test_callback_sees_every_step_and_each_epoch_end():
    seen = []
    aeviz.train(tiny("sparse"), FAST, callback=seen.append)
    steps = [p for p in seen if not p.epoch_end]
    ends = [p for p in seen if p.epoch_end]
    assert [p.step for p in steps] == list(range(1, 13)) and all(p.total_steps == 12 for p in seen)
    assert [(p.epoch, p.step) for p in ends] == [(1, 6), (2, 12)]
    assert set(steps[0].terms) == {"loss", "recon", "sparsity"} and isinstance(steps[0].terms["loss"], float)
    assert ends[0].history.test["loss"]  # the test evaluation is done before the epoch-end call


def test_callback_returning_true_stops_and_keeps_the_weights():
    model, hist = aeviz.train(tiny(), FAST, callback=lambda p: p.step == 4)
    assert hist.status == "stopped" and hist.message == "Stopped at epoch 1; the weights trained so far are kept."
    assert len(hist.step_loss) == 4 and hist.epochs == [] and not model.training


def test_same_config_gives_identical_weights_and_another_seed_does_not():
    for objective in ("denoising", "variational"):  # the two that draw noise while training
        a, _ = aeviz.train(tiny(objective), FAST)
        b, _ = aeviz.train(tiny(objective), FAST)
        c, _ = aeviz.train(tiny(objective), TrainConfig(epochs=2, batch_size=256, seed=1))
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k
        assert not all(torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_nan_loss_stops_with_a_message_and_keeps_the_last_finite_epoch(monkeypatch):
    calls = {"n": 0}
    real = losses.reconstruction

    def poisoned(*args, **kwargs):  # finite for epoch 1 (6 steps), NaN on step 2 of epoch 2
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] == 8 else value

    monkeypatch.setattr(losses, "reconstruction", poisoned)
    snapshots = []
    model, hist = aeviz.train(tiny(), TrainConfig(epochs=3, batch_size=256, eval_every=0),
                              callback=lambda p: p.epoch_end and snapshots.append(
                                  {k: v.clone() for k, v in p.model.state_dict().items()}))
    assert hist.status == "diverged"
    assert hist.message == ("Training stopped at epoch 2, step 8: the loss became nan (try a smaller learning "
                            "rate); the weights from the last finite epoch are kept.")
    assert len(snapshots) == 1 and hist.epochs == [1]
    for k, v in model.state_dict().items():
        assert torch.isfinite(v).all() and torch.equal(v, snapshots[0][k]), k


def test_a_huge_learning_rate_never_leaves_non_finite_weights():
    model, hist = aeviz.train(tiny("variational"), TrainConfig(epochs=3, batch_size=64, lr=10.0))
    assert hist.status == "diverged"
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_a_loss_that_grows_a_thousandfold_is_divergence_and_says_so():
    snapshots = []
    model, hist = aeviz.train(aeviz.config_for("mnist", latent_dim=2), TrainConfig(epochs=10, lr=10.0, max_train=1000),
                              callback=lambda p: p.step == 1 and not p.epoch_end and snapshots.append(
                                  {k: v.clone() for k, v in p.model.state_dict().items()}))
    first, last = hist.step_loss[0], hist.train["loss"][-1]
    assert hist.status == "diverged" and hist.epochs == [1] and last > 1e3 * first
    assert first == pytest.approx(784 * math.log(2), rel=0.01)  # an untrained decoder says 0.5 for every pixel
    assert hist.message == (f"Training diverged: the loss grew from {readable(first)} to "
                            f"{readable(last)}; try a smaller learning rate.")
    assert re.fullmatch(r"Training diverged: the loss grew from 5\d\d to \d(\.\d)? × 10[⁰¹²³⁴⁵⁶⁷⁸⁹]+; try a "
                        r"smaller learning rate\.", hist.message), hist.message
    assert not model.training and all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_a_sane_learning_rate_is_not_called_divergence():
    _, hist = aeviz.train(aeviz.config_for("mnist", latent_dim=2), TrainConfig(epochs=2, lr=2e-3, max_train=1000))
    assert hist.status == "finished" and hist.train["loss"][-1] < hist.step_loss[0]


@pytest.mark.parametrize("value, text", [(544.0, "544"), (0.01234, "0.01234"), (99999.0, "99,999"),
                                         (5.58e17, "5.6 × 10¹⁷"), (9.96e5, "1 × 10⁶"), (2e-5, "2 × 10⁻⁵")])
def test_losses_are_written_readably(value, text):
    assert readable(value) == text


def test_divergence_is_judged_against_the_first_loss():
    assert diverged(500.0, 499_000.0) is None and diverged(0.0, 1e9) is None
    assert diverged(500.0, 501_000.0).startswith("Training diverged: the loss grew from 500 to 5 × 10⁵;")
    assert diverged(500.0, float("inf")) == ("Training diverged: the loss grew from 500 to inf; try a smaller "
                                                   "learning rate.")


def test_training_set_filters_normal_classes_and_caps_the_size():
    d = load("digits")
    x = training_set(d, TrainConfig(normal_classes=(3, 5)))
    assert len(x) == int(torch.isin(d.y_train, torch.tensor([3, 5])).sum())
    assert len(training_set(d, TrainConfig(max_train=100))) == 100
    with pytest.raises(ConfigError, match=r"No training samples have the labels \[42\]."):
        aeviz.train(tiny(), TrainConfig(normal_classes=(42,)))


def test_a_model_for_another_shape_is_refused_with_one_sentence():
    mc = aeviz.config_for("digits", hidden=(8,))
    with pytest.raises(ConfigError, match=r"expects samples of shape \(1, 8, 8\), but 'swiss-roll' has \(3,\)."):
        aeviz.train(mc, FAST, data=load("swiss-roll"))


def test_evaluate_restores_the_training_mode_and_uses_no_noise():
    model = aeviz.build(tiny("denoising")).train()
    x = load("digits").x_test[:100]
    assert evaluate(model, x) == evaluate(model, x) and model.training


def test_history_throughput():
    assert History(seconds=2.0, samples=100).samples_per_s == 50.0 and History().samples_per_s == 0.0
