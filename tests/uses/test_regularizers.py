"""Denoising curves, sparsity statistics, feature images, encoder Jacobians and code robustness."""
import numpy as np
import pytest
import torch

from aeviz import analysis, build, config_for
from aeviz.config import TrainConfig
from aeviz.data import corrupt, load
from aeviz.train import train
from aeviz.uses import regularizers as R


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return load("mnist").x_test[:200].numpy()


@pytest.fixture(scope="module")
def model():
    """A small MLP trained for one epoch on 512 digits: enough to have structure, under a second."""
    m, _ = train(config_for("mnist", latent_dim=8, hidden=(64,)), TrainConfig(epochs=1, max_train=512, eval_every=0))
    return m


# The metrics the lab reports, against values known in closed form.

def test_psnr_known_value():
    x = np.zeros((3, 1, 28, 28))
    assert analysis.psnr(x, x + 0.1) == pytest.approx(20.0, abs=1e-9)  # MSE 0.01 -> 20 dB exactly
    assert analysis.psnr(x, x + 0.01) == pytest.approx(40.0, abs=1e-9)
    assert analysis.psnr(x, x) == float("inf")


def test_ssim_known_values(x):
    assert analysis.ssim(x[:5], x[:5]) == pytest.approx(1.0)
    assert analysis.ssim(x[:5], 1.0 - x[:5]) < 0  # a negative is anti-correlated in structure


# Denoising.

def test_noise_is_seeded_and_level_zero_is_identity(x):
    assert np.array_equal(corrupt(x, "gaussian", 0.3, seed=4), corrupt(x, "gaussian", 0.3, seed=4))
    assert not np.array_equal(corrupt(x, "gaussian", 0.3, seed=4), corrupt(x, "gaussian", 0.3, seed=5))
    assert np.array_equal(corrupt(x, "masking", 0.0, seed=0), x)
    masked = corrupt(x, "masking", 0.5, seed=0)
    assert masked.max() <= 1 and masked.sum() < 0.6 * x.sum()


@pytest.mark.parametrize("kind", R.FILTERS)
def test_filters_work_per_image_and_help_against_salt_and_pepper(x, kind):
    x_noisy = corrupt(x[:20], "salt-pepper", 0.1, seed=0)
    out = R.classical_filter(x_noisy, kind)
    assert out.shape == x_noisy.shape
    assert np.allclose(out[3], R.classical_filter(x_noisy[3:4], kind)[0])  # no mixing across the batch
    assert analysis.psnr(x[:20], out) > analysis.psnr(x[:20], x_noisy) + 3


def test_unknown_filter_is_one_sentence(x):
    with pytest.raises(ValueError, match="Unknown filter 'box'; choose one of median, gaussian."):
        R.classical_filter(x, "box")


def test_psnr_curves_cover_every_method_and_fall_with_noise(x, model):
    levels = [0.1, 0.3, 0.6]
    curves = R.psnr_curves({"dae": model, "ae": model}, x[:50], "gaussian", levels)
    assert list(curves) == ["noisy input", "dae", "ae", "median filter"]
    assert all(c.shape == (3,) for c in curves.values())
    assert np.all(np.diff(curves["noisy input"]) < 0)
    assert curves["noisy input"][0] == pytest.approx(analysis.psnr(x[:50], corrupt(x[:50], "gaussian", 0.1, seed=0)))


def test_denoising_figures_match_the_curves(x, model):
    figs = R.denoising_figures(model, model, x[:50], sigma=0.5)
    curves = R.psnr_curves({"denoised": model, "vanilla AE": model}, x[:50], "gaussian", [0.5])
    assert figs == {k: pytest.approx(v[0]) for k, v in curves.items()}
    assert figs["noisy input"] < figs["median filter"]


def test_scores_are_psnr_and_ssim(x):
    s = R.scores(x[:10], {"same": x[:10], "noisy": corrupt(x[:10], "gaussian", 0.2, seed=0)})
    assert s["same"] == (float("inf"), pytest.approx(1.0))
    assert 5 < s["noisy"][0] < 25 and s["noisy"][1] < 1


# Sparsity and features.

def test_activity_fractions(x, model):
    a = R.activity(model, x)
    z = analysis.embed(model, x)
    assert a.z.shape == (200, 8) and np.allclose(a.z, z)
    expected = np.abs(z) > 0.1 * np.abs(z).max(0)
    assert np.array_equal(a.active, expected)
    assert np.allclose(a.per_image, expected.mean(1)) and np.allclose(a.per_unit, expected.mean(0))


