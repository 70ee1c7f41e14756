"""Exact soft dynamic programming on a finite MDP given as dense tensors.

The soft Bellman optimality operator, soft Q-iteration (its fixed point), exact soft policy
evaluation (a linear solve) and soft policy improvement; see :mod:`maxent_components.tabular` for
the conventions (``transitions[s, a, s']``, ``rewards[s, a]``, ``terminal[s]``) and the equations.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple

import torch
from torch import Tensor

from maxent_components.checks import check_finite
from maxent_components.functional import (
    boltzmann_log_prob,
    check_alpha,
    expected_soft_value,
    soft_value,
)

__all__ = [
    "SoftPolicyEvaluationResult",
    "SoftQIterationResult",
    "soft_bellman_operator",
    "soft_policy_evaluation",
    "soft_policy_improvement",
    "soft_q_iteration",
]


class SoftQIterationResult(NamedTuple):
    """Outcome of :func:`soft_q_iteration`.

    Attributes:
        q: the soft Q-function ``[S, A]`` (rows of terminal states are zero).
        v: the soft value ``[S]`` (zero at terminal states).
        log_policy: log-probabilities ``[S, A]`` of the Boltzmann policy of ``q``
            (uniform over the maximisers at ``α = 0``; uniform at terminal states).
        iterations: the number of applications of the soft Bellman operator that produced ``q``.
        converged: whether the stopping criterion was met within ``max_iterations``.
        residual: ``‖Q_k − Q_{k−1}‖_∞`` of the last iteration; by contraction,
            ``‖q − Q*‖_∞ ≤ γ / (1 − γ) · residual``.
    """

    q: Tensor
    v: Tensor
    log_policy: Tensor
    iterations: int
    converged: bool
    residual: float


class SoftPolicyEvaluationResult(NamedTuple):
    """Outcome of :func:`soft_policy_evaluation`: ``q = Q^π`` ``[S, A]`` and ``v = V^π`` ``[S]``."""

    q: Tensor
    v: Tensor


# Rows of P must sum to one up to rounding; float32 Dirichlet rows are off by a few ulps per entry.
_ROW_SUM_ATOL = {torch.float64: 1e-9, torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 1e-2}


def _as_float(name: str, x: float | Tensor) -> float:
    if isinstance(x, Tensor):
        if x.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(x.shape)}.")
        return float(x.detach())
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}.")
    return float(x)


def _check_gamma(gamma: float | Tensor) -> float:
    gamma = _as_float("gamma", gamma)
    if not (0.0 <= gamma < 1.0):
        raise ValueError(f"gamma must lie in [0, 1), got {gamma}.")
    return gamma


def _check_temperature(alpha: float | Tensor) -> float:
    alpha = _as_float("alpha", alpha)
    check_alpha(alpha, allow_zero=True)
    return alpha


def _check_mdp(transitions: Tensor, rewards: Tensor, terminal: Tensor | None) -> None:
    if not isinstance(transitions, Tensor) or not isinstance(rewards, Tensor):
        raise TypeError("transitions and rewards must be torch tensors.")
    if transitions.dim() != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(
            f"transitions must have shape [S, A, S] (P[s, a, s'] = P(s'|s, a)), "
            f"got {tuple(transitions.shape)}."
        )
    num_states, num_actions, _ = transitions.shape
    if num_states == 0 or num_actions == 0:
        raise ValueError(
            f"transitions must have at least one state and one action, got {tuple(transitions.shape)}."
        )
    if not transitions.is_floating_point():
        raise TypeError(f"transitions must be a floating-point tensor, got {transitions.dtype}.")
    if rewards.shape != (num_states, num_actions):
        raise ValueError(
            f"rewards must have shape [S, A] = {(num_states, num_actions)} to match transitions, "
            f"got {tuple(rewards.shape)}."
        )
    if rewards.dtype != transitions.dtype:
        raise TypeError(
            f"rewards and transitions must share a dtype, got {rewards.dtype} and {transitions.dtype}."
        )
    check_finite("transitions", transitions)
    check_finite("rewards", rewards)
    if bool((transitions < 0).any()):
        raise ValueError("transitions must be non-negative probabilities; found negative entries.")
    row_error = (transitions.sum(-1) - 1).abs().max().item()
    if row_error > _ROW_SUM_ATOL.get(transitions.dtype, 1e-5):
        raise ValueError(
            f"every row transitions[s, a, :] must sum to 1; the largest deviation is {row_error:.3g}."
        )
    if terminal is not None:
        if not isinstance(terminal, Tensor) or terminal.dtype != torch.bool:
            raise TypeError("terminal must be a boolean tensor of shape [S] (True = episode ends).")
        if terminal.shape != (num_states,):
            raise ValueError(f"terminal must have shape [S] = ({num_states},), got {tuple(terminal.shape)}.")


def _check_q(q: Tensor, transitions: Tensor, name: str = "q") -> None:
    if not isinstance(q, Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(q).__name__}.")
    if q.shape != transitions.shape[:2]:
        raise ValueError(
            f"{name} must have shape [S, A] = {tuple(transitions.shape[:2])}, got {tuple(q.shape)}."
        )
    if q.dtype != transitions.dtype:
        raise TypeError(f"{name} must have the dtype of transitions ({transitions.dtype}), got {q.dtype}.")


def _check_log_policy(log_policy: Tensor, transitions: Tensor) -> None:
    _check_q(log_policy, transitions, "log_policy")
    if bool(torch.isnan(log_policy).any()) or bool((log_policy == math.inf).any()):
        raise ValueError("log_policy contains NaN or +inf; expected log-probabilities (−inf allowed).")
    norm_error = torch.logsumexp(log_policy, -1).abs().max().item()
    if norm_error > math.sqrt(_ROW_SUM_ATOL.get(log_policy.dtype, 1e-5)):
        raise ValueError(
            f"log_policy rows must be normalised (logsumexp over actions = 0); "
            f"the largest deviation is {norm_error:.3g}."
        )


def _state_values(q: Tensor, alpha: float, terminal: Tensor | None) -> Tensor:
    v = soft_value(q, alpha)
    return v if terminal is None else v.masked_fill(terminal, 0.0)


def _backup(
    v: Tensor, transitions: Tensor, rewards: Tensor, gamma: float, terminal: Tensor | None
) -> Tensor:
    q = rewards + gamma * torch.einsum("sat,t->sa", transitions, v)
    # No action is taken in a terminal state, so its Q row carries nothing.
    return q if terminal is None else q.masked_fill(terminal[:, None], 0.0)


def soft_bellman_operator(
    q: Tensor,
    transitions: Tensor,
    rewards: Tensor,
    *,
    gamma: float,
    alpha: float,
    terminal: Tensor | None = None,
) -> Tensor:
    """One application of the soft Bellman optimality operator.

    .. math:: (TQ)(s, a) = R(s, a) + γ \\sum_{s'} P(s'|s, a) \\, α \\log \\sum_{a'} \\exp(Q(s', a')/α)

    (Haarnoja et al., 2017, section 2.2). ``T`` is a γ-contraction in the sup norm:
    ``‖TQ_1 − TQ_2‖_∞ ≤ γ ‖Q_1 − Q_2‖_∞``. ``α = 0`` gives the hard Bellman operator
    ``R + γ P max_a Q``. Terminal states have value zero and a zero Q row.

    Args:
        q: Q-table ``[S, A]``.
        transitions: ``P[s, a, s']`` of shape ``[S, A, S]``, rows summing to 1.
        rewards: expected rewards ``[S, A]``.
        gamma: discount in ``[0, 1)``.
        alpha: temperature ``≥ 0``.
        terminal: optional boolean ``[S]``, True where the episode ends.

    Examples:
        >>> P = torch.ones(1, 2, 1, dtype=torch.float64)
        >>> R = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
        >>> soft_bellman_operator(torch.zeros(1, 2, dtype=torch.float64), P, R, gamma=0.5, alpha=1.0)
        tensor([[0.3466, 1.3466]], dtype=torch.float64)
    """
    _check_mdp(transitions, rewards, terminal)
    _check_q(q, transitions)
    gamma = _check_gamma(gamma)
    alpha = _check_temperature(alpha)
    return _backup(_state_values(q, alpha, terminal), transitions, rewards, gamma, terminal)


def soft_q_iteration(
    transitions: Tensor,
    rewards: Tensor,
    *,
    gamma: float,
    alpha: float,
    terminal: Tensor | None = None,
    tol: float = 1e-8,
    max_iterations: int = 10_000,
    initial_q: Tensor | None = None,
) -> SoftQIterationResult:
    """Solve the soft Bellman optimality equation ``Q = TQ`` by fixed-point iteration.

    Iterates ``Q_k = T Q_{k−1}`` (see :func:`soft_bellman_operator`) from ``initial_q`` (zeros by
    default) and stops at the first ``k`` with ``γ / (1 − γ) · ‖Q_k − Q_{k−1}‖_∞ ≤ tol``, which by
    the contraction property guarantees ``‖Q_k − Q*‖_∞ ≤ tol`` (and a Bellman residual
    ``‖TQ_k − Q_k‖_∞ ≤ (1 − γ) tol``). Soft Q-iteration: Ziebart (2010); Haarnoja et al.
    (2017), section 2.2. ``α = 0`` is standard value iteration.

    If the criterion is not met within ``max_iterations`` a ``RuntimeWarning`` is issued and the
    result has ``converged=False``.

    Args:
        transitions: ``P[s, a, s']`` of shape ``[S, A, S]``, rows summing to 1.
        rewards: expected rewards ``[S, A]`` (same dtype; float64 recommended).
        gamma: discount in ``[0, 1)``.
        alpha: temperature ``≥ 0``.
        terminal: optional boolean ``[S]``, True where the episode ends (value zero there).
        tol: sup-norm accuracy guaranteed on ``Q`` when ``converged``; must be ``> 0``.
        max_iterations: the most operator applications; must be ``≥ 1``.
        initial_q: optional starting Q-table ``[S, A]``.

    Returns:
        A :class:`SoftQIterationResult` ``(q, v, log_policy, iterations, converged, residual)``.

    Examples:
        >>> # one state, two actions with rewards 0 and 1: V* = α log(1 + e^{1/α}) / (1 − γ)
        >>> P = torch.ones(1, 2, 1, dtype=torch.float64)
        >>> R = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
        >>> res = soft_q_iteration(P, R, gamma=0.5, alpha=1.0)
        >>> round(res.v.item(), 6), round(2 * math.log(1 + math.e), 6)
        (2.626523, 2.626523)
    """
    _check_mdp(transitions, rewards, terminal)
    gamma = _check_gamma(gamma)
    alpha = _check_temperature(alpha)
    tol = _as_float("tol", tol)
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite value > 0, got {tol}.")
    integral = isinstance(max_iterations, numbers.Integral) and not isinstance(max_iterations, bool)
    if not integral or max_iterations < 1:
        raise ValueError(f"max_iterations must be an integer >= 1, got {max_iterations!r}.")
    if initial_q is None:
        q = torch.zeros_like(rewards)
    else:
        _check_q(initial_q, transitions, "initial_q")
        check_finite("initial_q", initial_q)
        q = initial_q.clone()

    # γ / (1 − γ) · ‖ΔQ‖ bounds the distance to the fixed point; γ = 0 is solved in one step.
    factor = gamma / (1.0 - gamma)
    residual = math.inf
    converged = False
    iterations = 0
    while iterations < max_iterations:
        q_next = _backup(_state_values(q, alpha, terminal), transitions, rewards, gamma, terminal)
        iterations += 1
        residual = (q_next - q).abs().max().item()
        q = q_next
        check_finite("q (soft Q-iteration diverged)", q)
        if factor * residual <= tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"soft_q_iteration did not converge in {max_iterations} iterations "
            f"(last change {residual:.3g}, tol {tol:.3g}); increase max_iterations or tol.",
            RuntimeWarning,
            stacklevel=2,
        )
    v = _state_values(q, alpha, terminal)
    log_policy = soft_policy_improvement(q, alpha=alpha)
    return SoftQIterationResult(q, v, log_policy, iterations, converged, residual)


def soft_policy_improvement(q: Tensor, *, alpha: float, mask: Tensor | None = None) -> Tensor:
    """Soft policy improvement: ``log π'(a|s) = (Q(s, a) − V(s)) / α``, the Boltzmann policy of ``Q``.

    With ``Q = Q^π`` this gives ``Q^{π'} ≥ Q^π`` elementwise (Haarnoja et al., 2018, "Soft
    Actor-Critic", Lemma 2). At ``α = 0`` it is greedy, uniform over the maximisers. ``mask``
    (boolean, True = allowed) gives excluded actions probability zero.

    Returns:
        log-probabilities of the same shape as ``q``.
    """
    if not isinstance(q, Tensor):
        raise TypeError(f"q must be a torch tensor, got {type(q).__name__}.")
    alpha = _check_temperature(alpha)
    return boltzmann_log_prob(q, alpha, mask=mask)


def soft_policy_evaluation(
    transitions: Tensor,
    rewards: Tensor,
    log_policy: Tensor,
    *,
    gamma: float,
    alpha: float,
    terminal: Tensor | None = None,
) -> SoftPolicyEvaluationResult:
    """Exact soft policy evaluation: ``Q^π`` and ``V^π`` of a fixed stochastic policy.

    Solves the linear system

    .. math::

        V^π(s) = \\sum_a π(a|s) [R(s, a) − α \\log π(a|s)]
                 + γ \\sum_a π(a|s) \\sum_{s'} P(s'|s, a) V^π(s'),

    i.e. ``(I − γ P_π) V^π = r_π + α H_π``, then ``Q^π = R + γ P V^π``, so that
    ``V^π(s) = Σ_a π(a|s) (Q^π(s, a) − α log π(a|s))`` (Haarnoja et al., 2018, "Soft Actor-Critic",
    Lemma 1). Terminal states have ``V^π = 0`` and a zero Q row. ``α = 0`` is ordinary policy
    evaluation. Actions with probability zero (``log π = −inf``) contribute nothing.

    Args:
        transitions: ``P[s, a, s']`` of shape ``[S, A, S]``, rows summing to 1.
        rewards: expected rewards ``[S, A]``.
        log_policy: ``log π(a|s)`` ``[S, A]``; every row must normalise (``logsumexp = 0``).
        gamma: discount in ``[0, 1)``.
        alpha: temperature ``≥ 0``.
        terminal: optional boolean ``[S]``, True where the episode ends.

    Returns:
        A :class:`SoftPolicyEvaluationResult` ``(q, v)``.
    """
    _check_mdp(transitions, rewards, terminal)
    _check_log_policy(log_policy, transitions)
    gamma = _check_gamma(gamma)
    alpha = _check_temperature(alpha)
    policy = log_policy.exp()
    # Σ_a π (R − α log π) = r_π + α H_π, the per-state reward including the entropy bonus.
    reward_pi = expected_soft_value(rewards, log_policy, alpha)
    transitions_pi = torch.einsum("sa,sat->st", policy, transitions)
    num_states = transitions.shape[0]
    if terminal is not None:
        # V^π = 0 at terminal states: zero their rows so the system reads V(s) = 0 there.
        live = (~terminal).to(rewards.dtype)
        reward_pi = reward_pi * live
        transitions_pi = transitions_pi * live[:, None]
    system = torch.eye(num_states, dtype=rewards.dtype, device=rewards.device) - gamma * transitions_pi
    v = torch.linalg.solve(system, reward_pi)
    q = _backup(v, transitions, rewards, gamma, terminal)
    return SoftPolicyEvaluationResult(q, v)
