"""The comparison backend: metrics and best marks, presets, and the URL state codec."""
import math

import numpy as np
import pytest
import torch

import aeviz
from aeviz import analysis, zoo
from aeviz.data import corrupt, load
from aeviz.train import History
from aeviz.uses import compare

NAMES = ["ae-mlp-z2", "vae-mlp-z2", "ae-mlp-z16"]


def tiny(objective="vanilla", latent_dim=2, seed=0, dataset="mnist", **kw):
    torch.manual_seed(seed)
    kw.setdefault("hidden", (16,) if kw.get("arch") != "rnn" else (8,))
    return aeviz.build(aeviz.config_for(dataset, objective=objective, latent_dim=latent_dim, **kw)).eval()


@pytest.fixture(scope="module")
def mnist():
    return load("mnist")


# --- metrics -----------------------------------------------------------------------------------------------

def test_best_follows_the_direction_and_shares_ties():
    assert compare.best({"a": 0.2, "b": 0.1, "c": None}, compare.LOWER) == ["b"]
    assert compare.best({"a": 0.2, "b": 0.1}, compare.HIGHER) == ["a"]
    assert compare.best({"a": 3.0, "b": 3.0, "c": 5.0}, compare.LOWER) == ["a", "b"]
    assert compare.best({"a": 3.0, "b": 3.0}, compare.LOWER) == []  # everyone equal: nobody is best


def test_best_needs_two_values_and_a_direction():
    assert compare.best({"a": 1.0, "b": None}, compare.LOWER) == []
    assert compare.best({"a": 1.0, "b": 2.0}, None) == []
    assert compare.best({"a": float("nan"), "b": 2.0}, compare.LOWER) == []


def test_table_labels_rows_marks_the_lower_mse_and_drops_empty_rows():
    rows = {"mse": {"ae": 0.03, "vae": 0.04}, "psnr": {"ae": 15.2, "vae": 14.0},
            "nelbo": {"ae": None, "vae": 120.0}, "denoise_psnr": {"ae": None, "vae": None}}
    df = compare.table(rows)
    assert list(df.index) == ["test MSE ↓", "PSNR (dB) ↑", "negative ELBO (nats, VAEs) ↓"]
    assert list(df.columns) == ["ae", "vae", "best"]
    assert df.loc["test MSE ↓", "best"] == "ae"
    assert df.loc["PSNR (dB) ↑", "best"] == "ae"
    assert df.loc["negative ELBO (nats, VAEs) ↓", "best"] == ""  # one VAE: nothing to beat
    assert math.isnan(df.loc["negative ELBO (nats, VAEs) ↓", "ae"])


def test_summary_reads_the_model_card():
    ae = tiny(latent_dim=3)
    card = {"params": 1234, "test_mse": 0.01, "pca_mse": 0.02, "mse_ratio": 0.5, "knn_acc": 0.75}
    s = compare.summary(ae, card)
    assert s == {"params": 1234.0, "latent": 3.0, "mse": 0.01, "psnr": pytest.approx(20.0), "nelbo": None,
                 "knn": 0.75, "train_seconds": None}  # a fresh model has no training record
    assert compare.summary(ae, {**card, "nelbo": 99.5, "test_mse": 0.0})["nelbo"] == 99.5
    assert compare.summary(ae, {**card, "test_mse": 0.0})["psnr"] == float("inf")


def test_summary_of_an_autoencoder_and_a_vae_agrees_with_a_recomputation(mnist):
    ae, vae = tiny(), tiny("variational", seed=1)
    s, v = compare.summary(ae, zoo.model_card(ae, mnist)), compare.summary(vae, zoo.model_card(vae, mnist))
    assert s["params"] == ae.n_params and s["latent"] == 2
    x_hat = analysis.reconstruct(ae, mnist.x_test)
    assert s["mse"] == pytest.approx(float(np.mean((mnist.x_test.numpy() - x_hat) ** 2)), rel=1e-5)
    assert s["psnr"] == pytest.approx(analysis.psnr(mnist.x_test.numpy(), x_hat), rel=1e-6)
    assert s["nelbo"] is None
    assert v["nelbo"] == pytest.approx(float(analysis.negative_elbo(vae, mnist.x_test, samples=10).mean()))
    assert 0.0 <= s["knn"] <= 1.0


