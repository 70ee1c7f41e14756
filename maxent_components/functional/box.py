"""Distributions on a bounded action box: the ``tanh`` map with its log-Jacobian, and the clipped normal.

A sampler chooses one space for its box (DESIGN: never a mix): either an unconstrained ``u`` with
``a = tanh``-mapped into the box and the log-Jacobian ``Σ log|da/du|`` in the density
(:func:`tanh_squash`, :func:`tanh_unsquash`, :func:`tanh_log_abs_det_jacobian`), or the box itself
with a normal clipped to it, whose faces carry the clipped mass (:func:`clipped_normal_log_prob`).
"""

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
