"""Gymnasium environments that go wrong on purpose, for the fault-injection tests.

``Faulty-v0`` wraps a Gymnasium task (``base``) and, at its ``nan_at``-th step counted over the
environment's whole life, returns NaN in ``field`` (``"reward"`` or ``"observation"``); at its
``raise_at``-th step it raises a ``RuntimeError``; from its ``reshape_at``-th step on its
observations have one entry more than its observation space says. With ``only_seed``, only the copy
first reset with that seed goes wrong (one member of a population). Recipes make it as
``env.name=faulty_envs:Faulty-v0`` with ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class FaultyEnv(gym.Wrapper):
    def __init__(
        self,
        base: str = "CartPole-v1",
        nan_at: int | None = None,
        field: str = "reward",
        raise_at: int | None = None,
        reshape_at: int | None = None,
        only_seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(gym.make(base, **kwargs))
        if field not in ("reward", "observation"):
            raise ValueError(f"field must be 'reward' or 'observation', got {field!r}")
        self.nan_at, self.field, self.raise_at, self.reshape_at, self.steps = nan_at, field, raise_at, reshape_at, 0
        self.only_seed, self.seed = only_seed, None

    def reset(self, *, seed=None, options=None):
        if self.seed is None:
            self.seed = seed
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.only_seed is not None and self.seed != self.only_seed:
            return observation, reward, terminated, truncated, info
        if self.raise_at is not None and self.steps == self.raise_at:
            raise RuntimeError(f"the simulator lost its state at step {self.steps}")
        if self.reshape_at is not None and self.steps >= self.reshape_at:
            observation = np.append(observation, 0.0).astype(observation.dtype)
        if self.nan_at is not None and self.steps == self.nan_at:
            if self.field == "reward":
                reward = float("nan")
            else:
                observation = np.full_like(observation, np.nan)
        return observation, reward, terminated, truncated, info


gym.register("Faulty-v0", entry_point=FaultyEnv)
