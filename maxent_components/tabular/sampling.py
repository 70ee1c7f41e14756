"""Monte Carlo soft returns of a tabular policy: an independent check of the exact solvers.

:func:`sample_soft_return` plays episodes in a finite MDP given as dense tensors (the conventions of
:mod:`maxent_components.tabular`) and returns each episode's discounted soft return, whose mean
estimates ``V^π`` of the start state.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from maxent_components.tabular.solvers import (
    _as_float,
    _check_gamma,
    _check_log_policy,
    _check_mdp,
    _check_temperature,
)

__all__ = ["sample_soft_return"]


def sample_soft_return(
    transitions: Tensor,
    rewards: Tensor,
    log_policy: Tensor,
    *,
    start: int,
    alpha: float,
    gamma: float,
    episodes: int,
    terminal: Tensor | None = None,
    generator: torch.Generator | None = None,
    truncation: float = 1e-10,
) -> Tensor:
    """The discounted soft returns ``[episodes]`` of episodes sampled from ``start`` under ``π``.

    Every episode starts in ``s_0 = start``, draws ``a_t ∼ π(·|s_t)`` and
    ``s_{t+1} ∼ P(·|s_t, a_t)``, and accumulates

    .. math:: G = \\sum_{t=0}^{T-1} γ^t \\left(R(s_t, a_t) − α \\log π(a_t|s_t)\\right)

    until it enters a terminal state, or for ``H = ⌈log(truncation) / log γ⌉`` steps (one step at
    ``γ = 0``), after which the neglected tail ``γ^H E[V^π(s_H)]`` is at most
    ``truncation · ‖V^π‖_∞``. The term ``α log π`` is taken as zero at ``α = 0``.

    Why: ``E[G] = V^π(start)`` (the soft value of Haarnoja et al., 2018, "Soft Actor-Critic",
    Lemma 1), so the sample mean, within a few standard errors ``std(G) / sqrt(episodes)``, checks an
    exact solution (:func:`~maxent_components.tabular.soft_q_iteration`,
    :func:`~maxent_components.tabular.soft_policy_evaluation`) by a route that shares none of its
    code: the episode's end at terminal states, the entropy bonus and the discount. For the
    soft-optimal policy of a *deterministic* MDP the check is exact: ``R(s, a) + γ V*(s') −
    α log π*(a|s) = V*(s)`` for every action, so every episode returns ``V*(start)`` (up to the tail).

    Args:
        transitions: ``P[s, a, s']`` ``[S, A, S]``, rows summing to 1.
        rewards: expected rewards ``[S, A]``, the reward of every step.
        log_policy: ``log π(a|s)`` ``[S, A]``, rows normalised (``−inf`` for impossible actions).

    Keyword Args:
        start: the state every episode starts in (one that is terminal gives returns of zero).
        alpha: temperature ``≥ 0`` of the entropy bonus.
        gamma: discount in ``[0, 1)``.
        episodes: the number of episodes, ``≥ 1``.
        terminal: optional boolean ``[S]``, True where the episode ends.
        generator: the random generator of the draws (default: torch's global one).
        truncation: the discount ``γ^H`` below which an episode is cut, in ``(0, 1)``.

    Returns:
        The returns ``G`` of the episodes, ``[episodes]``, in the dtype of ``rewards``.

    Examples:
        >>> # One state, one action worth 1 per step: every episode returns 1 / (1 − γ).
        >>> P, R = torch.ones(1, 1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
        >>> G = sample_soft_return(P, R, torch.zeros(1, 1, dtype=torch.float64), start=0, alpha=0.5, gamma=0.5, episodes=3)
        >>> [round(g, 8) for g in G.tolist()]
        [2.0, 2.0, 2.0]
    """
    _check_mdp(transitions, rewards, terminal)
    _check_log_policy(log_policy, transitions)
    gamma, alpha = _check_gamma(gamma), _check_temperature(alpha)
    num_states = transitions.shape[0]
    for name, value, low in (("start", start, 0), ("episodes", episodes, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if start >= num_states:
        raise ValueError(f"start={start} is not a state; the MDP has {num_states} states.")
    truncation = _as_float("truncation", truncation)
    if not 0.0 < truncation < 1.0:
        raise ValueError(f"truncation must lie in (0, 1), got {truncation}.")
    horizon = 1 if gamma == 0 else max(1, math.ceil(math.log(truncation) / math.log(gamma)))
    policy = log_policy.exp()

    state = torch.full((int(episodes),), int(start), dtype=torch.long, device=rewards.device)
    alive = torch.ones_like(state, dtype=torch.bool) if terminal is None else ~terminal[state]
    returns = torch.zeros(state.shape, dtype=rewards.dtype, device=rewards.device)
    discount = 1.0
    for _ in range(horizon):
        if not bool(alive.any()):
            break
        # multinomial never draws an action (or a next state) of probability zero.
        action = torch.multinomial(policy[state], 1, generator=generator).squeeze(-1)
        reward = rewards[state, action]
        if alpha > 0:
            reward = reward - alpha * log_policy[state, action]
        returns += discount * reward * alive
        state = torch.multinomial(transitions[state, action], 1, generator=generator).squeeze(-1)
        if terminal is not None:
            alive &= ~terminal[state]
        discount *= gamma
    return returns
