"""Gymnasium environments that go wrong on purpose, for the fault-injection tests.

``Faulty-v0`` wraps a Gymnasium task (``base``) and, at its ``nan_at``-th step counted over the
environment's whole life, returns NaN in ``field`` (``"reward"`` or ``"observation"``). Recipes make
it as ``env.name=faulty_envs:Faulty-v0`` with ``tests/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class FaultyEnv(gym.Wrapper):
    def __init__(self, base: str = "CartPole-v1", nan_at: int | None = None, field: str = "reward", **kwargs) -> None:
        super().__init__(gym.make(base, **kwargs))
        if field not in ("reward", "observation"):
            raise ValueError(f"field must be 'reward' or 'observation', got {field!r}")
        self.nan_at, self.field, self.steps = nan_at, field, 0

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.nan_at is not None and self.steps == self.nan_at:
            if self.field == "reward":
                reward = float("nan")
            else:
                observation = np.full_like(observation, np.nan)
        return observation, reward, terminated, truncated, info


gym.register("Faulty-v0", entry_point=FaultyEnv)
