"""Bounded action boxes through ``tanh`` and Langevin dynamics (ULA and MALA) on a log-density."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def tanh_squash(u: Tensor, low: Tensor | float, high: Tensor | float) -> Tensor:
    """Map ``u ∈ R`` to the box: ``a = low + (high − low)(tanh(u) + 1)/2``, elementwise.

    The result is clamped to ``[low, high]``: once ``tanh u`` rounds to ±1 the affine map can
    overshoot a bound by one ulp.
    """
    a = low + (high - low) * (torch.tanh(u) + 1) / 2
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        low_t, high_t = torch.as_tensor(low, dtype=a.dtype), torch.as_tensor(high, dtype=a.dtype)
        return torch.minimum(torch.maximum(a, low_t), high_t)
    return a.clamp(low, high)


def tanh_unsquash(a: Tensor, low: Tensor | float, high: Tensor | float, *, eps: float = 1e-6) -> Tensor:
    """Inverse of :func:`tanh_squash`, with ``tanh u`` clamped to ``[−1 + eps, 1 − eps]``.

    The clamp keeps actions lying exactly on the boundary finite (``|u| ≤ atanh(1 − eps)``).
    """
    v = (2 * (a - low) / (high - low) - 1).clamp(-1 + eps, 1 - eps)
    return torch.atanh(v)


def tanh_log_abs_det_jacobian(u: Tensor, low: Tensor | float, high: Tensor | float) -> Tensor:
    """Elementwise ``log |da/du| = log((high − low)/2) + log(1 − tanh² u)`` of :func:`tanh_squash`.

    Uses ``log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u))``, finite for every finite ``u`` (the
    naive form is ``−inf`` once ``tanh u`` rounds to ±1, at ``|u| ≈ 9`` in float32). Sum over the
    event dimensions for the log-determinant.
    """
    half_width = (high - low) / 2
    log_half_width = half_width.log() if isinstance(half_width, Tensor) else math.log(half_width)
    return log_half_width + 2 * (math.log(2.0) - u - torch.nn.functional.softplus(-2 * u))


def normal_log_density(x: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """Elementwise ``log N(x; μ, σ²) = −½ ((x − μ)/σ)² − log σ − ½ log 2π``."""
    return -0.5 * ((x - loc) / scale).square() - scale.log() - 0.5 * math.log(2 * math.pi)


def clipped_normal_log_prob(a: Tensor, loc: Tensor, scale: Tensor, low: Tensor | float, high: Tensor | float) -> Tensor:
    """Elementwise ``log π(a)`` of ``a = clip(u, low, high)``, ``u ∼ N(loc, scale²)`` (a censored normal).

    The law of ``a`` has a density on the open interval and atoms on the bounds, so ``π`` is a
    density with respect to Lebesgue measure plus a unit point mass at each bound:

    .. math:: \\log π(a) = \\begin{cases} \\log Φ((low − μ)/σ) & a = low \\\\
              \\log N(a; μ, σ²) & low < a < high \\\\ \\log Φ((μ − high)/σ) & a = high \\end{cases}

    (Tobin, 1958, "Estimation of Relationships for Limited Dependent Variables"). Unlike the density
    of a tanh-squashed normal, it is bounded by ``0`` on the bounds, so a likelihood-based fit cannot
    gain by piling mass at the edge of the box. ``Φ`` is evaluated as ``log_ndtr`` (finite far in the
    tails). Sum over the event dimensions for a vector action.
    """
    log_density = normal_log_density(a, loc, scale)
    at_low = torch.special.log_ndtr((low - loc) / scale)
    at_high = torch.special.log_ndtr((loc - high) / scale)
    return torch.where(a <= low, at_low, torch.where(a >= high, at_high, log_density))


def langevin_step(x: Tensor, score: Tensor, step_size: float | Tensor, noise: Tensor) -> Tensor:
    """One Langevin proposal ``x' = x + ε ∇ log p(x) + √(2ε) ξ`` with ``ξ ∼ N(0, I)`` given as ``noise``.

    Euler–Maruyama discretisation of the Langevin diffusion ``dx = ∇ log p dt + √2 dW`` whose
    stationary law is ``p`` (Grenander & Miller, 1994; Roberts & Tweedie, 1996). Used alone it is
    the unadjusted Langevin algorithm (ULA, ``O(ε)`` bias); followed by the Metropolis–Hastings
    test of :func:`mala_log_acceptance` it is MALA, which leaves ``p`` exactly invariant.
    """
    return x + step_size * score + torch.sqrt(2 * torch.as_tensor(step_size, dtype=x.dtype)) * noise


def langevin_proposal_log_prob(
    x_new: Tensor, x: Tensor, score_x: Tensor, step_size: float | Tensor
) -> Tensor:
    """``log q(x'|x) = log N(x'; x + ε ∇ log p(x), 2ε I)``, summed over the last dimension."""
    eps = torch.as_tensor(step_size, dtype=x.dtype)
    mean = x + eps * score_x
    dim = x.shape[-1]
    return -(x_new - mean).square().sum(-1) / (4 * eps) - 0.5 * dim * torch.log(4 * math.pi * eps)


def mala_log_acceptance(
    log_p_x: Tensor,
    log_p_new: Tensor,
    x: Tensor,
    x_new: Tensor,
    score_x: Tensor,
    score_new: Tensor,
    step_size: float | Tensor,
) -> Tensor:
    """Log Metropolis–Hastings acceptance probability of a Langevin proposal (MALA).

    ``log A = min(0, log p(x') + log q(x|x') − log p(x) − log q(x'|x))`` with ``q`` the Gaussian of
    :func:`langevin_proposal_log_prob` (Roberts & Tweedie, 1996). Points are ``[..., D]``,
    log-densities ``[...]``; ``p`` may be unnormalised.
    """
    forward = langevin_proposal_log_prob(x_new, x, score_x, step_size)
    backward = langevin_proposal_log_prob(x, x_new, score_new, step_size)
    return (log_p_new + backward - log_p_x - forward).clamp(max=0.0)
