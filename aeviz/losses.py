"""Pure loss functions. Each returns a scalar: summed over a sample's values, averaged over the batch."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def neg_log_likelihood(logits: torch.Tensor, x: torch.Tensor, kind: str = "bce", normalised: bool = False) -> torch.Tensor:
    """-log p(x|z) of each sample (shape (N,)), in nats, for the decoder's logits: the one likelihood that training
    and the ELBO share.

    "bce": Bernoulli, the cross-entropy on logits. "mse": the squared error of sigmoid(logits), which is a Gaussian
    with sigma^2 = 1/2: -log p(x|z) = sum (x - x_hat)^2 + (D/2) log(pi). The constant does not change a gradient, so
    the training loss leaves it out; normalised=True adds it, for a true log-likelihood (the ELBO).
    """
    if kind == "bce":
        per_value = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif kind == "mse":
        per_value = (torch.sigmoid(logits) - x).square()
    else:
        raise ValueError(f"Unknown reconstruction loss '{kind}'; choose bce or mse.")
    nll = per_value.flatten(1).sum(1)
    if normalised and kind == "mse":
        nll = nll + 0.5 * per_value[0].numel() * math.log(math.pi)
    return nll


def reconstruction(logits: torch.Tensor, x: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """The training loss's -log p(x|z) (without the Gaussian's constant), averaged over the batch."""
    return neg_log_likelihood(logits, x, kind).mean()


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor, per_dim: bool = False) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in nats, summed over z, averaged over the batch; per_dim=True gives the
    (N, latent_dim) terms whose sums those are."""
    twice = mu.square() + logvar.exp() - 1.0 - logvar
    return 0.5 * twice if per_dim else 0.5 * twice.sum(1).mean()


def l1_sparsity(z: torch.Tensor) -> torch.Tensor:
    """Mean L1 norm of the code: pushes most units to exactly zero."""
    return z.abs().sum(1).mean()


def kl_sparsity(z: torch.Tensor, rho: float) -> torch.Tensor:
    """Sum over units of KL(Bernoulli(rho) || Bernoulli(mean activation)); z must lie in (0,1)."""
    rho_hat = z.mean(0).clamp(1e-6, 1 - 1e-6)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def jacobian_frobenius(encode, x: torch.Tensor, exact: bool) -> torch.Tensor:
    """Mean over the batch of ||d encode(x) / dx||_F^2 (exact by vmap-jacrev, or Hutchinson's estimate).

    Hutchinson: for v ~ N(0, I) in code space, E ||J^T v||^2 = trace(J J^T) = ||J||_F^2, one backward pass.
    """
    if exact:
        from torch.func import jacrev, vmap

        jac = vmap(jacrev(lambda xi: encode(xi.unsqueeze(0)).squeeze(0)))(x)
        return jac.square().flatten(1).sum(1).mean()
    keep_graph = torch.is_grad_enabled()  # so the penalty can be trained through
    with torch.inference_mode(False), torch.enable_grad():  # J^T v needs autograd even when scoring under no_grad
        x = x.detach().clone().requires_grad_(True)
        z = encode(x)
        v = torch.randn_like(z)
        (g,) = torch.autograd.grad((z * v).sum(), x, create_graph=keep_graph)
    return g.square().flatten(1).sum(1).mean()
