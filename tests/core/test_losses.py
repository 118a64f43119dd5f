import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from aeviz import losses, nets
from aeviz.config import ModelConfig


def test_kl_of_the_standard_normal_is_zero():
    assert losses.kl_normal(torch.zeros(4, 3), torch.zeros(4, 3)) == 0.0


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(3), torch.ones(3))
    torch.testing.assert_close(losses.kl_normal(mu, logvar), kl_divergence(q, p).sum(1).mean())


def test_bce_reconstruction_is_summed_per_sample_and_averaged_over_the_batch():
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(4, 1, 2, 2, generator=g), torch.rand(4, 1, 2, 2, generator=g)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / 4
    torch.testing.assert_close(losses.reconstruction(logits, x, "bce"), expected)


def test_mse_reconstruction_compares_the_sigmoid_output():
    logits, x = torch.zeros(2, 3), torch.ones(2, 3)
    assert losses.reconstruction(logits, x, "mse").item() == pytest.approx(3 * 0.25)


def test_l1_sparsity_is_the_mean_l1_norm():
    assert losses.l1_sparsity(torch.tensor([[1.0, -2.0], [0.0, 3.0]])).item() == pytest.approx(3.0)


def test_kl_sparsity_is_zero_at_the_target_and_grows_away_from_it():
    at_target = torch.full((10, 4), 0.05)
    assert losses.kl_sparsity(at_target, 0.05).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.kl_sparsity(torch.full((10, 4), 0.5), 0.05) > losses.kl_sparsity(torch.full((10, 4), 0.1), 0.05) > 0


def finite_difference_frobenius(encode, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean over the batch of ||dz/dx||_F^2 by central differences, one input value at a time (float64)."""
    flat = x.flatten(1)
    total = torch.zeros(len(x), dtype=x.dtype)
    for i in range(flat.shape[1]):
        step = torch.zeros_like(flat)
        step[:, i] = eps
        dz = (encode((flat + step).reshape(x.shape)) - encode((flat - step).reshape(x.shape))) / (2 * eps)
        total += dz.square().sum(1)
    return total.mean()


def encoder(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    c = ModelConfig(arch=arch, input_shape=(1, 8, 8), hidden={"mlp": (12, 6), "conv": (3, 4)}[arch], latent_dim=3)
    return nets.build(c, c.latent_dim)[0].double()


def test_exact_contractive_penalty_matches_finite_differences_for_mlp():
    enc = encoder("mlp")
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = finite_difference_frobenius(enc, x)
    exact = losses.jacobian_frobenius(enc, x, exact=True)
    torch.testing.assert_close(exact, expected, rtol=1e-6, atol=1e-9)


def test_hutchinson_estimate_averages_to_the_exact_penalty_for_conv():
    enc = encoder("conv")
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = finite_difference_frobenius(enc, x)
    torch.manual_seed(0)
    # 4,000 copies of one sample: each gets its own probe v, so the batch mean is a mean over 4,000 draws
    estimate = losses.jacobian_frobenius(enc, x.expand(4000, -1, -1, -1), exact=False)
    assert estimate.item() == pytest.approx(expected.item(), rel=0.05)
    single = [losses.jacobian_frobenius(enc, x, exact=False).item() for _ in range(5)]
    assert len(set(single)) == 5  # one draw alone is noisy: it is an estimate


def test_contractive_penalty_is_differentiable_for_training_and_works_under_no_grad():
    enc = encoder("conv")
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    penalty = losses.jacobian_frobenius(enc, x, exact=False)
    penalty.backward()
    assert enc[0].weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert torch.isfinite(losses.jacobian_frobenius(enc, x, exact=False))


def test_kl_per_dimension_terms_sum_to_the_batch_kl():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    terms = losses.kl_normal(mu, logvar, per_dim=True)
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(3), torch.ones(3))
    assert terms.shape == (5, 3)
    torch.testing.assert_close(terms, kl_divergence(q, p))
    torch.testing.assert_close(terms.sum(1).mean(), losses.kl_normal(mu, logvar))


def test_bernoulli_likelihood_is_the_training_loss_per_sample():
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(4, 1, 2, 2, generator=g), torch.rand(4, 1, 2, 2, generator=g)
    nll = losses.neg_log_likelihood(logits, x, "bce", normalised=True)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)
    torch.testing.assert_close(nll, expected)
    torch.testing.assert_close(nll.mean(), losses.reconstruction(logits, x, "bce"))


def test_gaussian_likelihood_is_the_squared_error_plus_the_normal_constant_of_sigma_squared_one_half():
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(4, 5, generator=g), torch.rand(4, 5, generator=g)
    x_hat = torch.sigmoid(logits)
    density = Normal(x_hat, math.sqrt(0.5)).log_prob(x).sum(1)  # sigma^2 = 1/2: -log p = (x - x_hat)^2 + log(pi)/2
    torch.testing.assert_close(losses.neg_log_likelihood(logits, x, "mse", normalised=True), -density)
    torch.testing.assert_close(losses.neg_log_likelihood(logits, x, "mse"), (x_hat - x).square().sum(1))
    torch.testing.assert_close(losses.reconstruction(logits, x, "mse"), (x_hat - x).square().sum(1).mean())
    with pytest.raises(ValueError, match="Unknown reconstruction loss 'l2'"):
        losses.neg_log_likelihood(logits, x, "l2")
