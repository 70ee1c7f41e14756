"""Exact composition of soft Q-functions on a finite MDP, and the bounds that hold for it.

Haarnoja et al. (2018), "Composable Deep Reinforcement Learning for Robotic Manipulation",
section 4: with ``Q*_i`` the optimal soft Q-function of reward ``r_i`` (all at temperature ``α``),
weights ``w`` on the simplex, the composed reward ``r_w = Σ_i w_i r_i`` and the composed
Q-function ``Q_w = Σ_i w_i Q*_i``, the Boltzmann policy ``π_w ∝ exp(Q_w / α)`` is a good policy for
``r_w`` without any training on it. Exactly:

1. ``Q_w − C* ≤ Q*_w ≤ Q_w``, where ``Q*_w`` is the optimal soft Q-function of ``r_w`` and ``C*`` is
   the fixed point of ``C(s, a) = γ Σ_{s'} P(s'|s, a) [α J_w(s') + max_{a'} C(s', a')]``, with
   ``J_w(s') = −log Σ_a Π_i π*_i(a|s')^{w_i}`` (:func:`~maxent_components.functional.composition_divergence`,
   half the Rényi divergence of order ½ for two policies at ``w = (½, ½)``).
   Why: ``Q_w`` and ``Q*_w`` both satisfy ``Q = r_w + γ P V``, with ``Σ_i w_i V*_i`` for ``Q_w`` and
   ``V*_w`` for ``Q*_w``. Since ``Σ_i w_i V*_i − V_w = α J_w ≥ 0`` (``V_w``: the soft value of
   ``Q_w``) and ``V_w − V*_w ≤ max_a (Q_w − Q*_w)``, the gap ``Δ = Q_w − Q*_w`` obeys
   ``Δ ≤ γ P (α J_w + max Δ)``, hence ``Δ ≤ C*``; and ``Δ ≥ 0`` because the soft Bellman operator
   of ``r_w`` maps ``Q_w`` below itself (``V_w ≤ Σ_i w_i V*_i``).
2. ``Q*_w − D* ≤ Q^{π_w} ≤ Q*_w``, where ``Q^{π_w}`` is the soft Q-function of ``π_w`` under
   ``r_w`` and ``D*`` is the fixed point of ``D(s, a) = γ Σ_{s'} P(s'|s, a) Σ_{a'} π_w(a'|s')
   [C*(s', a') + D(s', a')]`` (the paper's Theorem 1). Why: ``Σ_a π_w (Q*_w − α log π_w) =
   V_w − E_{π_w}[Q_w − Q*_w] ≥ V*_w − E_{π_w}[C*]``.

When the constituent policies agree everywhere, ``J_w = 0``, so ``C* = D* = 0`` and the composition
is exact: ``Q^{π_w} = Q*_w = Q_w``. :func:`compose_soft_q` computes every term exactly; the property
tests check the inequalities on random MDPs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from maxent_components.functional.soft import composition_divergence
from maxent_components.tabular.solvers import soft_policy_evaluation, soft_policy_improvement, soft_q_iteration

__all__ = ["CompositionResult", "compose_soft_q"]


class CompositionResult(NamedTuple):
    """Outcome of :func:`compose_soft_q` (every Q ``[S, A]``; terminal rows zero).

    Attributes:
        q_constituents: ``Q*_i`` of each reward, stacked ``[n, S, A]``.
        q_composed: ``Q_w = Σ_i w_i Q*_i``.
        log_policy: ``log π_w`` of the composed policy ``π_w ∝ exp(Q_w / α)``.
        q_optimal: ``Q*_w``, the optimal soft Q-function of ``r_w = Σ_i w_i r_i``.
        q_policy: ``Q^{π_w}``, the soft Q-function of the composed policy under ``r_w``.
        divergence: ``J_w(s)`` ``[S]``, the constituents' disagreement (zero at terminal states).
        composed_bound: ``C*``, so that ``Q_w − C* ≤ Q*_w ≤ Q_w``.
        policy_bound: ``D*``, so that ``Q*_w − D* ≤ Q^{π_w} ≤ Q*_w``.
    """

    q_constituents: Tensor
    q_composed: Tensor
    log_policy: Tensor
    q_optimal: Tensor
    q_policy: Tensor
    divergence: Tensor
    composed_bound: Tensor
    policy_bound: Tensor


def compose_soft_q(
    transitions: Tensor,
    rewards: Sequence[Tensor] | Tensor,
    *,
    gamma: float,
    alpha: float,
    weights: Sequence[float] | Tensor | None = None,
    terminal: Tensor | None = None,
    tol: float = 1e-10,
) -> CompositionResult:
    """Solve each reward, compose the soft Q-functions, and compute the exact composed terms and bounds.

    Args:
        transitions: ``P[s, a, s']`` ``[S, A, S]``.
        rewards: ``n ≥ 2`` reward tables ``[S, A]`` (a sequence, or a tensor ``[n, S, A]``).
        gamma: discount in ``[0, 1)``.
        alpha: temperature ``> 0``.
        weights: ``n`` non-negative weights summing to one; equal weights by default.
        terminal: optional boolean ``[S]``, True where the episode ends.
        tol: accuracy of the fixed points (as :func:`~maxent_components.tabular.soft_q_iteration`).
    """
    rewards = torch.stack(list(rewards)) if not isinstance(rewards, Tensor) else rewards
    n = rewards.shape[0]
    if rewards.dim() != 3 or n < 2:
        raise ValueError(f"rewards must be at least two [S, A] tables, got shape {tuple(rewards.shape)}.")
    if not float(alpha) > 0:
        raise ValueError(f"alpha must be > 0 for a composition (the policies are Boltzmann), got {alpha}.")
    w = torch.full((n,), 1.0 / n, dtype=rewards.dtype) if weights is None else torch.as_tensor(weights, dtype=rewards.dtype)
    if w.shape != (n,) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or abs(float(w.sum()) - 1) > 1e-9:
        raise ValueError(f"weights must be {n} non-negative numbers summing to one, got {w.tolist()}.")

    def solve(reward: Tensor, temperature: float) -> Tensor:
        return soft_q_iteration(transitions, reward, gamma=gamma, alpha=temperature, terminal=terminal, tol=tol).q

    q_i = torch.stack([solve(r, alpha) for r in rewards])
    log_pi_i = torch.stack([soft_policy_improvement(q, alpha=alpha) for q in q_i])
    q_w = torch.einsum("i,isa->sa", w, q_i)
    r_w = torch.einsum("i,isa->sa", w, rewards)
    log_pi_w = soft_policy_improvement(q_w, alpha=alpha)
    divergence = composition_divergence(log_pi_i, w)
    if terminal is not None:
        divergence = divergence.masked_fill(terminal, 0.0)
    # C*: value iteration (α = 0) on the "reward" γ P (α J_w); D*: evaluation of π_w on γ P E_π[C*].
    composed_bound = solve(gamma * torch.einsum("sat,t->sa", transitions, alpha * divergence), 0.0)
    expected_c = (log_pi_w.exp() * composed_bound).sum(-1)
    if terminal is not None:
        expected_c = expected_c.masked_fill(terminal, 0.0)
    policy_bound = soft_policy_evaluation(
        transitions, gamma * torch.einsum("sat,t->sa", transitions, expected_c), log_pi_w,
        gamma=gamma, alpha=0.0, terminal=terminal,
    ).q  # fmt: skip
    return CompositionResult(
        q_constituents=q_i,
        q_composed=q_w,
        log_policy=log_pi_w,
        q_optimal=solve(r_w, alpha),
        q_policy=soft_policy_evaluation(transitions, r_w, log_pi_w, gamma=gamma, alpha=alpha, terminal=terminal).q,
        divergence=divergence,
        composed_bound=composed_bound,
        policy_bound=policy_bound,
    )
