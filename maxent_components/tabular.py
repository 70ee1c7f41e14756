"""Exact maximum-entropy dynamic programming on finite MDPs.

The MDP is given as dense tensors: ``transitions[s, a, s'] = P(s' | s, a)`` (every row sums to one),
``rewards[s, a] = E[r | s, a]`` and, optionally, a boolean ``terminal[s]`` marking states where the
episode ends (their value is zero by definition: no action is taken there, so no reward and no
entropy bonus accrue). The maximum-entropy objective is ``Σ_t γ^t (r_t + α H(π(·|s_t)))``.

Soft Bellman optimality operator (Haarnoja et al., 2017, "Reinforcement Learning with Deep
Energy-Based Policies", section 2; Ziebart, 2010, "Modeling Purposeful Adaptive Behavior with the
Principle of Maximum Causal Entropy", PhD thesis):

.. math::

    (T Q)(s, a) = R(s, a) + γ \\sum_{s'} P(s'|s, a) V(s'),
    \\qquad V(s) = α \\log \\sum_a \\exp(Q(s, a) / α),

a γ-contraction in the sup norm whose fixed point ``Q*`` gives the optimal policy
``π*(a|s) = exp((Q*(s, a) − V*(s)) / α)``. At ``α = 0``, ``V = max_a Q`` and everything reduces to
classic value iteration.

These routines are the ground truth for the property tests and for the deep components; they are
written for clarity and exactness (float64 recommended), not for large state spaces.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from maxent_components.functional import (
    boltzmann_log_prob,
    check_alpha,
    check_finite,
    expected_soft_value,
    soft_value,
)

__all__ = [
    "SoftQIterationResult",
    "SoftPolicyEvaluationResult",
    "GridWorld",
    "soft_bellman_operator",
    "soft_q_iteration",
    "soft_policy_evaluation",
    "soft_policy_improvement",
    "gridworld",
    "GRID_MOVES",
    "GRID_ACTION_NAMES",
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
    _check_q(log_policy, transitions, "log_policy")
    gamma = _check_gamma(gamma)
    alpha = _check_temperature(alpha)
    if bool(torch.isnan(log_policy).any()) or bool((log_policy == math.inf).any()):
        raise ValueError("log_policy contains NaN or +inf; expected log-probabilities (−inf allowed).")
    norm_error = torch.logsumexp(log_policy, -1).abs().max().item()
    if norm_error > math.sqrt(_ROW_SUM_ATOL.get(log_policy.dtype, 1e-5)):
        raise ValueError(
            f"log_policy rows must be normalised (logsumexp over actions = 0); "
            f"the largest deviation is {norm_error:.3g}."
        )
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


# ---------------------------------------------------------------------------------------------
# Grid world
# ---------------------------------------------------------------------------------------------

#: Row/column offsets of the four moves, in action order.
GRID_MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
#: Names of the actions, in order: 0 up, 1 right, 2 down, 3 left.
GRID_ACTION_NAMES: tuple[str, ...] = ("up", "right", "down", "left")


@dataclass(frozen=True)
class GridWorld:
    """A tabular grid world built by :func:`gridworld`.

    Attributes:
        transitions: ``P[s, a, s']`` ``[S, A, S]`` with ``S = height · width`` and ``A = 4``.
        rewards: expected rewards ``[S, A]``.
        terminal: boolean ``[S]``; True at the goal.
        height, width: grid size; state ``s = row · width + col``, row 0 at the top.
        goal: ``(row, col)`` of the goal.
        walls: ``(row, col)`` cells that cannot be entered.
    """

    transitions: Tensor
    rewards: Tensor
    terminal: Tensor
    height: int
    width: int
    goal: tuple[int, int]
    walls: tuple[tuple[int, int], ...]

    @property
    def num_states(self) -> int:
        return self.height * self.width

    @property
    def num_actions(self) -> int:
        return len(GRID_MOVES)

    def state(self, row: int, col: int) -> int:
        """Index of the cell ``(row, col)``."""
        return row * self.width + col

    def cell(self, state: int) -> tuple[int, int]:
        """``(row, col)`` of state index ``state``."""
        return divmod(state, self.width)

    @property
    def wall_mask(self) -> Tensor:
        """Boolean ``[S]``, True at wall cells (unreachable; their values carry no meaning)."""
        mask = torch.zeros(self.num_states, dtype=torch.bool)
        for r, c in self.walls:
            mask[self.state(r, c)] = True
        return mask

    def grid(self, values: Tensor) -> Tensor:
        """Reshape a per-state tensor ``[S, ...]`` to ``[height, width, ...]``."""
        return values.reshape(self.height, self.width, *values.shape[1:])


def gridworld(
    height: int,
    width: int,
    *,
    goal: tuple[int, int],
    walls: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
    slip: float = 0.0,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
    dtype: torch.dtype = torch.float64,
) -> GridWorld:
    """Build a ``height × width`` grid world with four moves and a terminal goal.

    Layout: state ``s = row · width + col`` with row 0 at the top; actions 0 up, 1 right, 2 down,
    3 left. A move into a wall cell or off the grid leaves the agent where it is. With probability
    ``1 − slip`` the chosen move is executed, otherwise one of the four moves is executed uniformly at
    random (so the intended move has probability ``1 − slip + slip/4``). Every action taken outside
    the goal pays ``step_reward``, plus ``goal_reward`` times the probability of entering the goal.
    The goal is terminal (value zero). Wall cells are states that keep the agent in place; they are
    unreachable from every other cell, and their values carry no meaning.

    With ``slip = 0``, ``α = 0``, ``step_reward = −1`` and ``goal_reward = 0`` the optimal value is
    ``V*(s) = −(1 − γ^d(s)) / (1 − γ)`` where ``d(s)`` is the shortest-path length to the goal.

    Examples:
        >>> world = gridworld(2, 3, goal=(0, 2))
        >>> world.transitions.shape, world.rewards.shape, int(world.terminal.sum())
        (torch.Size([6, 4, 6]), torch.Size([6, 4]), 1)
    """
    for name, n in (("height", height), ("width", width)):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}.")
    if height * width < 2:
        raise ValueError("the grid needs at least two cells (a goal and somewhere to start).")

    def _cell(name: str, cell: object) -> tuple[int, int]:
        if (
            not isinstance(cell, (tuple, list))
            or len(cell) != 2
            or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in cell)
        ):
            raise TypeError(f"{name} must be a (row, col) pair of integers, got {cell!r}.")
        r, c = int(cell[0]), int(cell[1])
        if not (0 <= r < height and 0 <= c < width):
            raise ValueError(f"{name} {cell!r} lies outside the {height}x{width} grid.")
        return r, c

    goal = _cell("goal", goal)
    walls = tuple(_cell("wall", w) for w in walls)
    if goal in walls:
        raise ValueError(f"the goal {goal} cannot be a wall.")
    slip = _as_float("slip", slip)
    if not (0.0 <= slip <= 1.0):
        raise ValueError(f"slip must lie in [0, 1], got {slip}.")
    step_reward = _as_float("step_reward", step_reward)
    goal_reward = _as_float("goal_reward", goal_reward)
    if not (math.isfinite(step_reward) and math.isfinite(goal_reward)):
        raise ValueError("step_reward and goal_reward must be finite.")

    num_states, num_actions = height * width, len(GRID_MOVES)
    wall_set = set(walls)
    moved = torch.empty(num_states, num_actions, dtype=torch.long)
    for s in range(num_states):
        r, c = divmod(s, width)
        for a, (dr, dc) in enumerate(GRID_MOVES):
            nr, nc = r + dr, c + dc
            blocked = (r, c) in wall_set or not (0 <= nr < height and 0 <= nc < width) or (nr, nc) in wall_set
            moved[s, a] = s if blocked else nr * width + nc

    deterministic = torch.zeros(num_states, num_actions, num_states, dtype=dtype)
    deterministic.scatter_(2, moved[..., None], 1.0)
    # A slip executes a uniformly random move: the average of the four deterministic moves.
    transitions = (1 - slip) * deterministic + slip * deterministic.mean(1, keepdim=True)
    goal_state = goal[0] * width + goal[1]
    transitions[goal_state] = 0.0
    transitions[goal_state, :, goal_state] = 1.0
    terminal = torch.zeros(num_states, dtype=torch.bool)
    terminal[goal_state] = True
    rewards = step_reward + goal_reward * transitions[:, :, goal_state]
    rewards[goal_state] = 0.0
    return GridWorld(transitions, rewards, terminal, height, width, goal, walls)
