"""The change of variables of an SVGD step: the Jacobian of the Stein direction for the RBF kernel,
its trace in closed form, and the log-determinant of one step (Messaoud et al., 2024).

One SVGD step moves a point ``x`` along the direction of a particle set ``{y_j}`` (their scores
``s_j = ∇ log p(y_j)``), ``T(x) = x + ε φ(x)`` with

.. math:: φ(x) = \\frac{1}{M} Σ_j \\big[κ(y_j, x) s_j + ∇_{y_j} κ(y_j, x)\\big], \\qquad κ(y, x) = e^{−‖y − x‖²/h}

(:func:`~maxent_components.functional.svgd_direction`). With the particles held fixed, ``T`` is a
deterministic map of ``x``; for ``ε`` small enough that ``det(I + ε ∇φ) > 0`` everywhere it is
invertible, and a density ``q`` of ``x`` becomes ``q(x) / |det(I + ε ∇φ(x))|`` at ``T(x)``
(S2AC: Messaoud et al., 2024, "S²AC: Energy-Based Reinforcement Learning with Stein Soft Actor
Critic", ICLR: the entropy of an SVGD policy). For the RBF kernel the Jacobian has a closed form (no second
derivative of ``log p``: the scores enter as constants),

.. math:: ∇_x φ(x) = \\frac{2}{M h} Σ_j κ_j \\Big[s_j (y_j − x)^⊤ + I − \\frac{2}{h} (x − y_j)(x − y_j)^⊤\\Big],

and so has its trace (S2AC's closed form for the RBF kernel, here with ``1/M`` and every particle
of the field)

.. math:: \\operatorname{tr} ∇_x φ(x) = \\frac{2}{M h} Σ_j κ_j \\Big[s_j·(y_j − x) + D − \\frac{2}{h}‖x − y_j‖²\\Big].

``log |det(I + ε ∇φ)| = ε tr ∇φ + O(ε²)``: the trace is S2AC's first-order estimate, the
determinant of the closed-form matrix the exact value.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from maxent_components.functional.svgd import _check_bandwidth, rbf_kernel, squared_distances

__all__ = ["svgd_direction_jacobian", "svgd_direction_trace", "svgd_step_log_det"]


def _bandwidth(bandwidth: float | Tensor) -> float | Tensor:
    h = _check_bandwidth(bandwidth)
    return h.unsqueeze(-1).unsqueeze(-1) if isinstance(h, Tensor) else h


def _check_shapes(points: Tensor, scores: Tensor, kernel_particles: Tensor) -> None:
    if scores.shape != kernel_particles.shape:
        raise ValueError(
            f"scores must have the shape of kernel_particles {tuple(kernel_particles.shape)}, "
            f"got {tuple(scores.shape)}."
        )
    if points.dim() < 2 or points.shape[-1] != kernel_particles.shape[-1]:
        raise ValueError(
            f"points must be a set [..., K, D] with the particles' D={kernel_particles.shape[-1]}, "
            f"got {tuple(points.shape)}."
        )


def svgd_direction_trace(
    points: Tensor, scores: Tensor, kernel_particles: Tensor, bandwidth: float | Tensor
) -> Tensor:
    """``tr ∇_x φ(x)`` of the Stein direction of :func:`~maxent_components.functional.svgd_direction`
    at ``points`` ``[..., K, D]``, the particles ``y_j`` (``kernel_particles``, ``[..., M, D]``) and their
    ``scores`` held fixed, in closed form for the RBF kernel (module docstring). Returns ``[..., K]``.

    Costs two ``[K, M]`` products per set, as the direction itself; gradients flow through every input.

    Examples:
        >>> y, s = torch.tensor([[0.0], [1.0]]), torch.tensor([[-1.0], [1.0]])
        >>> x = torch.tensor([[0.5]])  # κ_j = e^{−1/4}, s_j·(y_j − x) = 1/2, (2/h)‖x − y_j‖² = 1/2
        >>> svgd_direction_trace(x, s, y, 1.0)  # (2/2)·2·e^{−1/4}·(1/2 + 1 − 1/2)
        tensor([1.5576])
    """
    _check_shapes(points, scores, kernel_particles)
    h = _bandwidth(bandwidth)
    d2 = squared_distances(kernel_particles, points)  # [..., M, K]
    kappa = torch.exp(-d2 / h)
    along = (scores * kernel_particles).sum(-1, keepdim=True) - scores @ points.transpose(-1, -2)  # s_j·(y_j − x_i)
    dim, num = points.shape[-1], kernel_particles.shape[-2]
    total = (kappa * (along + dim - (2.0 / h) * d2)).sum(-2)  # [..., K]
    outer = h.squeeze(-1) if isinstance(h, Tensor) else h  # [..., 1] against [..., K]
    return total * (2.0 / (num * outer))


def svgd_direction_jacobian(
    points: Tensor, scores: Tensor, kernel_particles: Tensor, bandwidth: float | Tensor
) -> Tensor:
    """``∇_x φ(x)`` (``[..., K, D, D]``, row ``a`` = ``∇_x φ_a``) at ``points`` ``[..., K, D]``, the
    particles and their scores held fixed, in closed form for the RBF kernel (module docstring).

    Builds a ``[..., M, K, D]`` intermediate: meant for small action dimensions.
    """
    _check_shapes(points, scores, kernel_particles)
    h = _bandwidth(bandwidth)
    kappa = rbf_kernel(kernel_particles, points, bandwidth)  # [..., M, K]
    diff = points.unsqueeze(-3) - kernel_particles.unsqueeze(-2)  # x_i − y_j, [..., M, K, D]
    weighted = kappa.unsqueeze(-1) * diff
    # Σ_j κ_j s_j (y_j − x)^⊤ = −Σ_j s_j (κ_j (x − y_j))^⊤
    drive = -torch.einsum("...jd,...jke->...kde", scores, weighted)
    spread = torch.einsum("...jkd,...jke->...kde", weighted, diff)
    mass = kappa.sum(-2)  # Σ_j κ_j, [..., K]
    eye = torch.eye(points.shape[-1], dtype=points.dtype, device=points.device)
    if isinstance(h, Tensor):
        h = h.unsqueeze(-1)  # [..., 1, 1, 1] against [..., K, D, D]
    jac = drive + mass[..., None, None] * eye - (2.0 / h) * spread
    return jac * (2.0 / (kernel_particles.shape[-2] * h))


def svgd_step_log_det(
    points: Tensor,
    scores: Tensor,
    kernel_particles: Tensor,
    bandwidth: float | Tensor,
    step_size: float | Tensor,
    *,
    method: Literal["first_order", "exact"] = "first_order",
) -> Tensor:
    """``log |det(I + ε ∇_x φ(x))|`` of one SVGD step at ``points`` ``[..., K, D]``; returns ``[..., K]``.

    ``method="first_order"``: S2AC's estimate ``ε tr ∇φ`` (:func:`svgd_direction_trace`), off by
    ``O(ε²)``; ``"exact"``: the log-determinant of the closed-form Jacobian
    (:func:`svgd_direction_jacobian`). Subtract it from a point's log-density to carry the density
    through the step.
    """
    if method == "first_order":
        return step_size * svgd_direction_trace(points, scores, kernel_particles, bandwidth)
    if method != "exact":
        raise ValueError(f"method must be 'first_order' or 'exact', got {method!r}.")
    jac = svgd_direction_jacobian(points, scores, kernel_particles, bandwidth)
    eye = torch.eye(points.shape[-1], dtype=points.dtype, device=points.device)
    return torch.linalg.slogdet(eye + step_size * jac).logabsdet