def test_activity_of_relu_codes_counts_silent_units_inactive(x):
    m = build(config_for("mnist", latent_dim=6, hidden=(), objective="sparse"))
    with torch.no_grad():
        m.encoder[1].bias[:3] = -1e3  # three units that never fire
    a = R.activity(m, x)
    assert np.all(a.per_unit[:3] == 0) and np.all(a.per_image <= 0.5)


def test_feature_images(model):
    enc = R.features(model, "encoder", n=16)
    dec = R.features(model, "decoder", n=8)
    assert enc.shape == (16, 28, 28) and dec.shape == (8, 28, 28)
    assert enc.min() >= 0 and enc.max() <= 1
    w = model.encoder[1].weight.detach().numpy()[0]
    assert np.allclose(enc[0].ravel(), 0.5 + 0.5 * w / np.abs(w).max(), atol=1e-6)
    picked = R.features(model, "encoder", n=2, units=[5, 0, 3])
    assert np.array_equal(picked, enc[[5, 0]])


def test_feature_images_need_an_mlp_on_images():
    with pytest.raises(ValueError, match="Feature images need an MLP model on images"):
        R.features(build(config_for("mnist", latent_dim=4, arch="conv")))


# Contraction and robustness.

def test_jacobian_norm_of_a_linear_encoder_is_its_weight_norm(x):
    m = build(config_for("mnist", latent_dim=5, hidden=()))
    norms = R.jacobian_norms(m, x[:30], batch_size=7)
    expected = torch.linalg.matrix_norm(m.encoder[1].weight).item()
    assert norms.shape == (30,) and np.allclose(norms, expected, rtol=1e-5)


def test_jacobian_norms_agree_with_the_contractive_loss(x, model):
    from aeviz.losses import jacobian_frobenius

    norms = R.jacobian_norms(model, x[:20])
    penalty = jacobian_frobenius(model.encoder, torch.as_tensor(x[:20]), exact=True).item()
    assert np.mean(norms**2) == pytest.approx(penalty, rel=1e-4)


def test_shift_moves_images_and_fills_with_zeros():
    img = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) + 1
    right, left, down, up = R.shift(img, 1)
    assert np.array_equal(right[0, :, 1:], img[0, 0, :, :3]) and np.all(right[0, :, 0] == 0)
    assert np.array_equal(left[0, :, :3], img[0, 0, :, 1:]) and np.all(left[0, :, 3] == 0)
    assert np.array_equal(down[0, 1:], img[0, 0, :3]) and np.all(up[0, 3] == 0)
    assert np.array_equal(R.shift(img, 0), np.concatenate([img] * 4))
    with pytest.raises(ValueError, match="needs images"):
        R.shift(np.zeros((5, 3)), 1)


@pytest.mark.parametrize("kind,sizes", [("noise", [0.0, 0.05, 0.1, 0.2, 0.4]), ("shift", [0, 1, 2, 3])])
def test_robustness_curve_grows_with_the_perturbation(x, model, kind, sizes):
    curve = R.robustness(model, x, kind, sizes)
    assert curve.shape == (len(sizes),)
    assert curve[0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(curve) > 0)


def test_robustness_is_relative_to_the_code_spread(x, model):
    big = build(model.config)
    big.load_state_dict(model.state_dict())
    with torch.no_grad():  # the same encoder with every code scaled by 10
        big.encoder[-1].weight.mul_(10)
        big.encoder[-1].bias.mul_(10)
    a, b = R.robustness(model, x, "noise", [0.1]), R.robustness(big, x, "noise", [0.1])
    assert a == pytest.approx(b, rel=1e-4)


def test_denoise_bench_reports_the_same_figures(x, model, tmp_path, monkeypatch, capsys):
    import aeviz
    from aeviz import bench, io

    for name in ("dae", "ae"):
        aeviz.save(model, tmp_path / f"{name}.safetensors")
    monkeypatch.setattr(io, "PRETRAINED", tmp_path)
    out = bench.bench_denoise(sigma=0.5, denoiser="dae", vanilla="ae")
    full = load("mnist").x_test.numpy()
    figs = R.denoising_figures(model, model, full, sigma=0.5)
    assert out["psnr_noisy"] == round(figs["noisy input"], 2) and out["psnr_denoised"] == round(figs["denoised"], 2)
    assert out["psnr_median_filter"] == round(figs["median filter"], 2) and out["images"] == 1000
    assert "1000 MNIST test digits, Gaussian noise sigma=0.5" in capsys.readouterr().out
