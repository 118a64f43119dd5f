import pytest
import torch

from aeviz.config import ARCHS, OBJECTIVES, ModelConfig
from aeviz.data import load
from aeviz.models import OBJECTIVE_CLASSES, Autoencoder, Variational, build

SMALL = {"mlp": (16, 8), "conv": (4, 8), "rnn": (16,)}
EXTRA_TERM = {"sparse": "sparsity", "contractive": "contractive", "variational": "kl"}
PAIRS = [(o, a) for o in OBJECTIVES for a in ARCHS]


def small(objective: str, arch: str, **kw) -> ModelConfig:
    """A few-hundred-parameter model on 8x8 digits."""
    return ModelConfig(objective=objective, arch=arch, latent_dim=3, dataset="digits", input_shape=(1, 8, 8),
                       hidden=SMALL[arch], **kw)


@pytest.fixture(scope="module")
def x():
    return load("digits").x_train[:32]


def fresh(objective, arch, seed=0, **kw) -> Autoencoder:
    torch.manual_seed(seed)
    return build(small(objective, arch, **kw))


@pytest.mark.parametrize("objective, arch", PAIRS)
def test_shapes_and_range_for_flat_and_shaped_input(objective, arch, x):
    model = fresh(objective, arch).eval()
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (32, 3)
        torch.testing.assert_close(model.encode(x.flatten(1)), z)
        x_hat = model.decode(z)
        assert x_hat.shape == (32, 1, 8, 8)
        assert x_hat.min() >= 0.0 and x_hat.max() <= 1.0
        torch.testing.assert_close(model(x.flatten(1)), x_hat)


@pytest.mark.parametrize("objective, arch", PAIRS)
def test_loss_terms_are_finite_scalars_with_the_objective_own_term(objective, arch, x):
    terms = fresh(objective, arch).train().objective(x)
    assert set(terms) == {"loss", "recon"} | ({EXTRA_TERM[objective]} if objective in EXTRA_TERM else set())
    for name, value in terms.items():
        assert value.shape == () and torch.isfinite(value), name
    assert terms["loss"] >= terms["recon"] - 1e-6  # every penalty is non-negative


@pytest.mark.parametrize("objective, arch", PAIRS)
def test_one_adam_step_lowers_the_loss_on_a_fixed_batch(objective, arch, x):
    model = fresh(objective, arch).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss():  # the same noise draws before and after the step, so it is one fixed function
        torch.manual_seed(123)
        return model.objective(x)["loss"]

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert after < before


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_build_picks_the_objective_class(objective):
    model = build(small(objective, "mlp"))
    assert type(model) is OBJECTIVE_CLASSES[objective] and isinstance(model, Autoencoder)
    assert model.config.objective == objective and model.n_params > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_variational_encode_is_the_posterior_mean_and_sample_decodes_the_prior(arch, x):
    model = fresh("variational", arch)
    assert isinstance(model, Variational)
    with torch.no_grad():
        mu, _ = model.encoder(x).chunk(2, dim=1)
        torch.testing.assert_close(model.train().encode(x), mu)  # no sampling even in train mode
        samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= 0.0 and samples.max() <= 1.0
    assert torch.equal(samples, model.sample(5, generator=torch.Generator().manual_seed(0)))


def test_variational_draws_z_only_while_training(x):
    model = fresh("variational", "mlp")
    z_train, extras = model.train().posterior(x)
    z_eval, _ = model.eval().posterior(x)
    assert not torch.allclose(z_train, extras["mu"]) and torch.equal(z_eval, extras["mu"])


@pytest.mark.parametrize("noise", ["gaussian", "salt-pepper", "masking"])
def test_denoiser_sees_corrupted_input_only_while_training(noise, x):
    model = fresh("denoising", "mlp", noise=noise, noise_level=0.3)
    assert not torch.equal(model.corrupt(x), x)
    z_clean = model.eval().encode(x)
    torch.manual_seed(0)
    train_terms = model.train().objective(x)
    eval_terms = model.eval().objective(x)
    torch.testing.assert_close(model.encode(x), z_clean)
    assert train_terms["recon"] != eval_terms["recon"]


@pytest.mark.parametrize("sparsity", ["l1", "kl"])
def test_sparse_codes_are_nonnegative_or_in_unit_interval(sparsity, x):
    model = fresh("sparse", "mlp", sparsity=sparsity)
    z = model.encode(x)
    assert z.min() >= 0 and (sparsity == "l1" or z.max() < 1)


def test_lstm_cell_builds_and_trains(x):
    model = fresh("vanilla", "rnn", rnn_cell="lstm")
    assert isinstance(model.encoder.rnn, torch.nn.LSTM)
    assert model.decode(model.encode(x)).shape == x.shape


def test_points_and_sequences_keep_their_shapes():
    points = build(ModelConfig(input_shape=(3,), hidden=(8,), recon="mse", dataset="swiss-roll"))
    assert points.decode(points.encode(torch.rand(5, 3))).shape == (5, 3)
    seq = build(ModelConfig(arch="rnn", input_shape=(128, 1), hidden=(8,), recon="mse", dataset="signals"))
    assert seq.decode(seq.encode(torch.rand(5, 128))).shape == (5, 128, 1)



def test_a_point_on_the_path_is_where_interpolate_puts_its_stops():
    import numpy as np

    from aeviz import analysis

    z0, z1 = np.array([3.0, 0.0, 1.0]), np.array([0.0, 2.0, -1.0])
    for method in ("linear", "spherical"):
        stops = analysis.interpolate(z0, z1, 5, method)
        assert np.allclose(analysis.path_point(z0, z1, 0.25, method), stops[1])
        assert np.allclose(analysis.path_point(z0, z1, [0.0, 1.0], method), stops[[0, -1]])
    # between codes of equal length, slerp keeps the length where the straight line cuts inside
    a, b = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    assert np.linalg.norm(analysis.path_point(a, b, 0.3, "spherical")) == pytest.approx(2.0)
    assert np.linalg.norm(analysis.path_point(a, b, 0.3, "linear")) < 1.9
