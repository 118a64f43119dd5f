"""One Autoencoder base class; each objective is a small subclass that overrides a hook or two and says what it is.

The capability attributes (has_prior, needs_input_grad, corrupts_input, code_range) are the only way other modules
learn about an objective: nothing outside config.py and this file compares objective names.
"""
from __future__ import annotations

import torch
from torch import nn

from . import losses, nets
from .config import ModelConfig
from .data import corrupt


class Autoencoder(nn.Module):
    """x -> encoder -> z -> decoder -> x_hat, trained to reconstruct x."""

    code_factor = 1  # numbers the encoder emits per latent dimension (the VAE emits mu and logvar)
    has_prior = False  # a prior p(z) to sample from (sample()) and an ELBO to score by
    needs_input_grad = False  # its loss differentiates the code with respect to x, even when only evaluated
    corrupts_input = False  # training corrupts x before encoding (config.noise, config.noise_level)

    @property
    def code_range(self) -> tuple[float | None, float | None]:
        """(low, high) bounds of the code's values; None where unbounded."""
        return None, None

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = nets.build(config, config.latent_dim * self.code_factor)

    def shape(self, x: torch.Tensor) -> torch.Tensor:
        """Accept flat (N, D) or shaped (N, *input_shape) input."""
        return x.reshape(-1, *self.config.input_shape)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """What training does to the input before encoding: nothing, except for the denoiser."""
        return x

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """(z used for decoding, extras such as mu and logvar)."""
        return self.encoder(x), {}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of x (the posterior mean for a VAE)."""
        z, extras = self.posterior(self.shape(x))
        return extras.get("mu", z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x_hat in [0,1] with the sample's shape."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss_terms(self, x, x_logits, z, extras) -> dict[str, torch.Tensor]:
        """Named loss terms; "loss" is what is minimised, the rest are logged."""
        recon = losses.reconstruction(x_logits, x, self.config.recon)
        return {"loss": recon, "recon": recon}

    def objective(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms on a batch: corrupt (when training), encode, decode, compare with the clean x."""
        x = self.shape(x)
        z, extras = self.posterior(self.corrupt(x) if self.training else x)
        return self.loss_terms(x, self.decoder(z), z, extras)

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())


class Sparse(Autoencoder):
    """Code units are non-negative (ReLU for L1) or in (0,1) (sigmoid for KL) and penalised towards zero."""

    @property
    def code_range(self):
        return (0.0, None) if self.config.sparsity == "l1" else (0.0, 1.0)

    def posterior(self, x):
        h = self.encoder(x)
        return (torch.relu(h) if self.config.sparsity == "l1" else torch.sigmoid(h)), {}

    def loss_terms(self, x, x_logits, z, extras):
        terms = super().loss_terms(x, x_logits, z, extras)
        c = self.config
        s = losses.l1_sparsity(z) if c.sparsity == "l1" else losses.kl_sparsity(z, c.sparsity_target)
        return {**terms, "loss": terms["loss"] + c.sparsity_weight * s, "sparsity": s}


class Denoising(Autoencoder):
    """Sees a corrupted x, must output the clean x."""

    corrupts_input = True

    def corrupt(self, x):
        return corrupt(x, self.config.noise, self.config.noise_level)


class Contractive(Autoencoder):
    """Adds lambda * ||dz/dx||_F^2, so the code ignores small changes of the input."""

    needs_input_grad = True

    def loss_terms(self, x, x_logits, z, extras):
        terms = super().loss_terms(x, x_logits, z, extras)
        jac = losses.jacobian_frobenius(self.encoder, x, exact=nets.ARCHS[self.config.arch].exact_jacobian)
        return {**terms, "loss": terms["loss"] + self.config.contractive_weight * jac, "contractive": jac}


class Variational(Autoencoder):
    """q(z|x) = N(mu, diag(exp(logvar))); z = mu + sigma * eps while training; loss = recon + beta * KL."""

    code_factor = 2
    has_prior = True

    def posterior(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(-12.0, 8.0)  # keeps exp() finite when a student picks a wild learning rate
        z = self.sample_posterior(mu, logvar) if self.training else mu
        return z, {"mu": mu, "logvar": logvar}

    @staticmethod
    def sample_posterior(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                         scale: float = 1.0) -> torch.Tensor:
        """z = mu + scale * sigma * eps with eps ~ N(0, I): the reparameterised draw from q(z|x) (scale 1)."""
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + eps * (scale * (0.5 * logvar).exp())

    def loss_terms(self, x, x_logits, z, extras):
        terms = super().loss_terms(x, x_logits, z, extras)
        kl = losses.kl_normal(extras["mu"], extras["logvar"])
        return {**terms, "loss": terms["loss"] + self.config.beta * kl, "kl": kl}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the prior N(0, temperature^2 I)."""
        z = temperature * torch.randn(n, self.config.latent_dim, generator=generator)
        return self.decode(z)


OBJECTIVE_CLASSES: dict[str, type[Autoencoder]] = {
    "vanilla": Autoencoder, "sparse": Sparse, "denoising": Denoising,
    "contractive": Contractive, "variational": Variational,
}


def objective_class(config: ModelConfig) -> type[Autoencoder]:
    """The class a config builds: read its capabilities without building the nets."""
    return OBJECTIVE_CLASSES[config.objective]


def build(config: ModelConfig) -> Autoencoder:
    """A fresh model for a config."""
    return objective_class(config)(config)
