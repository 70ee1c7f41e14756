"""MultiGoal: the multimodal point-mass task of soft Q-learning.

A point moves in the plane with velocity actions; four goals sit at ``(±5, 0)`` and ``(0, ±5)``.
Because the cost is symmetric between goals, the optimal maximum-entropy policy is multimodal at the
origin, which is what the task exposes (Haarnoja, Tang, Abbeel and Levine, 2017, "Reinforcement
Learning with Deep Energy-Based Policies", section 6.1 and figure 2).

The dynamics and reward follow the reference implementation (the one the paper's results came from),
not the paper's text, which describes a Gaussian-mixture reward and 20-step episodes:

.. math::

    s_0 = \\mathrm{clip}(\\mathcal N(0, σ_0^2 I)), \\qquad
    s' = \\mathrm{clip}(s + \\mathrm{clip}(a) + σ_d ε), \\qquad
    r = -\\bigl(c_a \\lVert a \\rVert^2 + c_d \\min_g \\lVert s' - g \\rVert^2\\bigr) + r_g \\,[\\min_g \\lVert s' - g \\rVert < ρ],

with the observation box ``[−7, 7]²``, the action box ``[−1, 1]²``, ``σ_0 = 0.1``, ``σ_d = 0``,
``c_a = 30``, ``c_d = 1``, ``r_g = 10`` and ``ρ = 1``. An episode terminates when a goal is reached
(``min_g ‖s' − g‖ < ρ``) and is truncated after 30 steps.

**A task family with several reward terms.** ``goals`` moves the goals and ``reward_goals`` splits
the reward into terms, one per subset ``G_k`` of the goals, each the reward above restricted to its
subset: ``r = Σ_k r_{G_k}``. The dynamics, termination at *any* goal included, are the same for every
choice, so tasks of one family differ only by their rewards: the setting of skill composition, where
soft Q-functions learned for ``r_{G_1}`` and ``r_{G_2}`` are summed into one for ``r_{G_1} + r_{G_2}``
(Haarnoja, Pong, Zhou, Dalal, Abbeel and Levine, 2018, "Composable Deep Reinforcement Learning for
Robotic Manipulation"), and of fine-tuning a policy pretrained on all goals to one goal.

The diagnostic of the task is the number of distinct goals reached by the final states of a set of
episodes (:func:`goals_reached`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = [
    "MultiGoalEnv",
    "evaluation_metrics",
    "GOAL_POSITIONS",
    "ENV_ID",
    "register_envs",
    "distances_to_goals",
    "nearest_goal",
    "goals_hit",
    "goals_reached",
]

#: Gymnasium id under which :func:`register_envs` registers :class:`MultiGoalEnv`.
ENV_ID = "maxent_components/MultiGoal-v0"

#: The four goals, one per row, in the order ``(5, 0), (−5, 0), (0, 5), (0, −5)``.
GOAL_POSITIONS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])


class MultiGoalEnv(gym.Env):
    """Point mass in ``[−7, 7]²`` with four goals; the soft Q-learning paper's multimodal task.

    Observation: the position ``s ∈ [−7, 7]²`` (float32). Action: a velocity ``a ∈ [−1, 1]²``
    (float32), clipped to the box in :meth:`step` (so the reward charges the clipped action). Reward
    at the post-step state ``s'``::

        r = −(action_cost_coeff · ‖a‖² + distance_cost_coeff · min_g ‖s' − g‖²)
            + goal_reward · [min_g ‖s' − g‖ < goal_radius]

    The episode terminates when a goal is reached and is truncated after ``episode_length`` steps.

    Keyword Args:
        action_cost_coeff: weight ``c_a`` of the squared action norm (default 30).
        distance_cost_coeff: weight ``c_d`` of the squared distance to the nearest goal (default 1).
        goal_reward: bonus ``r_g`` on reaching a goal (default 10).
        goal_radius: a goal is reached when the nearest one is closer than this (default 1).
        init_sigma: standard deviation ``σ_0`` of the initial position (default 0.1; 0 starts every
            episode at the origin, which is how the paper's trajectories are drawn).
        dynamics_noise: standard deviation ``σ_d`` of Gaussian noise added to each move (default 0).
        episode_length: steps before truncation (default 30).
        goals: goal positions ``[num_goals, 2]`` inside the box (default: the four of the paper).
        reward_goals: one list of goal indices per reward term (default: one term over every goal,
            the paper's reward); the reward is the sum of the terms.

    Reset options: ``env.reset(options={"initial_position": (x, y)})`` starts at a given position
    (clipped to the box) instead of drawing one.

    Examples:
        >>> env = MultiGoalEnv(init_sigma=0.0)
        >>> obs, info = env.reset(seed=0)
        >>> obs
        array([0., 0.], dtype=float32)
        >>> obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
        >>> float(reward)  # −(30·1 + 4²)
        -46.0
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        *,
        action_cost_coeff: float = 30.0,
        distance_cost_coeff: float = 1.0,
        goal_reward: float = 10.0,
        goal_radius: float = 1.0,
        init_sigma: float = 0.1,
        dynamics_noise: float = 0.0,
        episode_length: int = 30,
        goals: Any = None,
        reward_goals: Any = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("action_cost_coeff", action_cost_coeff),
            ("distance_cost_coeff", distance_cost_coeff),
            ("init_sigma", init_sigma),
            ("dynamics_noise", dynamics_noise),
        ):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}.")
        if not np.isfinite(goal_reward):
            raise ValueError(f"goal_reward must be finite, got {goal_reward!r}.")
        if not np.isfinite(goal_radius) or goal_radius <= 0:
            raise ValueError(f"goal_radius must be a finite positive number, got {goal_radius!r}.")
        if isinstance(episode_length, bool) or int(episode_length) != episode_length or episode_length < 1:
            raise ValueError(f"episode_length must be a positive integer, got {episode_length!r}.")
        self.action_cost_coeff = float(action_cost_coeff)
        self.distance_cost_coeff = float(distance_cost_coeff)
        self.goal_reward = float(goal_reward)
        self.goal_radius = float(goal_radius)
        self.init_sigma = float(init_sigma)
        self.dynamics_noise = float(dynamics_noise)
        self.episode_length = int(episode_length)
        self.goal_positions = GOAL_POSITIONS.copy() if goals is None else _goal_layout(goals)
        self.reward_goals = _reward_terms(reward_goals, len(self.goal_positions))
        self.observation_space = spaces.Box(low=-7.0, high=7.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
        self._position = np.zeros(2, dtype=np.float32)
        self._elapsed = 0

    def _clip_position(self, position: np.ndarray) -> np.ndarray:
        low, high = self.observation_space.low, self.observation_space.high
        # float32 state: the observation handed out is exactly the state the next step starts from.
        return np.clip(position, low, high).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "initial_position" in options:
            start = np.asarray(options["initial_position"], dtype=np.float64)
            if start.shape != (2,) or not np.isfinite(start).all():
                raise ValueError(
                    f"options['initial_position'] must be two finite numbers, got {options['initial_position']!r}."
                )
        else:
            # "+ 0.0" turns the −0.0 that init_sigma = 0 would give into 0.0.
            start = self.init_sigma * self.np_random.standard_normal(2) + 0.0
        self._position = self._clip_position(start)
        self._elapsed = 0
        return self._position.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,):
            raise ValueError(f"action must hold 2 numbers (a 2-D velocity), got shape {np.shape(action)}.")
        if not np.isfinite(action).all():
            raise ValueError(f"action must be finite, got {action!r}.")
        action = np.clip(action, self.action_space.low, self.action_space.high).astype(np.float64)
        move = action
        if self.dynamics_noise > 0:
            move = action + self.dynamics_noise * self.np_random.standard_normal(2)
        self._position = self._clip_position(self._position.astype(np.float64) + move)
        self._elapsed += 1

        distances = distances_to_goals(self._position, goals=self.goal_positions)[0]
        distance = float(distances.min())
        terminated = distance < self.goal_radius
        action_cost = goal_cost = bonus = 0.0
        for term in self.reward_goals:  # r = Σ_k r_{G_k}: each term charges the action and its own goals
            nearest = float(distances[list(term)].min())
            action_cost += self.action_cost_coeff * float(np.sum(action**2))
            goal_cost += self.distance_cost_coeff * nearest**2
            bonus += self.goal_reward if nearest < self.goal_radius else 0.0
        reward = -(action_cost + goal_cost) + bonus
        truncated = (not terminated) and self._elapsed >= self.episode_length
        info = {"distance_to_goal": distance, "action_cost": action_cost, "goal_cost": goal_cost}
        return self._position.copy(), float(reward), bool(terminated), bool(truncated), info


def _goal_layout(goals: Any) -> np.ndarray:
    array = np.asarray(goals, dtype=np.float64)
    if array.ndim != 2 or array.shape[-1] != 2 or len(array) == 0:
        raise ValueError(f"goals must be a non-empty list of 2-D positions [[x, y], ...], got {goals!r}.")
    if not (np.isfinite(array).all() and (np.abs(array) <= 7).all()):
        raise ValueError(f"goals must be finite positions inside the box [-7, 7]^2, got {goals!r}.")
    return array


def _reward_terms(reward_goals: Any, num_goals: int) -> tuple[tuple[int, ...], ...]:
    """``reward_goals`` checked: non-empty lists of distinct goal indices (``None``: one term, every goal)."""
    if reward_goals is None:
        return (tuple(range(num_goals)),)
    expected = f"a non-empty list of non-empty lists of goal indices in [0, {num_goals}), got {reward_goals!r}"
    try:
        terms = tuple(tuple(term) for term in reward_goals)
    except TypeError:
        raise ValueError(f"reward_goals must be {expected}.") from None
    for term in terms:
        valid = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < num_goals for i in term)
        if not term or not valid or len(set(term)) != len(term):
            raise ValueError(f"reward_goals must be {expected}.")
    if not terms:
        raise ValueError(f"reward_goals must be {expected}.")
    return tuple(tuple(int(i) for i in term) for term in terms)


# -- diagnostics -----------------------------------------------------------------------------------


def _as_positions(name: str, positions: Any) -> np.ndarray:
    """Accept a NumPy array, a tensor or a nested sequence of shape ``[N, 2]`` (or ``[2]``)."""
    if hasattr(positions, "detach"):  # a torch tensor, without importing torch here
        positions = positions.detach().cpu().numpy()
    array = np.asarray(positions, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[-1] != 2:
        raise ValueError(f"{name} must have shape [N, 2] (2-D positions), got shape {tuple(array.shape)}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite.")
    return array


def distances_to_goals(positions: Any, *, goals: np.ndarray = GOAL_POSITIONS) -> np.ndarray:
    """Euclidean distances ``‖s − g‖`` of each position to each goal, shape ``[N, num_goals]``."""
    array = _as_positions("positions", positions)
    return np.linalg.norm(array[:, None, :] - np.asarray(goals, dtype=np.float64)[None], axis=-1)


def nearest_goal(positions: Any, *, goals: np.ndarray = GOAL_POSITIONS) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest goal and the distance to it for each position, both shape ``[N]``."""
    distances = distances_to_goals(positions, goals=goals)
    index = distances.argmin(axis=-1)
    return index, distances[np.arange(len(index)), index]


def goals_hit(
    final_positions: Any, *, goals: np.ndarray = GOAL_POSITIONS, radius: float = 1.0
) -> np.ndarray:
    """Boolean ``[num_goals]``: whether some final position lies strictly within ``radius`` of each goal."""
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}.")
    distances = distances_to_goals(final_positions, goals=goals)
    return (distances < radius).any(axis=0)


def goals_reached(final_positions: Any, *, goals: np.ndarray = GOAL_POSITIONS, radius: float = 1.0) -> int:
    """Number of distinct goals reached by the final states of a set of episodes.

    A goal counts as reached when some final position lies strictly within ``radius`` of it (the
    environment's termination test). With the default goals the result is in ``{0, …, 4}``.

    Examples:
        >>> goals_reached([[4.5, 0.2], [0.1, -4.9], [4.9, 0.0], [0.0, 0.0]])
        2
    """
    return int(goals_hit(final_positions, goals=goals, radius=radius).sum())


def episode_paths(rollouts: Any) -> list[np.ndarray]:
    """The visited positions ``[T + 1, 2]`` of each TorchRL rollout (its start, then every next state)."""
    paths = []
    for rollout in rollouts:
        start = rollout["observation"][:1]
        paths.append(np.concatenate([start.cpu().numpy(), rollout["next", "observation"].cpu().numpy()], 0))
    return paths


def evaluation_metrics(
    rollouts: Any, *, goals: Any = None, reward_goals: Any = None, radius: float = 1.0
) -> dict[str, float]:
    """The MultiGoal diagnostics of a set of evaluation episodes (final states within ``radius``).

    ``goals_reached``: the number of distinct goals reached; ``success_rate``: the fraction of
    episodes that end at a goal that every reward term rewards (with the default single term: at any
    goal; with the terms "right" and "top": at the top-right goal). Pass the env's ``goals`` and
    ``reward_goals`` (the ``env`` config node does it by interpolation).
    """
    layout = GOAL_POSITIONS if goals is None else _goal_layout(goals)
    terms = _reward_terms(reward_goals, len(layout))
    shared = sorted(set.intersection(*(set(term) for term in terms)))
    final = np.stack([path[-1] for path in episode_paths(rollouts)])
    metrics = {"goals_reached": float(goals_reached(final, goals=layout, radius=radius))}
    if shared:
        ended_at = (distances_to_goals(final, goals=layout[shared]) < radius).any(axis=-1)
    else:
        ended_at = np.zeros(len(final), dtype=bool)
    metrics["success_rate"] = float(ended_at.mean())
    return metrics


def register_envs() -> None:
    """Register ``"maxent_components/MultiGoal-v0"`` with Gymnasium (safe to call repeatedly).

    Keyword arguments of :class:`MultiGoalEnv` pass through ``gym.make``, e.g.
    ``gym.make(ENV_ID, init_sigma=0.0)``. Truncation is done by the environment itself
    (``episode_length``), so no ``TimeLimit`` wrapper is added.
    """
    if ENV_ID in gym.registry:
        return
    gym.register(id=ENV_ID, entry_point=MultiGoalEnv, disable_env_checker=False)
