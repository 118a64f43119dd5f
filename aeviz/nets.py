"""Encoder and decoder builders by architecture. Decoders return logits; the model applies the sigmoid."""
from __future__ import annotations

import torch
from torch import nn

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


def build(c: ModelConfig, code_dim: int) -> tuple[nn.Module, nn.Module]:
    """(encoder producing code_dim numbers, decoder producing logits of input_shape)."""
    if c.arch == "mlp":
        return mlp_encoder(c, code_dim), mlp_decoder(c)
    if c.arch == "conv":
        return conv_encoder(c, code_dim), conv_decoder(c)
    return RNNEncoder(c, code_dim), RNNDecoder(c)
