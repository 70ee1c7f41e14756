"""Kernels and Stein variational gradient descent: pairwise distances, the RBF kernel, median
bandwidth heuristics and the SVGD direction (Liu & Wang, 2016; Haarnoja et al., 2017)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from maxent_components.checks import (
    check_finite,
    check_positive_float,
    check_positive_int,
    data_checks,
    is_traced,
)


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances ``‖x_i − y_j‖²`` of ``x [..., Kx, D]`` and ``y [..., Ky, D]``.

    Returns ``[..., Kx, Ky]``. Computed from the differences, not from ``‖x‖² + ‖y‖² − 2 x·y``, so the
    diagonal of a set against itself is exactly zero (the median heuristics depend on it).
    """
    if x.dim() < 2 or y.dim() < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must be particle sets [..., K, D] with the same D, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}."
        )
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).square().sum(-1)


def rbf_kernel(x: Tensor, y: Tensor, bandwidth: float | Tensor) -> Tensor:
    """RBF kernel matrix ``κ_ij = exp(−‖x_i − y_j‖² / h)`` of ``x [..., Kx, D]`` and ``y [..., Ky, D]``.

    This is the parameterisation of Liu & Wang (2016) and of the soft Q-learning reference code
    (``h`` multiplies the *squared* distance, no factor 2). ``bandwidth`` is a positive float or a
    tensor broadcastable to the leading dimensions ``[...]`` (one ``h`` per particle set). Returns
    ``[..., Kx, Ky]``.
    """
    h = _check_bandwidth(bandwidth)
    if isinstance(h, Tensor):
        h = h.unsqueeze(-1).unsqueeze(-1)
    return torch.exp(-squared_distances(x, y) / h)


def _check_bandwidth(bandwidth: float | Tensor) -> float | Tensor:
    if isinstance(bandwidth, Tensor):
        if data_checks() and not is_traced(bandwidth) and not bool(
            (torch.isfinite(bandwidth) & (bandwidth > 0)).all()
        ):
            raise ValueError(f"bandwidth must be finite and > 0, got {bandwidth.flatten()[:4].tolist()}.")
        return bandwidth
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be finite and > 0, got {bandwidth}.")
    return float(bandwidth)


