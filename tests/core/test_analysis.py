"""analysis: the negative ELBO under the model's own likelihood, and the one 2-D map of codes."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aeviz
from aeviz import analysis
from aeviz.config import ModelConfig


def vae(recon: str, shape=(3,), seed: int = 0):
    torch.manual_seed(seed)
    return aeviz.build(ModelConfig(objective="variational", input_shape=shape, hidden=(8,), latent_dim=2,
                                   recon=recon, dataset="swiss-roll")).eval()


def by_hand(model, x, samples: int, seed: int, nll) -> np.ndarray:
    """-ELBO written out: the same z draws (one generator), the given -log p(x|z), the closed-form KL."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mu, logvar = model.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(-12.0, 8.0)
        rec = sum(nll(model.decoder(mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()), x)
                  for _ in range(samples)) / samples
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)
    return (rec + kl).numpy()


@pytest.fixture
def x():
    return torch.rand(16, 3, generator=torch.Generator().manual_seed(3))


def test_a_gaussian_vae_is_scored_under_its_gaussian_likelihood(x):
    model = vae("mse")

    def gaussian(logits, x):  # sigma^2 = 1/2, the likelihood whose -log is the training loss plus a constant
        return (torch.sigmoid(logits) - x).square().sum(1) + 1.5 * math.log(math.pi)

    def bernoulli(logits, x):
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)

    got = analysis.negative_elbo(model, x, samples=3, seed=5)
    np.testing.assert_allclose(got, by_hand(model, x, 3, 5, gaussian), rtol=1e-5)
    assert not np.allclose(got, by_hand(model, x, 3, 5, bernoulli), rtol=1e-2)


def test_a_bernoulli_vae_keeps_its_bernoulli_likelihood(x):
    model = vae("bce")

    def bernoulli(logits, x):
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)

    np.testing.assert_allclose(analysis.negative_elbo(model, x, samples=4, seed=1), by_hand(model, x, 4, 1, bernoulli),
                               rtol=1e-5)


def test_the_default_sample_count_is_the_one_everybody_uses(x):
    model = vae("bce")
    assert analysis.NELBO_SAMPLES == 10
    np.testing.assert_array_equal(analysis.negative_elbo(model, x), analysis.negative_elbo(model, x, samples=10))
    assert not np.array_equal(analysis.negative_elbo(model, x), analysis.negative_elbo(model, x, samples=1))


def test_a_model_without_a_prior_scores_its_reconstruction_term(x):
    torch.manual_seed(0)
    model = aeviz.build(ModelConfig(input_shape=(3,), hidden=(8,), recon="mse", dataset="swiss-roll")).eval()
    with torch.no_grad():
        x_hat = model(x)
    expected = ((x_hat - x) ** 2).sum(1) + 1.5 * math.log(math.pi)
    np.testing.assert_allclose(analysis.negative_elbo(model, x), expected.numpy(), rtol=1e-5)


def test_map_2d_keeps_two_pads_one_and_projects_more():
    rng = np.random.default_rng(0)
    two = rng.normal(size=(50, 2)).astype(np.float32)
    np.testing.assert_array_equal(analysis.map_2d(two), two)
    one = analysis.map_2d(two[:, :1].astype(np.float64))
    assert one.dtype == np.float32 and one.shape == (50, 2)
    np.testing.assert_array_equal(one[:, 0], two[:, 0]) and np.testing.assert_array_equal(one[:, 1], 0.0)
    wide = rng.normal(size=(50, 6)) * np.array([5, 3, 1, 0.1, 0.1, 0.1])
    xy = analysis.map_2d(wide)
    assert xy.shape == (50, 2) and xy.dtype == np.float32
    np.testing.assert_allclose(np.abs(xy), np.abs(analysis.project(wide, "pca")), rtol=1e-5)


def test_map_2d_follows_the_sign_of_the_previous_map():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(80, 5)) * np.array([4, 2, 1, 0.5, 0.1])
    xy = analysis.map_2d(z)
    flipped = analysis.map_2d(z, previous=-xy)
    np.testing.assert_allclose(flipped, -xy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(analysis.map_2d(z, previous=xy), xy, rtol=1e-5, atol=1e-6)
    two = z[:, :2]  # 2-D codes are drawn as they are, whatever came before
    np.testing.assert_array_equal(analysis.map_2d(two, previous=-two), two.astype(np.float32))
