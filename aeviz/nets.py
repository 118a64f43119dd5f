"""The architecture registry: encoder and decoder builders by name. Decoders return logits; the model applies the
sigmoid. To add an architecture, write its two builders and a check, and add one Arch entry to ARCHS."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # config validates against this registry, so nets must not import config at run time
    from .config import ModelConfig


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return layers[:-1]  # the last layer stays linear


def mlp_encoder(c: ModelConfig, out_dim: int) -> nn.Module:
    """Flatten, then Linear-ReLU stack down to out_dim."""
    return nn.Sequential(nn.Flatten(), *_mlp([c.n_inputs, *c.hidden, out_dim]))


def mlp_decoder(c: ModelConfig) -> nn.Module:
    """Linear-ReLU stack from z up to the sample, reshaped to input_shape."""
    return nn.Sequential(*_mlp([c.latent_dim, *reversed(c.hidden), c.n_inputs]), nn.Unflatten(1, c.input_shape))


def conv_encoder(c: ModelConfig, out_dim: int) -> nn.Module:
    """Two stride-2 convolutions (H/4 x W/4 feature maps), then a linear layer."""
    ch, h, w = c.input_shape
    c1, c2 = c.hidden
    return nn.Sequential(
        nn.Conv2d(ch, c1, 4, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(c2 * (h // 4) * (w // 4), out_dim))


def conv_decoder(c: ModelConfig) -> nn.Module:
    """A linear layer to H/4 x W/4 maps, then two stride-2 transposed convolutions."""
    ch, h, w = c.input_shape
    c1, c2 = c.hidden
    return nn.Sequential(
        nn.Linear(c.latent_dim, c2 * (h // 4) * (w // 4)), nn.ReLU(), nn.Unflatten(1, (c2, h // 4, w // 4)),
        nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c1, ch, 4, 2, 1))


def _steps(c: ModelConfig) -> tuple[int, int]:
    """(time steps, features per step): images are read row by row."""
    return c.input_shape[-2], c.input_shape[-1] * (c.input_shape[0] if len(c.input_shape) == 3 else 1)


class RNNEncoder(nn.Module):
    """Read the sequence; the last hidden state maps to the code."""

    def __init__(self, c: ModelConfig, out_dim: int):
        super().__init__()
        self.steps, feats = _steps(c)
        cell = nn.GRU if c.rnn_cell == "gru" else nn.LSTM
        self.rnn = cell(feats, c.hidden[0], batch_first=True)
        self.head = nn.Linear(c.hidden[0], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(x.reshape(x.shape[0], self.steps, -1))
        h = h[0] if isinstance(h, tuple) else h  # LSTM returns (h, c)
        return self.head(h[-1])


class RNNDecoder(nn.Module):
    """Feed z at every step; the state starts from z too; each step emits one row of logits."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.steps, feats = _steps(c)
        self.shape = c.input_shape
        self.lstm = c.rnn_cell == "lstm"
        self.init = nn.Linear(c.latent_dim, c.hidden[0])
        self.rnn = (nn.LSTM if self.lstm else nn.GRU)(c.latent_dim, c.hidden[0], batch_first=True)
        self.out = nn.Linear(c.hidden[0], feats)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h0 = torch.tanh(self.init(z)).unsqueeze(0)
        state = (h0, torch.zeros_like(h0)) if self.lstm else h0
        y, _ = self.rnn(z.unsqueeze(1).expand(-1, self.steps, -1), state)
        return self.out(y).reshape(z.shape[0], *self.shape)


def _check_conv(c: ModelConfig) -> str | None:
    if not (len(c.input_shape) == 3 and c.input_shape[1] % 4 == 0 and c.input_shape[2] % 4 == 0):
        return f"The convolutional nets need images (C, H, W) with H and W divisible by 4, not {c.input_shape}."
    if len(c.hidden) != 2:
        return f"The convolutional nets take two channel counts, not {c.hidden}."
    return None


def _check_rnn(c: ModelConfig) -> str | None:
    if len(c.input_shape) < 2:
        return f"The recurrent nets need sequences (steps, features), not {c.input_shape}."
    if len(c.hidden) != 1:
        return f"The recurrent nets take one hidden size, not {c.hidden}."
    return None


@dataclass(frozen=True)
class Arch:
    """One architecture: how to build its nets and what it is."""

    encoder: Callable[[ModelConfig, int], nn.Module]  # (config, numbers out) -> encoder
    decoder: Callable[[ModelConfig], nn.Module]  # config -> decoder emitting logits of input_shape
    hidden: tuple[int, ...]  # default hidden sizes (aeviz.config_for)
    tiny: tuple[int, ...]  # a few-hundred-parameter size for tests
    exact_jacobian: bool  # the contractive penalty can afford the exact encoder Jacobian (else Hutchinson's estimate)
    dense: bool  # the first encoder and last decoder layers are Linear over the whole sample: their weights are images
    check: Callable[[ModelConfig], str | None] = lambda c: None  # one sentence when a config does not fit, else None


ARCHS: dict[str, Arch] = {
    "mlp": Arch(mlp_encoder, mlp_decoder, hidden=(512, 256), tiny=(16, 8), exact_jacobian=True, dense=True),
    "conv": Arch(conv_encoder, conv_decoder, hidden=(32, 64), tiny=(4, 8), exact_jacobian=False, dense=False,
                 check=_check_conv),
    "rnn": Arch(RNNEncoder, RNNDecoder, hidden=(128,), tiny=(16,), exact_jacobian=False, dense=False,
                check=_check_rnn),
}


def arch(name: str) -> Arch:
    """The registry entry of an architecture; an unknown name is a ValueError naming the known ones."""
    if name not in ARCHS:
        raise ValueError(f"Unknown architecture '{name}'; choose one of {', '.join(ARCHS)}.")
    return ARCHS[name]


def build(c: ModelConfig, code_dim: int) -> tuple[nn.Module, nn.Module]:
    """(encoder producing code_dim numbers, decoder producing logits of input_shape)."""
    a = arch(c.arch)
    return a.encoder(c, code_dim), a.decoder(c)