def median_bandwidth(
    sq_dists: Tensor,
    *,
    formula: Literal["paper", "reference"],
    num_particles: int,
    min_bandwidth: float = 1e-3,
) -> Tensor:
    """Median-heuristic bandwidth ``h`` of :func:`rbf_kernel` from squared distances ``[..., Kx, Ky]``.

    The median runs over all ``N = Kx·Ky`` entries of each matrix (for a particle set against
    itself the zero diagonal is included, as in both reference implementations). The result is
    floored at ``min_bandwidth`` and detached: the bandwidth is a heuristic, not a quantity to
    differentiate. Returns ``[...]``.

    - ``"paper"`` — Liu & Wang (2016), "Stein Variational Gradient Descent: A General Purpose
      Bayesian Inference Algorithm", section 5: ``h = med² / log n`` with ``med`` the median of the
      pairwise *distances* (the usual median: the mean of the two middle values when ``N`` is
      even), chosen so that ``Σ_j κ(x_i, x_j) ≈ n exp(−med²/h) = 1``. (The authors' released code
      differs slightly: it takes ``numpy.median`` of the *squared* distances and divides by
      ``log(n + 1)``, which also works for ``n = 1``; we follow the paper.)
    - ``"reference"`` — the soft Q-learning reference code (haarnoja/softqlearning,
      ``softqlearning/misc/kernel.py``, ``adaptive_isotropic_gaussian_kernel``): ``h = m / log Kx``
      where ``m`` is the ``(⌊N/2⌋ + 1)``-th *largest* squared distance (``tf.nn.top_k`` with
      ``k = N // 2 + 1``, last element) — the median for odd ``N`` and the *lower* of the two middle
      values for even ``N`` — between the fixed particles ``xs`` (``Kx`` of them) and the updated
      particles ``ys``.

    ``num_particles`` is the ``n`` (``Kx``) in the logarithm: the number of particles summed over in
    the SVGD expectation. It must be at least 2 (``log 1 = 0``).

    Examples:
        >>> d2 = torch.tensor([[0.0, 1.0], [4.0, 9.0]])
        >>> median_bandwidth(d2, formula="reference", num_particles=2)  # 1 / log 2
        tensor(1.4427)
        >>> median_bandwidth(d2, formula="paper", num_particles=2)  # ((1 + 2)/2)² / log 2
        tensor(3.2461)
    """
    if formula not in ("paper", "reference"):
        raise ValueError(f"formula must be 'paper' or 'reference', got {formula!r}.")
    if check_positive_int("num_particles", num_particles) < 2:
        raise ValueError(
            f"num_particles must be an integer >= 2 (the heuristic divides by log n), got {num_particles!r}."
        )
    check_positive_float("min_bandwidth", min_bandwidth)
    if sq_dists.dim() < 2:
        raise ValueError(f"sq_dists must have shape [..., Kx, Ky], got {tuple(sq_dists.shape)}.")
    if data_checks():
        check_finite("sq_dists", sq_dists)
    flat = sq_dists.detach().flatten(-2)
    n_entries = flat.shape[-1]
    # Order statistics by selection (kthvalue, 1-based), not a full sort: SVGD calls this every step.
    if formula == "reference":
        med_sq = flat.kthvalue(n_entries - n_entries // 2, dim=-1).values
    else:
        dists = flat.clamp_min(0).sqrt()
        lower = dists.kthvalue((n_entries - 1) // 2 + 1, dim=-1).values
        upper = dists.kthvalue(n_entries // 2 + 1, dim=-1).values if n_entries % 2 == 0 else lower
        med_sq = (0.5 * (lower + upper)).square()
    return (med_sq / math.log(num_particles)).clamp_min(min_bandwidth)


def svgd_direction(
    particles: Tensor, scores: Tensor, kernel_particles: Tensor, bandwidth: float | Tensor
) -> Tensor:
    """Stein variational direction ``Δ(a_i) = E_j[κ(a_j, a_i) ∇_{a_j} log p(a_j) + ∇_{a_j} κ(a_j, a_i)]``.

    Liu & Wang (2016), algorithm 1; Haarnoja et al. (2017), eq. 13. The expectation is the mean over
    the ``kernel_particles`` ``a_j`` (``[..., Kj, D]``, the "fixed" particles, with their scores
    ``∇ log p(a_j)`` in ``scores``); the direction is evaluated at ``particles`` ``a_i``
    (``[..., Ki, D]``, the "updated" particles). For the RBF kernel of :func:`rbf_kernel`,
    ``∇_{a_j} κ(a_j, a_i) = −2 (a_j − a_i) κ_ji / h``: the first term drives particles up the
    log-density, the second pushes them apart. With one particle ``Δ = ∇ log p``.

    Computed with two matrix products (no ``[Kj, Ki, D]`` intermediate). Returns ``[..., Ki, D]``.
    Gradients flow through all inputs; detach them if the direction is to be a constant.
    """
    if scores.shape != kernel_particles.shape:
        raise ValueError(
            f"scores must have the shape of kernel_particles {tuple(kernel_particles.shape)}, "
            f"got {tuple(scores.shape)}."
        )
    if data_checks():
        check_finite("scores", scores)
    kappa = rbf_kernel(kernel_particles, particles, bandwidth)  # [..., Kj, Ki]
    h = _check_bandwidth(bandwidth)
    if isinstance(h, Tensor):
        h = h.unsqueeze(-1).unsqueeze(-1)
    kappa_t = kappa.transpose(-1, -2)  # [..., Ki, Kj]
    drive = kappa_t @ scores
    repulsion = (2.0 / h) * (particles * kappa_t.sum(-1, keepdim=True) - kappa_t @ kernel_particles)
    return (drive + repulsion) / kernel_particles.shape[-2]
