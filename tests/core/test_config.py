import dataclasses
import json

import pytest

import aeviz
from aeviz.config import ARCHS, OBJECTIVES, ConfigError, ModelConfig, TrainConfig, from_dict, to_json


def test_defaults_are_valid_frozen_and_hashable():
    mc, tc = ModelConfig(), TrainConfig()
    assert {mc: 1, tc: 2}[ModelConfig()] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        mc.latent_dim = 3


def test_sequences_become_int_tuples_so_configs_stay_hashable():
    mc = ModelConfig(input_shape=[1, 28, 28], hidden=[64.0, 32])
    tc = TrainConfig(normal_classes=[1, 7])
    assert mc.input_shape == (1, 28, 28) and mc.hidden == (64, 32) and tc.normal_classes == (1, 7)
    assert hash(mc) == hash(ModelConfig(input_shape=(1, 28, 28), hidden=(64, 32)))


def test_n_inputs_and_label():
    mc = ModelConfig(objective="variational", arch="conv", latent_dim=16, hidden=(32, 64))
    assert mc.n_inputs == 784
    assert mc.label == "variational conv, z=16"


@pytest.mark.parametrize("kwargs, message", [
    ({"objective": "magic"}, "Unknown objective 'magic'; choose one of vanilla, sparse"),
    ({"arch": "transformer"}, "Unknown architecture 'transformer'"),
    ({"latent_dim": 0}, "Latent size must be between 1 and 1024, not 0."),
    ({"hidden": (16, 0)}, "Hidden sizes must be positive"),
    ({"beta": -1.0}, "beta must be between 0 and 1000, not -1.0."),
    ({"sparsity_target": 1.0}, "Sparsity target rho must lie strictly between 0 and 1"),
    ({"noise_level": 3.0}, "Noise level must be between 0 and 2"),
    ({"arch": "conv", "input_shape": (1, 10, 10), "hidden": (8, 16)}, "H and W divisible by 4"),
    ({"arch": "conv", "hidden": (8,)}, "two channel counts"),
    ({"arch": "rnn", "input_shape": (3,), "hidden": (8,)}, "need sequences"),
    ({"arch": "rnn", "hidden": (8, 8)}, "one hidden size"),
])
def test_model_config_rejects_nonsense_with_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        ModelConfig(**kwargs)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "Epochs must be between 1 and 10000, not 0."),
    ({"batch_size": 0}, "Batch size must be between 1 and 65536"),
    ({"lr": 0.0}, "Learning rate must be between 0 and 10, not 0.0."),
    ({"lr": float("nan")}, "Learning rate must be between 0 and 10, not nan."),
    ({"weight_decay": 2.0}, "Weight decay must be between 0 and 1"),
    ({"eval_every": -1}, "eval_every must be 0"),
    ({"max_train": -5}, "max_train must be 0"),
])
def test_train_config_rejects_nonsense_with_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_json_round_trip_and_unknown_keys_from_other_versions():
    mc = ModelConfig(objective="sparse", sparsity="kl", hidden=(64, 32), input_shape=(1, 8, 8))
    d = json.loads(to_json(mc))
    assert d["hidden"] == [64, 32]
    assert from_dict(ModelConfig, d) == mc
    assert from_dict(ModelConfig, {**d, "added_in_v9": 1}) == mc
    tc = TrainConfig(normal_classes=(3,), seed=7)
    assert from_dict(TrainConfig, json.loads(to_json(tc))) == tc


@pytest.mark.parametrize("dataset, shape, recon", [
    ("digits", (1, 8, 8), "bce"), ("swiss-roll", (3,), "mse"), ("signals", (128, 1), "mse"),
])
def test_config_for_takes_shape_and_loss_from_the_dataset(dataset, shape, recon):
    mc = aeviz.config_for(dataset, latent_dim=3)
    assert (mc.dataset, mc.input_shape, mc.recon, mc.latent_dim) == (dataset, shape, recon, 3)


def test_config_for_picks_hidden_sizes_per_architecture_and_keeps_overrides():
    assert aeviz.config_for("digits").hidden == (512, 256)
    assert aeviz.config_for("digits", arch="conv").hidden == (32, 64)
    assert aeviz.config_for("digits", arch="rnn").hidden == (128,)
    assert aeviz.config_for("digits", arch="rnn", hidden=(7,)).hidden == (7,)


def test_every_objective_and_architecture_is_a_valid_config():
    for objective in OBJECTIVES:
        for arch in ARCHS:
            assert aeviz.config_for("digits", objective=objective, arch=arch).label.startswith(objective)
