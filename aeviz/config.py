"""Frozen configs: hashable cache keys, stored inside every checkpoint."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from . import nets

OBJECTIVES = ("vanilla", "sparse", "denoising", "contractive", "variational")
ARCHS = tuple(nets.ARCHS)  # the architecture registry is the one list
NOISES = ("gaussian", "salt-pepper", "masking")
SPARSITIES = ("l1", "kl")
RECONS = ("bce", "mse")
CELLS = ("gru", "lstm")


class ConfigError(ValueError):
    """A hyper-parameter is out of range; the message is one sentence for the UI."""


@dataclass(frozen=True)
class ModelConfig:
    """What to build: an objective times an architecture, plus their knobs."""

    objective: str = "vanilla"  # what the loss adds or the input suffers: one of OBJECTIVES
    arch: str = "mlp"  # which encoder/decoder nets: one of ARCHS
    latent_dim: int = 2  # size of the code z
    dataset: str = "mnist"  # name in the data registry the model was made for
    input_shape: tuple[int, ...] = (1, 28, 28)  # one sample's shape, so a checkpoint needs no dataset
    hidden: tuple[int, ...] = (512, 256)  # MLP widths / conv channels / (rnn hidden size,)
    recon: str = "bce"  # reconstruction loss: Bernoulli (bce) for [0,1] pixels, Gaussian (mse) otherwise
    rnn_cell: str = "gru"  # recurrent cell for arch="rnn"
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 is the ELBO
    sparsity: str = "l1"  # l1 on the code, or kl of mean activation to sparsity_target
    sparsity_weight: float = 1e-3  # how hard sparsity is pushed
    sparsity_target: float = 0.05  # rho: the mean activation the kl penalty aims for
    noise: str = "gaussian"  # corruption the denoiser learns to undo
    noise_level: float = 0.5  # sigma for gaussian, fraction of pixels otherwise
    contractive_weight: float = 1e-3  # lambda on the squared Frobenius norm of the encoder Jacobian

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        validate_model(self)

    @property
    def n_inputs(self) -> int:
        """Number of values in one sample."""
        n = 1
        for s in self.input_shape:
            n *= s
        return n

    @property
    def label(self) -> str:
        """Short human name, e.g. 'variational conv, z=16'."""
        return f"{self.objective} {self.arch}, z={self.latent_dim}"


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser settings, seed and which training samples to use."""

    epochs: int = 20  # passes over the training set
    batch_size: int = 128  # samples per optimiser step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # seeds init, batching and noise: same config, same weights
    weight_decay: float = 0.0  # L2 on the weights (Adam's decoupled form is not needed here)
    normal_classes: tuple[int, ...] = ()  # train only on these labels (one-class anomaly detection)
    max_train: int = 0  # use only the first n training samples; 0 means all
    eval_every: int = 1  # epochs between test-set evaluations; 0 skips them (benchmarks)

    def __post_init__(self):
        object.__setattr__(self, "normal_classes", tuple(int(c) for c in self.normal_classes))
        validate_train(self)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate_model(c: ModelConfig) -> None:
    """Raise ConfigError with one sentence when a model setting makes no sense."""
    _check(c.objective in OBJECTIVES, f"Unknown objective '{c.objective}'; choose one of {', '.join(OBJECTIVES)}.")
    _check(c.arch in nets.ARCHS, f"Unknown architecture '{c.arch}'; choose one of {', '.join(nets.ARCHS)}.")
    _check(1 <= c.latent_dim <= 1024, f"Latent size must be between 1 and 1024, not {c.latent_dim}.")
    _check(all(h >= 1 for h in c.hidden), f"Hidden sizes must be positive, not {c.hidden}.")
    _check(c.recon in RECONS, f"Unknown reconstruction loss '{c.recon}'; choose bce or mse.")
    _check(c.rnn_cell in CELLS, f"Unknown recurrent cell '{c.rnn_cell}'; choose gru or lstm.")
    _check(0.0 <= c.beta <= 1000.0, f"beta must be between 0 and 1000, not {c.beta}.")
    _check(c.sparsity in SPARSITIES, f"Unknown sparsity penalty '{c.sparsity}'; choose l1 or kl.")
    _check(0.0 <= c.sparsity_weight <= 100.0, f"Sparsity weight must be between 0 and 100, not {c.sparsity_weight}.")
    _check(0.0 < c.sparsity_target < 1.0, f"Sparsity target rho must lie strictly between 0 and 1, not {c.sparsity_target}.")
    _check(c.noise in NOISES, f"Unknown noise '{c.noise}'; choose one of {', '.join(NOISES)}.")
    _check(0.0 <= c.noise_level <= 2.0, f"Noise level must be between 0 and 2, not {c.noise_level}.")
    _check(0.0 <= c.contractive_weight <= 100.0,
           f"Contractive weight must be between 0 and 100, not {c.contractive_weight}.")
    _check(len(c.input_shape) >= 1 and c.n_inputs >= 1, f"Input shape {c.input_shape} is empty.")
    problem = nets.ARCHS[c.arch].check(c)
    _check(problem is None, problem or "")


def validate_train(c: TrainConfig) -> None:
    """Raise ConfigError with one sentence when a training setting makes no sense."""
    _check(1 <= c.epochs <= 10_000, f"Epochs must be between 1 and 10000, not {c.epochs}.")
    _check(1 <= c.batch_size <= 65_536, f"Batch size must be between 1 and 65536, not {c.batch_size}.")
    _check(0.0 < c.lr <= 10.0 and c.lr == c.lr, f"Learning rate must be between 0 and 10, not {c.lr}.")
    _check(0.0 <= c.weight_decay <= 1.0, f"Weight decay must be between 0 and 1, not {c.weight_decay}.")
    _check(c.eval_every >= 0, f"eval_every must be 0 (never) or a positive number of epochs, not {c.eval_every}.")
    _check(c.max_train >= 0, f"max_train must be 0 (all) or a positive count, not {c.max_train}.")


def to_json(config) -> str:
    """Serialise a config dataclass to JSON (tuples become lists)."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def from_dict(cls, d: dict):
    """Build a config from a dict, ignoring unknown keys from other aeviz versions."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})
