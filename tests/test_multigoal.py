"""MultiGoal: API conformance (Gymnasium and TorchRL), exact dynamics and reward, the diagnostic."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from maxent_components.envs.multigoal import (
    ENV_ID,
    GOAL_POSITIONS,
    MultiGoalEnv,
    distances_to_goals,
    goals_hit,
    goals_reached,
    nearest_goal,
    register_envs,
)


def _step(env: MultiGoalEnv, action) -> tuple:
    return env.step(np.asarray(action, dtype=np.float32))


def test_gymnasium_env_checker_passes_without_warnings():
    register_envs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(ENV_ID).unwrapped, skip_render_check=True)


def test_register_envs_is_idempotent():
    register_envs()
    spec = gym.spec(ENV_ID)
    register_envs()
    assert gym.spec(ENV_ID) is spec
    env = gym.make(ENV_ID, init_sigma=0.0, episode_length=5)
    assert isinstance(env.unwrapped, MultiGoalEnv)
    assert env.unwrapped.episode_length == 5


def test_torchrl_gymenv_specs_and_rollout():
    from torchrl.envs import GymEnv
    from torchrl.envs.utils import check_env_specs

    register_envs()
    env = GymEnv(ENV_ID)
    env.set_seed(0)
    check_env_specs(env)
    assert env.action_spec.shape == torch.Size([2])
    torch.testing.assert_close(env.action_spec.space.low, -torch.ones(2))
    torch.testing.assert_close(env.observation_spec["observation"].space.high, 7 * torch.ones(2))
    # Zero actions never reach a goal from near the origin, so the rollout is cut by truncation at 30.
    rollout = env.rollout(100, policy=lambda td: td.set("action", torch.zeros(2)))
    assert rollout.shape == torch.Size([30])
    assert rollout["next", "truncated"][-1].item() and not rollout["next", "terminated"].any()


def test_hand_computed_reward_and_termination():
    env = MultiGoalEnv(init_sigma=0.0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros(2, dtype=np.float32))
    # (0,0) + (0.5, -0.5) = (0.5, -0.5); nearest goals (5,0) and (0,−5) at squared distance 20.5.
    obs, reward, terminated, truncated, info = _step(env, [0.5, -0.5])
    np.testing.assert_allclose(obs, [0.5, -0.5])
    assert reward == pytest.approx(-(30 * 0.5 + 20.5))
    assert not terminated and not truncated
    assert info["distance_to_goal"] == pytest.approx(np.sqrt(20.5))

    # Landing at distance 0.5 from (0, 5): terminated, with the goal bonus on top of the costs.
    env.reset(options={"initial_position": (0.0, 3.5)})
    obs, reward, terminated, truncated, _ = _step(env, [0.0, 1.0])
    np.testing.assert_allclose(obs, [0.0, 4.5])
    assert reward == pytest.approx(-(30 * 1.0 + 0.25) + 10)
    assert terminated and not truncated

    # Exactly at distance 1 is not "< 1": no termination, no bonus.
    env.reset(options={"initial_position": (-3.0, 0.0)})
    obs, reward, terminated, _, _ = _step(env, [-1.0, 0.0])
    np.testing.assert_allclose(obs, [-4.0, 0.0])
    assert reward == pytest.approx(-(30.0 + 1.0))
    assert not terminated


def test_actions_are_clipped_and_charged_after_clipping():
    env = MultiGoalEnv(init_sigma=0.0)
    env.reset(seed=0)
    obs, reward, *_ = _step(env, [3.0, -0.2])
    np.testing.assert_allclose(obs, [1.0, -0.2], rtol=0, atol=1e-7)
    expected = -(30 * (1.0 + 0.04) + (4.0**2 + 0.2**2))
    assert reward == pytest.approx(expected, rel=1e-6)


def test_positions_are_clipped_to_the_box():
    env = MultiGoalEnv()
    obs, _ = env.reset(options={"initial_position": (6.8, -9.0)})
    np.testing.assert_allclose(obs, [6.8, -7.0], rtol=1e-6)
    obs, reward, *_ = _step(env, [1.0, -1.0])
    np.testing.assert_allclose(obs, [7.0, -7.0])
    # Nearest goals: (5, 0) and (0, −5), both at squared distance 4 + 49.
    assert reward == pytest.approx(-(30 * 2.0 + 53.0))


def test_truncates_at_episode_length_thirty():
    env = MultiGoalEnv()
    env.reset(seed=3)
    flags = [_step(env, [0.0, 0.0])[2:4] for _ in range(30)]
    assert all(not t for t, _ in flags)
    assert [tr for _, tr in flags] == [False] * 29 + [True]


def test_seeding_is_reproducible():
    def run(seed: int) -> np.ndarray:
        env = MultiGoalEnv(dynamics_noise=0.3)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(5):
            out.append(_step(env, [0.2, 0.1])[0])
        return np.stack(out)

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_initial_state_distribution():
    env = MultiGoalEnv(init_sigma=0.1)
    starts = np.stack([env.reset(seed=i)[0] for i in range(2000)])
    # Mean 0 (±4 standard errors) and standard deviation 0.1 per coordinate.
    assert np.abs(starts.mean(0)).max() < 4 * 0.1 / np.sqrt(2000)
    np.testing.assert_allclose(starts.std(0), 0.1, rtol=0.08)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="episode_length"):
        MultiGoalEnv(episode_length=0)
    with pytest.raises(ValueError, match="goal_radius"):
        MultiGoalEnv(goal_radius=0.0)
    with pytest.raises(ValueError, match="init_sigma"):
        MultiGoalEnv(init_sigma=-1.0)
    env = MultiGoalEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array([np.nan, 0.0], dtype=np.float32))
    with pytest.raises(ValueError, match="initial_position"):
        env.reset(options={"initial_position": (1.0, 2.0, 3.0)})


def test_goals_reached_on_known_inputs():
    assert goals_reached(GOAL_POSITIONS) == 4
    assert goals_reached(np.zeros((10, 2))) == 0
    assert goals_reached([[4.5, 0.2], [0.1, -4.9], [4.9, 0.0], [0.0, 0.0]]) == 2
    assert goals_reached(torch.tensor([[-5.0, 0.9], [0.0, 4.01]])) == 2
    # The radius is strict, as the termination test.
    assert goals_reached([[4.0, 0.0]]) == 0
    assert goals_reached([[4.0, 0.0]], radius=1.5) == 1
    np.testing.assert_array_equal(goals_hit([[0.0, 5.5], [0.0, -4.5]]), [False, False, True, True])
    index, distance = nearest_goal([[3.0, 0.0], [0.0, -6.0]])
    np.testing.assert_array_equal(index, [0, 3])
    np.testing.assert_allclose(distance, [2.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        goals_reached(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="radius"):
        goals_reached(np.zeros((3, 2)), radius=0.0)


@settings(max_examples=60, deadline=None)
@given(
    start=st.tuples(st.floats(-7, 7), st.floats(-7, 7)),
    action=st.tuples(st.floats(-3, 3), st.floats(-3, 3)),
)
def test_step_matches_the_specification(start, action):
    env = MultiGoalEnv()
    s, _ = env.reset(options={"initial_position": start})
    obs, reward, terminated, _, _ = _step(env, action)
    a = np.clip(np.asarray(action, dtype=np.float32).astype(np.float64), -1, 1)
    expected_obs = np.clip(s.astype(np.float64) + a, -7, 7).astype(np.float32)
    np.testing.assert_array_equal(obs, expected_obs)
    d = distances_to_goals(obs).min()
    expected = -(30 * np.sum(a**2) + d**2) + (10.0 if d < 1 else 0.0)
    assert reward == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert terminated == (d < 1)
    assert goals_reached(obs) == int(terminated)


# -- the task family with several reward terms -------------------------------------------------------

CORNERS = [[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]]


@settings(max_examples=40, deadline=None)
@given(
    start=st.tuples(st.floats(-7, 7), st.floats(-7, 7)),
    actions=st.lists(st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5)), min_size=1, max_size=8),
)
def test_the_summed_task_is_the_sum_of_its_terms_with_the_same_dynamics(start, actions):
    """r_{right+top} = r_right + r_top at every step, and the family shares states and termination."""
    envs = [MultiGoalEnv(goals=CORNERS, reward_goals=terms) for terms in ([[0, 2]], [[0, 1]], [[0, 2], [0, 1]])]
    for env in envs:
        env.reset(options={"initial_position": start})
    for action in actions:
        (o1, r1, t1, u1, _), (o2, r2, t2, u2, _), (o3, r3, t3, u3, _) = (_step(env, action) for env in envs)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(o1, o3)
        assert (t1, u1) == (t2, u2) == (t3, u3)
        assert r3 == pytest.approx(r1 + r2, rel=1e-12, abs=1e-12)
        d = distances_to_goals(o1, goals=np.array(CORNERS))[0]
        a = np.clip(np.asarray(action, dtype=np.float32).astype(np.float64), -1, 1)
        expected_right = -(30 * np.sum(a**2) + min(d[0], d[2]) ** 2) + (10.0 if min(d[0], d[2]) < 1 else 0.0)
        assert r1 == pytest.approx(expected_right, rel=1e-12, abs=1e-12)
        assert t1 == (d.min() < 1)  # every goal ends the episode, rewarded or not
        if t1:
            break


def test_one_term_over_every_goal_is_the_papers_reward():
    paper, explicit = MultiGoalEnv(), MultiGoalEnv(reward_goals=[[0, 1, 2, 3]])
    for env in (paper, explicit):
        env.reset(options={"initial_position": (0.3, 3.6)})
    # (0.3, 3.6) + (0.2, 0.7) = (0.5, 4.3): 0.86 from (0, 5), so the bonus is paid and the episode ends.
    first, second = _step(paper, [0.2, 0.7]), _step(explicit, [0.2, 0.7])
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1:4] == second[1:4]
    assert first[1] == pytest.approx(-(30 * (0.04 + 0.49) + 0.25 + 0.49) + 10) and first[2]


def test_an_unrewarded_goal_ends_the_episode_without_its_bonus():
    env = MultiGoalEnv(reward_goals=[[0]])  # only (5, 0) pays
    env.reset(options={"initial_position": (0.0, 4.0)})
    _, reward, terminated, _, _ = _step(env, [0.0, 0.5])  # lands at (0, 4.5), 0.5 from (0, 5)
    assert terminated and reward == pytest.approx(-(30 * 0.25 + 25 + 4.5**2))


def test_bad_goal_layouts_and_reward_terms_are_refused():
    for goals in ([], [[1.0, 2.0, 3.0]], [[8.0, 0.0]], [[np.nan, 0.0]]):
        with pytest.raises(ValueError, match="goals must be"):
            MultiGoalEnv(goals=goals)
    for terms in ([], [[]], [[4]], [[0, 0]], [[True]], [["0"]], 3):
        with pytest.raises(ValueError, match=r"reward_goals must be .*goal indices in \[0, 4\)"):
            MultiGoalEnv(reward_goals=terms)


def test_evaluation_metrics_count_the_goals_every_term_rewards():
    from tensordict import TensorDict

    from maxent_components.envs.multigoal import evaluation_metrics

    def rollout(final):
        start = torch.zeros(1, 2)
        return TensorDict(observation=start, next=TensorDict(observation=torch.tensor([final]), batch_size=[1]), batch_size=[1])

    finals = [[4.8, 4.9], [-5.0, 4.5], [5.0, -5.2], [0.0, 0.0]]
    rollouts = [rollout(f) for f in finals]
    right_top = evaluation_metrics(rollouts, goals=CORNERS, reward_goals=[[0, 2], [0, 1]])
    assert right_top == {"goals_reached": 3.0, "success_rate": 0.25}  # only (5, 5) is rewarded by both
    assert evaluation_metrics(rollouts, goals=CORNERS, reward_goals=[[0, 2]])["success_rate"] == 0.5
    assert evaluation_metrics(rollouts, goals=CORNERS)["success_rate"] == 0.75
    assert evaluation_metrics(rollouts, goals=CORNERS, reward_goals=[[1], [2]])["success_rate"] == 0.0
    paper = evaluation_metrics([rollout([5.0, 0.5]), rollout([0.0, 0.0])])
    assert paper == {"goals_reached": 1.0, "success_rate": 0.5}
