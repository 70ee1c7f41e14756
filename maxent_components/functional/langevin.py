"""Langevin dynamics on a log-density: the unadjusted step (ULA) and the Metropolis-adjusted one (MALA)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


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
