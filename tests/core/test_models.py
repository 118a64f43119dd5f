import dataclasses

import pytest
import torch
from torch import nn

import aeviz
from aeviz import nets
from aeviz.config import ARCHS, OBJECTIVES, ConfigError, ModelConfig
from aeviz.data import load
from aeviz.models import OBJECTIVE_CLASSES, Autoencoder, Variational, build, objective_class

EXTRA_TERM = {"sparse": "sparsity", "contractive": "contractive", "variational": "kl"}
PAIRS = [(o, a) for o in OBJECTIVES for a in ARCHS]  # both lists come from the registries: new entries join


def small(objective: str, arch: str, **kw) -> ModelConfig:
    """A few-hundred-parameter model on 8x8 digits (the architecture's tiny size)."""
    return ModelConfig(objective=objective, arch=arch, latent_dim=3, dataset="digits", input_shape=(1, 8, 8),
                       hidden=nets.ARCHS[arch].tiny, **kw)


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


def test_the_registries_are_the_lists():
    assert tuple(nets.ARCHS) == ARCHS and set(OBJECTIVE_CLASSES) == set(OBJECTIVES)


CAPABILITIES = {  # objective -> (has_prior, needs_input_grad, corrupts_input)
    "vanilla": (False, False, False), "sparse": (False, False, False), "denoising": (False, False, True),
    "contractive": (False, True, False), "variational": (True, False, False),
}


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_says_what_it_is(objective):
    model = build(small(objective, "mlp"))
    cls = objective_class(model.config)
    assert (model.has_prior, model.needs_input_grad, model.corrupts_input) == CAPABILITIES[objective]
    assert (cls.has_prior, cls.needs_input_grad, cls.corrupts_input) == CAPABILITIES[objective]
    assert hasattr(model, "sample") == model.has_prior and hasattr(model, "sample_posterior") == model.has_prior
    x = load("digits").x_train[:8]
    assert (model.train().corrupt(x) is x) != model.corrupts_input


@pytest.mark.parametrize("objective, sparsity, bounds", [
    ("vanilla", "l1", (None, None)), ("variational", "l1", (None, None)),
    ("sparse", "l1", (0.0, None)), ("sparse", "kl", (0.0, 1.0)),
])
def test_code_range_bounds_what_the_encoder_can_emit(objective, sparsity, bounds, x):
    model = fresh(objective, "mlp", sparsity=sparsity)
    assert model.code_range == bounds
    z = model.encode(x * 50.0)
    low, high = bounds
    assert low is None or z.min() >= low
    assert high is None or z.max() <= high


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_evaluate_enables_autograd_exactly_for_models_that_need_the_input_gradient(objective, monkeypatch, x):
    from aeviz.train import evaluate

    model, modes = fresh(objective, "conv"), []
    real = model.objective
    monkeypatch.setattr(model, "objective", lambda xb: modes.append(torch.is_grad_enabled()) or real(xb))
    terms = evaluate(model, x)
    assert modes == [model.needs_input_grad] and all(v == v for v in terms.values())


def test_sample_posterior_is_the_reparameterised_draw():
    mu, logvar = torch.tensor([[1.0, -2.0]]).expand(20000, -1), torch.tensor([[0.0, 2 * torch.log(torch.tensor(3.0))]])
    z = Variational.sample_posterior(mu, logvar.expand(20000, -1), torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 3.0]), atol=0.05, rtol=0)
    again = Variational.sample_posterior(mu, logvar.expand(20000, -1), torch.Generator().manual_seed(0), scale=0.5)
    torch.testing.assert_close(again - mu, 0.5 * (z - mu))


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_entry_builds_its_nets_and_fits_its_defaults(arch):
    spec = nets.ARCHS[arch]
    c = small("vanilla", arch)
    encoder, decoder = nets.build(c, 5)
    assert isinstance(encoder, nn.Module) and isinstance(decoder, nn.Module)
    assert encoder(torch.rand(2, 1, 8, 8)).shape == (2, 5) and decoder(torch.rand(2, 3)).shape == (2, 1, 8, 8)
    assert aeviz.config_for("digits", arch=arch).hidden == spec.hidden
    assert isinstance(spec.exact_jacobian, bool) and isinstance(spec.dense, bool)


def test_an_unknown_architecture_is_a_clear_error():
    with pytest.raises(ConfigError, match="Unknown architecture 'transformer'; choose one of mlp, conv, rnn."):
        ModelConfig(arch="transformer")
    with pytest.raises(ValueError, match="Unknown architecture 'transformer'"):
        nets.arch("transformer")
    bypass = dataclasses.replace(ModelConfig(), hidden=(4,))  # a config can only name a known arch
    object.__setattr__(bypass, "arch", "transformer")
    with pytest.raises(ValueError, match="Unknown architecture 'transformer'"):
        build(bypass)


def test_a_new_architecture_needs_only_a_registry_entry(monkeypatch, x):
    def encoder(c, out_dim):
        return nn.Sequential(nn.Flatten(), nn.Linear(c.n_inputs, out_dim))

    def decoder(c):
        return nn.Sequential(nn.Linear(c.latent_dim, c.n_inputs), nn.Unflatten(1, c.input_shape))

    monkeypatch.setitem(nets.ARCHS, "linear", nets.Arch(encoder, decoder, hidden=(), tiny=(), exact_jacobian=True,
                                                       dense=True))
    for objective in OBJECTIVES:
        model = build(small(objective, "linear"))
        assert model.objective(x)["loss"].isfinite()
    assert aeviz.config_for("digits", arch="linear").hidden == ()


def test_an_architecture_check_refuses_configs_that_do_not_fit():
    with pytest.raises(ConfigError, match=r"need images \(C, H, W\) with H and W divisible by 4"):
        ModelConfig(arch="conv", input_shape=(1, 6, 6), hidden=(4, 8))
    with pytest.raises(ConfigError, match="The recurrent nets take one hidden size"):
        ModelConfig(arch="rnn", input_shape=(8, 8), hidden=(4, 8))


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
