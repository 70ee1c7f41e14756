"""Environment states for resume: a restored environment continues exactly as the original."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from gymnasium.utils import EzPickle
from torchrl.envs import GymEnv

from maxent_components.training.env_state import env_state, restore_env_state


def _rollout_after(env, actions: torch.Tensor) -> torch.Tensor:
    """Observations of ``env`` stepped with ``actions`` from where it is."""
    from tensordict import TensorDict

    out = []
    for action in actions:
        td = env.step(TensorDict(action=action, batch_size=[]))
        out.append(td["next", "observation"])
    return torch.stack(out)


@pytest.mark.parametrize("name", ["Pendulum-v1", "maxent_components/MultiGoal-v0", "HalfCheetah-v5"])
def test_a_restored_environment_continues_exactly(name):
    env = GymEnv(name)
    env.set_seed(0)
    env.reset()
    generator = torch.Generator().manual_seed(0)
    low, high = env.action_spec.space.low, env.action_spec.space.high
    warm = low + (high - low) * torch.rand(7, *low.shape, generator=generator)
    _rollout_after(env, warm)
    state = env_state(env)
    assert state is not None and ("mujoco_data" in state) == name.startswith("HalfCheetah")

    other = GymEnv(name)
    other.set_seed(123)
    other.reset()
    assert restore_env_state(other, state)
    actions = low + (high - low) * torch.rand(5, *low.shape, generator=generator)
    torch.testing.assert_close(_rollout_after(other, actions), _rollout_after(env, actions), rtol=0, atol=0)


def test_an_environment_that_pickles_only_its_arguments_has_no_state():
    class Args(gym.Env, EzPickle):
        observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
        action_space = gym.spaces.Box(-1.0, 1.0, (1,))

        def __init__(self):
            EzPickle.__init__(self)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    gym.register("test/ArgsOnly-v0", entry_point=Args)
    env = GymEnv("test/ArgsOnly-v0")
    assert env_state(env) is None and restore_env_state(env, None) is False


@pytest.mark.parametrize("name", ["Pendulum-v1", "HalfCheetah-v5"])
def test_several_environments_stepped_together_are_restored_copy_by_copy(name):
    from tensordict import TensorDict

    from maxent_components.training.builders import make_env

    def steps(env, actions):
        return torch.stack([env.step(TensorDict(action=a, batch_size=[2]))["next", "observation"] for a in actions])

    env = make_env({"name": name}, seed=0, num_envs=2)
    env.reset()
    generator = torch.Generator().manual_seed(0)
    low, high = env.action_spec.space.low, env.action_spec.space.high  # [2, D]
    steps(env, low + (high - low) * torch.rand(7, *low.shape, generator=generator))
    state = env_state(env)
    assert len(state["copies"]) == 2 and ("mujoco_data" in state["copies"][0]) == name.startswith("HalfCheetah")

    other = make_env({"name": name}, seed=123, num_envs=2)
    other.reset()
    assert restore_env_state(other, state)
    actions = low + (high - low) * torch.rand(5, *low.shape, generator=generator)
    torch.testing.assert_close(steps(other, actions), steps(env, actions), rtol=0, atol=0)
    with pytest.raises(ValueError, match="2 environments"):
        restore_env_state(make_env({"name": name}, seed=0, num_envs=3), state)