def test_summary_reads_a_row_sequence_model_on_the_same_images(mnist):
    rows = tiny(dataset="mnist-rows", arch="rnn")
    s = compare.summary(rows, zoo.model_card(rows, mnist))  # (N,1,28,28) images in, (N,28,28) out: no broadcasting
    assert 0.0 < s["mse"] < 1.0


def test_denoising_uses_the_same_noise_for_every_model(mnist):
    x = mnist.x_test[:200]
    a, b = corrupt(x, "gaussian", 0.5, seed=3), corrupt(x, "gaussian", 0.5, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, corrupt(x, "gaussian", 0.5, seed=4))
    model = tiny()
    assert compare.denoising_psnr(model, x, a) == compare.denoising_psnr(model, x, b)


def test_comparable_means_same_test_samples(mnist):
    assert compare.comparable(mnist, load("mnist-rows"))
    assert not compare.comparable(mnist, load("digits"))
    assert not compare.comparable(mnist, load("signals"))


def test_train_seconds_from_metrics_or_history():
    model = tiny()
    assert compare.train_seconds(model) is None
    model.history = History(seconds=4.5)
    assert compare.train_seconds(model) == 4.5
    model.history = {"seconds": 2.0}
    assert compare.train_seconds(model) == 2.0
    model.metrics = {"train_seconds": 7.25}
    assert compare.train_seconds(model) == 7.25


# --- what the page shows -------------------------------------------------------------------------------------

def test_picks_are_seeded_sorted_and_distinct():
    a = compare.picks(1000, 6, seed=5)
    assert np.array_equal(a, compare.picks(1000, 6, seed=5)) and np.array_equal(a, np.sort(a))
    assert len(set(a)) == 6 and not np.array_equal(a, compare.picks(1000, 6, seed=6))


def test_interpolation_and_prior_samples_shapes(mnist):
    vae = tiny("variational")
    path = compare.interpolation(vae, mnist, (0, 1), 5, "spherical")
    assert path.shape == (5, 1, 28, 28)
    assert np.allclose(path[0], analysis.reconstruct(vae, mnist.x_test[:1])[0], atol=1e-5)
    a, b = compare.prior_samples(vae, 4, 7, (1, 28, 28)), compare.prior_samples(vae, 4, 7, (1, 28, 28))
    assert a.shape == (4, 1, 28, 28) and np.array_equal(a, b)


# --- presets ------------------------------------------------------------------------------------------------

def test_presets_cover_the_classic_comparisons():
    titles = [p.title for p in compare.PRESETS]
    assert titles == ["AE vs VAE at latent 2", "The β ladder", "MLP vs convolutional",
                      "Vanilla vs denoising vs contractive under noise"]
    assert all(2 <= len(p.models) <= compare.MAX_MODELS for p in compare.PRESETS)
    assert compare.PRESETS[3].level == 0.5


def test_apply_preset_keeps_what_exists_and_names_what_is_missing():
    state, missing = compare.apply_preset(compare.PRESETS[1], compare.State(steps=5, cls=3), ["vae-mlp-z2", "vae-mlp-z2-b4"])
    assert state.models == ("vae-mlp-z2", "vae-mlp-z2-b4") and missing == ["vae-mlp-z2-b0.5", "vae-mlp-z2-b10"]
    assert state.steps == 5 and state.cls is None
    assert compare.matching_preset(state) is None
    full, _ = compare.apply_preset(compare.PRESETS[0], compare.State(), NAMES)
    assert compare.matching_preset(full) is compare.PRESETS[0]


def test_default_state_prefers_the_first_complete_preset():
    assert compare.default_state(NAMES).models == ("ae-mlp-z2", "vae-mlp-z2")
    assert compare.default_state(["x", "y", "z"]).models == ("x", "y")


# --- URL codec ----------------------------------------------------------------------------------------------

def test_params_round_trip():
    state = compare.State(models=("ae-mlp-z2", "vae-mlp-z2"), noise="masking", level=0.35, seed=12,
                          pair=(4, 900), steps=11, interp="spherical", cls=7, proj="umap")
    params = compare.to_params(state)
    assert params["models"] == "ae-mlp-z2,vae-mlp-z2" and params["level"] == "0.35" and params["pair"] == "4,900"
    parsed = compare.from_params(params, NAMES)
    assert parsed.state == state and parsed.unknown == [] and parsed.notes == []


