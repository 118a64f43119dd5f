"""Backend of the application pages: maps and their scores, features, compression, augmentation, imputation."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import aeviz
from aeviz import analysis
from aeviz.data import load
from aeviz.io import PRETRAINED, pretrained
from aeviz.uses import augmentation, compression, features, imputation, is_image_model, reduction, sweep


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def trained(digits):
    """A small vanilla autoencoder on the 8x8 digits, trained enough to fill gaps (a few seconds)."""
    mc = aeviz.config_for("digits", latent_dim=8, hidden=(64, 32))
    model, _ = aeviz.train(mc, aeviz.TrainConfig(epochs=12, batch_size=64, lr=3e-3, eval_every=0), digits)
    return model


@pytest.fixture(scope="module")
def vae(digits):
    mc = aeviz.config_for("digits", objective="variational", latent_dim=4, hidden=(32,))
    model, _ = aeviz.train(mc, aeviz.TrainConfig(epochs=3, eval_every=0), digits)
    return model


def test_perfect_embedding_is_fully_trustworthy():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(200, 2))
    x = np.c_[xy, np.zeros(200)]  # 3-D data that is really 2-D: the embedding drops nothing
    assert analysis.trustworthiness(x, xy) == pytest.approx(1.0)
    shuffled = xy[rng.permutation(200)]
    assert analysis.trustworthiness(x, shuffled) < 0.6


def test_map_scores_read_unrolled_and_rolled_maps():
    t = np.linspace(0, 3 * np.pi, 400)
    x = np.c_[t * np.cos(t), np.tile([0.0, 1.0], 200), t * np.sin(t)]
    flat = np.c_[t, np.tile([0.0, 1.0], 200)]  # the sheet laid flat
    rolled = x[:, [0, 2]]  # the roll seen end-on, as PCA sees it
    flat_row = reduction.map_scores(x, flat, t, continuous=True)
    rolled_row = reduction.map_scores(x, rolled, t, continuous=True)
    assert flat_row["unrolled (linear R²)"] > 0.99
    assert rolled_row["unrolled (linear R²)"] < 0.3
    assert flat_row["5-NN R² of position"] > 0.99


def test_neighbour_score_on_labels_is_an_accuracy():
    xy = np.repeat(np.arange(4)[:, None] * 10.0, 50, 0) + np.random.default_rng(0).normal(size=(200, 2))
    y = np.repeat(np.arange(4), 50)
    assert reduction.neighbour_score(xy, y, continuous=False) == 1.0
    assert reduction.neighbour_score(xy, np.random.default_rng(1).permutation(y), continuous=False) < 0.5


def test_pca_map_and_features_fit_on_training_set(digits):
    x_tr, x_te = digits.x_train.numpy(), digits.x_test.numpy()
    assert reduction.pca_map(x_tr, x_te).shape == (360, 2)
    tr, te = features.pca_features(x_tr, x_te, 5)
    assert tr.shape == (1437, 5) and te.shape == (360, 5)
    scores = features.feature_scores(tr, digits.y_train.numpy(), te, digits.y_test.numpy())
    assert set(scores) == {"linear probe", "5-NN"} and 0.7 < scores["5-NN"] <= 1.0


@pytest.mark.parametrize("k,bits,expected", [(16, 32, 64.0), (16, 8, 16.0), (3, 4, 1.5), (2, 8, 2.0)])
def test_code_bytes(k, bits, expected):
    assert compression.code_bytes(k, bits) == expected


def test_quantizer_round_trip_error_is_at_most_half_a_step():
    rng = np.random.default_rng(0)
    z_train = rng.normal(size=(500, 6)) * np.arange(1, 7)
    q = compression.Quantizer.fit(z_train, bits=8)
    assert q.levels == 256
    codes = q.encode(z_train)
    assert codes.min() == 0 and codes.max() == 255
    err = np.abs(q.round_trip(z_train) - z_train)
    assert np.all(err <= q.step / 2 + 1e-6)
    far = q.round_trip(z_train.max(0, keepdims=True) + 100)  # outside the training range: clipped to it
    np.testing.assert_allclose(far[0], z_train.max(0), rtol=1e-5)


def test_fewer_bits_cost_more_error():
    z = np.random.default_rng(0).uniform(-1, 1, (1000, 4))
    errs = [np.abs(compression.Quantizer.fit(z, b).round_trip(z) - z).max() for b in (2, 4, 8)]
    assert errs[0] > errs[1] > errs[2]


def test_jpeg_bytes_are_real_file_sizes(digits):
    x = digits.x_test.numpy()[:20]
    points, recon = compression.jpeg_points(x, qualities=(10, 90))
    for p in points:
        files = [compression.jpeg_encode(img[0], p["quality"]) for img in x]
        assert files[0][:2] == b"\xff\xd8"  # a real JPEG stream
        assert p["bytes"] == pytest.approx(np.mean([len(f) for f in files]))
        assert p["bytes_without_tables"] < p["bytes"]
    assert points[0]["bytes"] < points[1]["bytes"] and points[0]["mse"] > points[1]["mse"]
    assert recon[90].shape == x.shape


def test_rate_distortion_points_of_autoencoder_and_pca(trained, digits):
    x_tr, x_te = digits.x_train.numpy(), digits.x_test.numpy()
    ae, recon = compression.autoencoder_points(trained, x_tr, x_te, bits=(32, 8))
    assert [p["bytes"] for p in ae] == [32.0, 8.0]
    assert ae[1]["mse"] == pytest.approx(ae[0]["mse"], rel=0.05)  # 256 levels lose little
    assert recon[8].shape == x_te.shape
    pca, _ = compression.pca_points(x_tr, x_te, 64, bits=(32,))
    assert pca[0]["mse"] < 1e-6  # all 64 components of an 8x8 image: lossless


def test_nearest_at_or_below():
    pts = [{"bytes": 50}, {"bytes": 100}, {"bytes": 200}]
    assert compression.nearest_at_or_below(pts, 150)["bytes"] == 100
    assert compression.nearest_at_or_below(pts, 10)["bytes"] == 50


@pytest.mark.parametrize("kind,count", [("top half", 32), ("right half", 32), ("box", 9), ("random pixels", None)])
def test_masks(kind, count):
    m = imputation.make_mask(8, 8, kind, rate=0.25, box=(2, 2, 3))
    assert m.shape == (8, 8) and m.dtype == bool
    if count is not None:
        assert m.sum() == count
    else:
        assert 5 <= m.sum() <= 28
    if kind == "top half":
        assert m[:4].all() and not m[4:].any()


def test_unknown_mask_says_which_exist():
    with pytest.raises(ValueError, match="top half"):
        imputation.make_mask(8, 8, "diagonal")


def test_imputation_keeps_known_pixels_and_beats_the_mean_image(trained, digits):
    x = digits.x_test.numpy()
    mean_image = digits.x_train.numpy().mean(0)
    missing = imputation.make_mask(8, 8, "random pixels", rate=0.4, seed=1)
    states = imputation.impute(trained, x, missing, mean_image, iterations=10)
    assert states.shape == (11, *x.shape)
    known = np.broadcast_to(~missing, x.shape)
    for s in states:
        assert np.array_equal(s[known], x[known])  # known pixels never change
    errs = [imputation.missing_mse(x, s, missing).mean() for s in states]
    baseline = imputation.missing_mse(x, imputation.mean_fill(x, missing, mean_image), missing).mean()
    assert errs[0] == pytest.approx(baseline)
    assert errs[-1] < 0.8 * baseline


def test_fitting_the_code_keeps_known_pixels_leaves_weights_alone_and_beats_the_mean_image(trained, digits):
    x = digits.x_test.numpy()
    mean_image = digits.x_train.numpy().mean(0)
    missing = imputation.make_mask(8, 8, "top half")
    before = [p.detach().clone() for p in trained.parameters()]
    grads = [None if p.grad is None else p.grad.clone() for p in trained.parameters()]
    states = imputation.fit_code(trained, x, missing, mean_image, steps=60)
    assert states.shape == (61, *x.shape)
    known = np.broadcast_to(~missing, x.shape)
    assert all(np.array_equal(s[known], x[known]) for s in states)
    assert all(torch.equal(a, b) for a, b in zip(before, trained.parameters()))
    assert all((g is None and p.grad is None) or torch.equal(g, p.grad) for g, p in zip(grads, trained.parameters()))
    errs = [imputation.missing_mse(x, s, missing).mean() for s in states]
    assert errs[0] == pytest.approx(imputation.missing_mse(x, imputation.mean_fill(x, missing, mean_image),
                                                           missing).mean())
    assert errs[-1] < 0.9 * errs[0]


def test_fill_states_names_the_methods():
    with pytest.raises(ValueError, match="fit the code, iterated reconstruction"):
        imputation.fill_states("guess", None, np.zeros((1, 4)), np.zeros(4, bool), np.zeros(4), 1)


def test_missing_mse_counts_only_missing_pixels():
    x = np.zeros((2, 1, 2, 2))
    filled = x.copy()
    filled[:, 0, 0, 0] = 1.0  # wrong where missing
    filled[:, 0, 1, 1] = 5.0  # wrong where known: must not count
    missing = np.array([[True, True], [False, False]])
    np.testing.assert_allclose(imputation.missing_mse(x, filled, missing), [0.5, 0.5])


def test_augment_shapes_ranges_and_scale_zero(trained, vae, digits):
    x = digits.x_test.numpy()[:3]
    spread = augmentation.code_spread(trained, digits.x_train)
    out = augmentation.augment(trained, x, 5, 1.0, seed=0, spread=spread, mode="code")
    assert out.shape == (15, 1, 8, 8) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(augmentation.augment(trained, x, 2, 0.0, spread=spread, mode="code")[::2],
                               analysis.reconstruct(trained, x), atol=1e-6)
    v = augmentation.augment(vae, x, 4, 1.0, seed=0)
    assert v.shape == (12, 1, 8, 8)
    assert not np.allclose(v, augmentation.augment(vae, x, 4, 1.0, seed=1))
    np.testing.assert_allclose(augmentation.augment(vae, x, 1, 0.0), analysis.reconstruct(vae, x), atol=1e-6)


def test_plain_autoencoder_needs_a_spread(trained, digits):
    with pytest.raises(ValueError, match="spread"):
        augmentation.augment(trained, digits.x_test.numpy()[:1], 2, 1.0, mode="code")


def test_downloads_round_trip():
    imgs = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    with np.load(io.BytesIO(augmentation.to_npz(imgs, [7, 7, 7]))) as f:
        np.testing.assert_array_equal(f["x"], imgs)
        assert list(f["y"]) == [7, 7, 7]
    with zipfile.ZipFile(io.BytesIO(augmentation.to_png_zip(imgs, "v"))) as zf:
        assert zf.namelist() == ["v_000.png", "v_001.png", "v_002.png"]
        assert Image.open(io.BytesIO(zf.read("v_001.png"))).size == (28, 28)


def test_few_shot_sample_and_gain(trained, digits):
    idx = augmentation.few_shot_sample(digits.y_train.numpy(), 3, seed=0)
    assert np.bincount(digits.y_train.numpy()[idx]).tolist() == [3] * 10
    assert np.array_equal(idx, augmentation.few_shot_sample(digits.y_train.numpy(), 3, seed=0))
    spread = augmentation.code_spread(trained, digits.x_train)
    result = augmentation.few_shot_gain(trained, digits, per_class=3, n_aug=2, scale=0.5, seeds=(0, 1),
                                        spread=spread, mode="code")
    assert set(result) == {"real only", "real + augmented"}
    assert all(len(v) == 2 and all(0.1 < a <= 1.0 for a in v) for v in result.values())


def test_quick_configs_fit_their_data():
    mc, tc = sweep.quick_configs("swiss-roll", 2)
    assert mc.input_shape == (3,) and mc.recon == "mse" and mc.latent_dim == 2
    mc, _ = sweep.quick_configs("mnist", 8)
    assert mc.input_shape == (1, 28, 28) and mc.latent_dim == 8
    assert is_image_model(aeviz.build(mc))
    assert not is_image_model(aeviz.build(sweep.quick_configs("swiss-roll", 2)[0]))


@pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z16.safetensors").is_file(), reason="no pretrained zoo")
def test_the_sweep_picks_the_zoo_model_built_with_the_default_config_of_a_size():
    cards = pretrained()
    assert sweep.pretrained_for(2, "mnist", cards) == "ae-mlp-z2"
    assert sweep.pretrained_for(16, "mnist", cards) == "ae-mlp-z16"
    assert sweep.pretrained_for(64, "mnist", cards) is None  # ae-mlp-shallow-z64 has no hidden layers: not the sweep's
    assert sweep.pretrained_for(4, "mnist", cards) is None and sweep.pretrained_for(2, "swiss-roll", cards) is None
    assert sweep.pretrained_for(2, "mnist", []) is None


def test_fitting_a_sparse_code_stays_in_its_range(digits):
    mc = aeviz.config_for("digits", objective="sparse", sparsity="kl", latent_dim=8, hidden=(32,))
    model, _ = aeviz.train(mc, aeviz.TrainConfig(epochs=2, eval_every=0), digits)
    x, mean_image = digits.x_test.numpy()[:20], digits.x_train.numpy().mean(0)
    codes = []
    real = model.decode
    model.decode = lambda z: codes.append(z.detach().clone()) or real(z)
    list(imputation.iter_fit_code(model, x, imputation.make_mask(8, 8, "top half"), mean_image, steps=30, lr=1.0))
    z = torch.cat(codes[1:])  # after the first step every code has been clamped
    assert model.code_range == (0.0, 1.0) and z.min() >= 0.0 and z.max() <= 1.0


def test_backend_leaves_streamlit_alone():
    import subprocess
    import sys

    code = ("import sys, aeviz.uses.reduction, aeviz.uses.features, aeviz.uses.augmentation, aeviz.uses.sweep, "
            "aeviz.uses.compression, aeviz.uses.imputation, aeviz.bench.uses; print('streamlit' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"



def test_bench_names_its_parts():
    from aeviz.bench import uses

    with pytest.raises(SystemExit, match="reduction, features"):
        uses.run("everything")
