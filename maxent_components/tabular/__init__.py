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

- :mod:`~maxent_components.tabular.solvers`: the soft Bellman operator, soft Q-iteration, exact
  soft policy evaluation and improvement;
- :mod:`~maxent_components.tabular.gridworld`: grid worlds, from sizes or a text layout, and their
  values and policies shown as text;
- :mod:`~maxent_components.tabular.sampling`: Monte Carlo soft returns, an independent check of an
  exact solution;
- :mod:`~maxent_components.tabular.composition`: composing soft Q-functions of several rewards,
  with the exact composed, optimal and achieved values and the bounds between them.
"""

from maxent_components.tabular.composition import CompositionResult, compose_soft_q
from maxent_components.tabular.gridworld import (
    GRID_ACTION_ARROWS,
    GRID_ACTION_NAMES,
    GRID_MOVES,
    GridWorld,
    gridworld,
    gridworld_from_layout,
    render_policy,
    render_values,
)
from maxent_components.tabular.sampling import sample_soft_return
from maxent_components.tabular.solvers import (
    SoftPolicyEvaluationResult,
    SoftQIterationResult,
    soft_bellman_operator,
    soft_policy_evaluation,
    soft_policy_improvement,
    soft_q_iteration,
)

__all__ = [
    "CompositionResult",
    "compose_soft_q",
    "GRID_ACTION_ARROWS",
    "GRID_ACTION_NAMES",
    "GRID_MOVES",
    "GridWorld",
    "SoftPolicyEvaluationResult",
    "SoftQIterationResult",
    "gridworld",
    "gridworld_from_layout",
    "render_policy",
    "render_values",
    "sample_soft_return",
    "soft_bellman_operator",
    "soft_policy_evaluation",
    "soft_policy_improvement",
    "soft_q_iteration",
]