def test_unknown_models_are_named_in_one_note():
    parsed = compare.from_params({"models": "ae-mlp-z2,foo,vae-mlp-z2,bar"}, NAMES)
    assert parsed.state.models == ("ae-mlp-z2", "vae-mlp-z2")
    assert parsed.unknown == ["foo", "bar"]
    assert parsed.notes == ["The link names a model that does not exist here: foo, bar; showing the others."]


def test_a_link_with_no_known_model_falls_back_to_the_default():
    parsed = compare.from_params({"models": "foo"}, NAMES)
    assert parsed.state.models == ("ae-mlp-z2", "vae-mlp-z2")
    assert parsed.notes[-1] == "None of the link's models exists here, so the page shows its default comparison."


def test_malformed_values_fall_back_to_defaults_with_a_note_each():
    params = {"models": "ae-mlp-z2,vae-mlp-z2", "level": "abc", "noise": "pink", "steps": "99", "pair": "5",
              "seed": "-3", "interp": "cubic", "cls": "x", "proj": "tsne"}
    parsed = compare.from_params(params, NAMES)
    assert parsed.state == compare.State(models=("ae-mlp-z2", "vae-mlp-z2"))
    assert len(parsed.notes) == 8
    assert "The link's level 'abc' is not a noise level between 0 and 1; using 0.0." in parsed.notes
    for value in ("nan", "inf", "1.5", "-0.1"):
        assert compare.from_params({"level": value}, NAMES).state.level == 0.0


def test_too_many_models_keep_the_first_four_and_duplicates_count_once():
    names = ["a", "b", "c", "d", "e"]
    parsed = compare.from_params({"models": "a,a,b,c,d,e"}, names)
    assert parsed.state.models == ("a", "b", "c", "d")
    assert "compares at most 4" in parsed.notes[0]


def test_repeated_query_parameters_use_the_last_value():
    assert compare.from_params({"steps": ["4", "6"]}, NAMES).state.steps == 6


def test_fit_clamps_what_depends_on_the_data():
    state, notes = compare.fit(compare.State(pair=(3, 5000), cls=12), n_test=1000, n_classes=10)
    assert state.pair == (0, 1) and state.cls is None and len(notes) == 2
    same = compare.State(pair=(3, 999), cls=9)
    assert compare.fit(same, 1000, 10) == (same, [])


def test_the_beta_ladder_reading_says_what_its_numbers_show():
    """The zoo's ladder: its test MSEs barely move until beta = 10, which the old text called 'blurrier'."""
    rungs = [compare.Rung(10.0, 2.59, 0.0453), compare.Rung(0.5, 7.75, 0.0417), compare.Rung(1.0, 6.46, 0.0422),
             compare.Rung(4.0, 4.61, 0.0413)]
    assert compare.beta_reading(rungs) == (
        "The KL term falls from 7.8 to 2.6 nats per image as β grows from 0.5 to 10: the codes are packed ever "
        "closer to N(0, I). The images barely change until β = 10: test MSE stays between 0.0413 and 0.0422 for "
        "smaller β, then rises to 0.0453.")
    flat = [compare.Rung(b, kl, 0.042) for b, kl in ((1, 6.0), (4, 7.0))]
    assert compare.beta_reading(flat) == ("The KL term at β = 1, 4: 6.0, 7.0 nats per image. The images barely "
                                          "change: test MSE stays between 0.0420 and 0.0420 on every rung.")
    assert compare.beta_reading([compare.Rung(1.0, float("nan"), 0.04), compare.Rung(4.0, 3.0, 0.04)]) == ""


def test_a_rung_reads_the_kl_from_the_metrics_or_else_the_history():
    from aeviz import config_for

    mc = config_for("mnist", objective="variational", beta=4.0)
    history = {"test": {"kl": [9.0, 4.6]}}
    assert compare.ladder_rung(mc, {"test_mse": 0.04}, history) == compare.Rung(4.0, 4.6, 0.04)
    assert compare.ladder_rung(mc, {"test_mse": 0.04, "test_kl": 4.5}, history).kl == 4.5
