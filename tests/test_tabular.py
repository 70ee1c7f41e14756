"""Unit tests of maxent_components.tabular against exact ground truth.

Closed forms (one-state MDPs, shortest paths), independent solvers written here (soft policy
iteration, fixed-point policy evaluation, an absorbing-state encoding of termination), an exact
Monte Carlo check of the episodic semantics, and bad input. The general identities (contraction,
improvement, α → 0, iteration count) are property-tested in test_identities.py.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
import torch

from maxent_components import functional as F
from maxent_components import tabular as T

DTYPE = torch.float64


def random_mdp(states: int, actions: int, seed: int, *, dtype=DTYPE) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(states), size=(states, actions))
    rewards = rng.standard_normal((states, actions))
    return torch.from_numpy(transitions).to(dtype), torch.from_numpy(rewards).to(dtype)


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.05, 1.0, 20.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
def test_one_state_mdp_has_closed_form_soft_optimum(alpha, gamma):
    # With a single state, V* = α log Σ exp((R + γ V*)/α) gives V* = soft_value(R) / (1 − γ),
    # and π* = softmax(R / α) because adding γV* to every action leaves the policy unchanged.
    rewards = torch.tensor([[0.3, -1.2, 2.0, 2.0]], dtype=DTYPE)
    transitions = torch.ones(1, 4, 1, dtype=DTYPE)
    result = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=alpha, tol=1e-12)
    assert result.converged
    v_star = F.soft_value(rewards, alpha) / (1 - gamma)
    torch.testing.assert_close(result.v, v_star, rtol=0, atol=1e-11)
    torch.testing.assert_close(result.q, rewards + gamma * v_star, rtol=0, atol=1e-11)
    torch.testing.assert_close(result.log_policy.exp(), F.boltzmann_log_prob(rewards, alpha).exp(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 4.0])
def test_one_state_policy_evaluation_closed_form(alpha):
    # V^π = (Σ_a π R + α H(π)) / (1 − γ).
    gamma = 0.8
    rewards = torch.tensor([[1.0, -2.0, 0.5]], dtype=DTYPE)
    policy = torch.tensor([[0.2, 0.0, 0.8]], dtype=DTYPE)
    result = T.soft_policy_evaluation(
        torch.ones(1, 3, 1, dtype=DTYPE), rewards, policy.log(), gamma=gamma, alpha=alpha
    )
    entropy = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))
    v = (0.2 * 1.0 + 0.8 * 0.5 + alpha * entropy) / (1 - gamma)
    assert result.v.item() == pytest.approx(v, abs=1e-12)
    torch.testing.assert_close(result.q, rewards + gamma * v, rtol=0, atol=1e-12)


def _shortest_paths(height: int, width: int, goal: tuple[int, int], walls: set) -> dict:
    distance = {goal: 0}
    frontier = deque([goal])
    while frontier:
        r, c = frontier.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            cell = (r + dr, c + dc)
            if 0 <= cell[0] < height and 0 <= cell[1] < width and cell not in walls and cell not in distance:
                distance[cell] = distance[(r, c)] + 1
                frontier.append(cell)
    return distance


def test_deterministic_gridworld_hard_optimum_is_the_discounted_shortest_path():
    walls = {(1, 1), (1, 2), (1, 3), (3, 2)}
    world = T.gridworld(4, 5, goal=(0, 4), walls=sorted(walls))
    gamma = 0.9
    result = T.soft_q_iteration(
        world.transitions, world.rewards, gamma=gamma, alpha=0.0, terminal=world.terminal, tol=1e-12
    )
    distance = _shortest_paths(4, 5, (0, 4), walls)
    for (r, c), d in distance.items():
        expected = -(1 - gamma**d) / (1 - gamma)
        assert result.v[world.state(r, c)].item() == pytest.approx(expected, abs=1e-10), (r, c)
    # The greedy policy only takes moves that shorten the path.
    for (r, c), d in distance.items():
        if d == 0:
            continue
        for a in torch.nonzero(result.log_policy[world.state(r, c)] > -math.inf).flatten().tolist():
            dr, dc = T.GRID_MOVES[a]
            assert distance.get((r + dr, c + dc)) == d - 1


# ---------------------------------------------------------------------------------------------
# Independent routes to the same answers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.1, 2.0])
def test_soft_policy_iteration_reaches_the_soft_q_iteration_fixed_point(seed, alpha):
    transitions, rewards = random_mdp(6, 3, seed)
    gamma = 0.9
    optimum = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=alpha, tol=1e-11)
    log_policy = torch.full_like(rewards, -math.log(3))
    for _ in range(100):
        q = T.soft_policy_evaluation(transitions, rewards, log_policy, gamma=gamma, alpha=alpha).q
        new_log_policy = T.soft_policy_improvement(q, alpha=alpha)
        if torch.allclose(new_log_policy, log_policy, rtol=0, atol=1e-14):
            break
        log_policy = new_log_policy
    torch.testing.assert_close(q, optimum.q, rtol=0, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_policy_evaluation_matches_fixed_point_iteration(alpha):
    transitions, rewards = random_mdp(5, 4, seed=7)
    gamma = 0.7
    rng = np.random.default_rng(3)
    policy = rng.dirichlet(np.ones(4), size=5)
    policy[:, 1] = 0.0  # zero-probability actions must not contribute
    policy /= policy.sum(-1, keepdims=True)
    result = T.soft_policy_evaluation(
        transitions, rewards, torch.from_numpy(policy).log(), gamma=gamma, alpha=alpha
    )
    p, r = transitions.numpy(), rewards.numpy()
    with np.errstate(divide="ignore"):
        log_policy = np.where(policy > 0, np.log(policy), 0.0)
    v = np.zeros(5)
    for _ in range(200):
        q = r + gamma * p @ v
        v = (policy * (q - alpha * log_policy)).sum(-1)
    np.testing.assert_allclose(result.v.numpy(), v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.q.numpy(), r + gamma * p @ v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.2, 3.0])
def test_terminal_states_equal_an_absorbing_state_that_cancels_the_entropy_bonus(alpha):
    # An absorbing state whose every action pays −α log|A| has soft value exactly 0, as a terminal
    # state does; the two encodings must give the same values everywhere else.
    transitions, rewards = random_mdp(5, 3, seed=11)
    gamma = 0.9
    terminal = torch.tensor([False, True, False, False, True])
    absorbing_p = transitions.clone()
    absorbing_r = rewards.clone()
    for s in torch.nonzero(terminal).flatten().tolist():
        absorbing_p[s] = 0.0
        absorbing_p[s, :, s] = 1.0
        absorbing_r[s] = -alpha * math.log(3)
    masked = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=alpha, terminal=terminal, tol=1e-11)
    absorbing = T.soft_q_iteration(absorbing_p, absorbing_r, gamma=gamma, alpha=alpha, tol=1e-11)
    live = ~terminal
    torch.testing.assert_close(masked.q[live], absorbing.q[live], rtol=0, atol=1e-9)
    assert bool((masked.v[terminal] == 0).all()) and bool((masked.q[terminal] == 0).all())
    torch.testing.assert_close(absorbing.v[terminal], torch.zeros(2, dtype=DTYPE), rtol=0, atol=1e-9)

    policy = torch.from_numpy(np.random.default_rng(5).dirichlet(np.ones(3), size=5))
    policy[terminal] = 1.0 / 3.0
    ev_masked = T.soft_policy_evaluation(
        transitions, rewards, policy.log(), gamma=gamma, alpha=alpha, terminal=terminal
    )
    ev_absorbing = T.soft_policy_evaluation(absorbing_p, absorbing_r, policy.log(), gamma=gamma, alpha=alpha)
    torch.testing.assert_close(ev_masked.v[live], ev_absorbing.v[live], rtol=0, atol=1e-10)
    assert bool((ev_masked.v[terminal] == 0).all())


def test_monte_carlo_soft_return_matches_the_soft_value():
    # Sampled episodes under π*: Σ_t γ^t (r_t − α log π(a_t|s_t)) until the goal, averaged,
    # must agree with V*(start) within sampling error. Checks the episodic semantics end to end.
    world = T.gridworld(3, 4, goal=(0, 3), walls=[(1, 1)], slip=0.2)
    gamma, alpha = 0.9, 0.5
    result = T.soft_q_iteration(
        world.transitions, world.rewards, gamma=gamma, alpha=alpha, terminal=world.terminal, tol=1e-12
    )
    start, episodes = world.state(2, 0), 4000
    returns = T.sample_soft_return(
        world.transitions, world.rewards, result.log_policy, start=start, alpha=alpha, gamma=gamma,
        episodes=episodes, terminal=world.terminal, generator=torch.Generator().manual_seed(0),
    )
    assert returns.shape == (episodes,) and returns.dtype == DTYPE
    stderr = returns.std().item() / math.sqrt(episodes)
    estimate, exact = returns.mean().item(), result.v[start].item()
    assert 0 < stderr < 0.1 and abs(estimate - exact) < 4 * stderr, (estimate, exact, stderr)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0])
def test_every_soft_return_of_a_deterministic_world_equals_the_soft_value(alpha):
    # Without slip, R(s, a) + γ V*(s') − α log π*(a|s) = V*(s) for every action, so the soft return
    # of every episode telescopes to V*(start) − γ^H V*(s_H): exact up to the truncated tail.
    world, start = T.gridworld_from_layout(["S.#.", "....", "#..G"], step_reward=-1.0, goal_reward=3.0)
    gamma = 0.9
    result = T.soft_q_iteration(
        world.transitions, world.rewards, gamma=gamma, alpha=alpha, terminal=world.terminal, tol=1e-13
    )
    returns = T.sample_soft_return(
        world.transitions, world.rewards, result.log_policy, start=start, alpha=alpha, gamma=gamma,
        episodes=500, terminal=world.terminal, generator=torch.Generator().manual_seed(1), truncation=1e-13,
    )
    torch.testing.assert_close(returns, result.v[start].expand(500), rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_monte_carlo_soft_return_of_any_policy_matches_soft_policy_evaluation(seed):
    # A random stochastic policy on a random MDP with a terminal state: E[G] = V^π(start).
    transitions, rewards = random_mdp(5, 3, seed=seed)
    terminal = torch.tensor([False, False, False, False, True])
    log_policy = torch.log_softmax(torch.randn(5, 3, generator=torch.Generator().manual_seed(seed), dtype=DTYPE), -1)
    gamma, alpha, episodes = 0.8, 0.7, 20_000
    exact = T.soft_policy_evaluation(transitions, rewards, log_policy, gamma=gamma, alpha=alpha, terminal=terminal)
    returns = T.sample_soft_return(
        transitions, rewards, log_policy, start=0, alpha=alpha, gamma=gamma, episodes=episodes,
        terminal=terminal, generator=torch.Generator().manual_seed(seed),
    )
    stderr = returns.std().item() / math.sqrt(episodes)
    assert abs(returns.mean().item() - exact.v[0].item()) < 4 * stderr


def test_sample_soft_return_edge_cases_and_bad_input():
    transitions, rewards = random_mdp(3, 2, seed=3)
    log_policy = torch.full((3, 2), -math.log(2), dtype=DTYPE)
    terminal = torch.tensor([False, False, True])
    kw = dict(alpha=0.5, gamma=0.9, episodes=8, terminal=terminal)
    # γ = 0: one step, whose soft reward is R(s, a) − α log π(a|s) for the action drawn.
    one_step = T.sample_soft_return(transitions, rewards, log_policy, start=0, **{**kw, "gamma": 0.0})
    assert set(one_step.tolist()) <= {rewards[0, a].item() + 0.5 * math.log(2) for a in range(2)}
    # Starting in a terminal state, nothing accrues; the same generator seed gives the same episodes.
    assert T.sample_soft_return(transitions, rewards, log_policy, start=2, **kw).tolist() == [0.0] * 8
    first, second = (
        T.sample_soft_return(transitions, rewards, log_policy, start=0, generator=torch.Generator().manual_seed(7), **kw)
        for _ in range(2)
    )
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match="start=3 is not a state"):
        T.sample_soft_return(transitions, rewards, log_policy, start=3, **kw)
    with pytest.raises(ValueError, match="episodes must be an integer >= 1"):
        T.sample_soft_return(transitions, rewards, log_policy, start=0, **{**kw, "episodes": 0})
    with pytest.raises(ValueError, match=r"truncation must lie in \(0, 1\)"):
        T.sample_soft_return(transitions, rewards, log_policy, start=0, truncation=1.0, **kw)
    with pytest.raises(ValueError, match="log_policy rows must be normalised"):
        T.sample_soft_return(transitions, rewards, log_policy + 1, start=0, **kw)
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\)"):
        T.sample_soft_return(transitions, rewards, log_policy, start=0, **{**kw, "gamma": 1.0})


# ---------------------------------------------------------------------------------------------
# Iteration bookkeeping and precision
# ---------------------------------------------------------------------------------------------
def test_discount_zero_converges_in_one_iteration():
    transitions, rewards = random_mdp(4, 3, seed=0)
    result = T.soft_q_iteration(transitions, rewards, gamma=0.0, alpha=1.0)
    assert result.iterations == 1 and result.converged
    torch.testing.assert_close(result.q, rewards, rtol=0, atol=0)


def test_starting_at_the_fixed_point_takes_one_iteration():
    transitions, rewards = random_mdp(4, 3, seed=1)
    optimum = T.soft_q_iteration(transitions, rewards, gamma=0.9, alpha=0.3, tol=1e-12)
    again = T.soft_q_iteration(transitions, rewards, gamma=0.9, alpha=0.3, tol=1e-9, initial_q=optimum.q)
    assert again.iterations == 1 and again.converged


def test_running_out_of_iterations_warns_and_says_so():
    transitions, rewards = random_mdp(4, 3, seed=2)
    with pytest.warns(RuntimeWarning, match="did not converge in 5 iterations"):
        result = T.soft_q_iteration(transitions, rewards, gamma=0.99, alpha=0.1, max_iterations=5)
    assert not result.converged and result.iterations == 5
    assert result.residual > 0


def test_float32_agrees_with_float64():
    world64 = T.gridworld(4, 4, goal=(3, 3), walls=[(1, 1)], slip=0.1)
    world32 = T.gridworld(4, 4, goal=(3, 3), walls=[(1, 1)], slip=0.1, dtype=torch.float32)
    kwargs = dict(gamma=0.9, alpha=0.5, tol=1e-4)
    r64 = T.soft_q_iteration(world64.transitions, world64.rewards, terminal=world64.terminal, **kwargs)
    r32 = T.soft_q_iteration(world32.transitions, world32.rewards, terminal=world32.terminal, **kwargs)
    assert r32.q.dtype == torch.float32 and r32.converged
    torch.testing.assert_close(r32.v.double(), r64.v, rtol=0, atol=1e-3)


def test_scalar_tensor_hyperparameters_and_initial_q_left_untouched():
    # Learned or scheduled temperatures arrive as 0-d tensors.
    transitions, rewards = random_mdp(3, 2, seed=4)
    initial = torch.ones(3, 2, dtype=DTYPE)
    from_floats = T.soft_q_iteration(transitions, rewards, gamma=0.8, alpha=0.3, initial_q=initial)
    from_tensors = T.soft_q_iteration(
        transitions, rewards, gamma=torch.tensor(0.8, dtype=DTYPE), alpha=torch.tensor(0.3, dtype=DTYPE),
        initial_q=initial,
    )
    torch.testing.assert_close(from_tensors.q, from_floats.q, rtol=0, atol=0)
    assert bool((initial == 1).all())
    with pytest.raises(ValueError, match="alpha must be a scalar"):
        T.soft_q_iteration(transitions, rewards, gamma=0.8, alpha=torch.tensor([0.3, 0.4]))


def test_policy_improvement_greedy_limit_and_mask():
    q = torch.tensor([[1.0, 3.0, 3.0], [0.0, 5.0, -1.0]], dtype=DTYPE)
    greedy = T.soft_policy_improvement(q, alpha=0.0).exp()
    torch.testing.assert_close(greedy, torch.tensor([[0, 0.5, 0.5], [0, 1, 0]], dtype=DTYPE))
    mask = torch.tensor([[True, True, False], [True, False, True]])
    masked = T.soft_policy_improvement(q, alpha=1.0, mask=mask).exp()
    assert masked[0, 2] == 0 and masked[1, 1] == 0
    torch.testing.assert_close(masked[1, [0, 2]], torch.softmax(torch.tensor([0.0, -1.0], dtype=DTYPE), 0))


# ---------------------------------------------------------------------------------------------
# Grid world layout
# ---------------------------------------------------------------------------------------------
def test_gridworld_layout_walls_slip_and_rewards():
    world = T.gridworld(3, 3, goal=(0, 2), walls=[(1, 1)], slip=0.4, step_reward=-0.5, goal_reward=2.0)
    p, r = world.transitions, world.rewards
    assert p.shape == (9, 4, 9) and r.shape == (9, 4)
    torch.testing.assert_close(p.sum(-1), torch.ones(9, 4, dtype=DTYPE))
    assert world.state(1, 2) == 5 and world.cell(5) == (1, 2)
    up, right, down, left = range(4)
    # From (1, 0), right hits the wall and left the edge: stay with 0.6 + 2 · 0.1.
    s = world.state(1, 0)
    assert p[s, right, s].item() == pytest.approx(0.6 + 0.2)
    assert p[s, right, world.state(0, 0)].item() == pytest.approx(0.1)
    # From (2, 0), moving left hits the edge; moving down too: staying has 0.6 + 2 · 0.1.
    s = world.state(2, 0)
    assert p[s, left, s].item() == pytest.approx(0.6 + 0.2)
    assert p[s, up, world.state(1, 0)].item() == pytest.approx(0.6 + 0.1)
    # No cell ever moves into the wall.
    assert p[:, :, world.state(1, 1)][~world.wall_mask].sum().item() == 0
    # Rewards: step cost plus the goal bonus weighted by the probability of entering the goal.
    s = world.state(0, 1)
    goal = world.state(0, 2)
    assert r[s, right].item() == pytest.approx(-0.5 + 2.0 * 0.7)
    assert r[s, left].item() == pytest.approx(-0.5 + 2.0 * 0.1)
    assert bool(world.terminal[goal]) and int(world.terminal.sum()) == 1
    assert bool((r[goal] == 0).all()) and bool((p[goal, :, goal] == 1).all())
    assert world.grid(torch.arange(9)).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    transitions, rewards = random_mdp(3, 2, seed=0)
    q = torch.zeros(3, 2, dtype=DTYPE)
    kw = dict(gamma=0.9, alpha=1.0)
    with pytest.raises(ValueError, match=r"transitions must have shape \[S, A, S\]"):
        T.soft_q_iteration(transitions[:, :, :2], rewards, **kw)
    with pytest.raises(ValueError, match="must sum to 1"):
        T.soft_q_iteration(transitions * 1.1, rewards, **kw)
    with pytest.raises(ValueError, match="non-negative"):
        bad = transitions.clone()
        bad[0, 0] = torch.tensor([1.5, -0.5, 0.0])
        T.soft_q_iteration(bad, rewards, **kw)
    with pytest.raises(ValueError, match=r"rewards must have shape \[S, A\]"):
        T.soft_q_iteration(transitions, rewards[:, :1], **kw)
    with pytest.raises(TypeError, match="share a dtype"):
        T.soft_q_iteration(transitions, rewards.float(), **kw)
    with pytest.raises(ValueError, match="rewards contains NaN"):
        T.soft_q_iteration(transitions, rewards.masked_fill(rewards > 0, math.nan), **kw)
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\)"):
        T.soft_q_iteration(transitions, rewards, gamma=1.0, alpha=1.0)
    with pytest.raises(ValueError, match="alpha must be a finite value >= 0"):
        T.soft_q_iteration(transitions, rewards, gamma=0.9, alpha=-0.1)
    with pytest.raises(ValueError, match="tol must be"):
        T.soft_q_iteration(transitions, rewards, tol=0.0, **kw)
    with pytest.raises(ValueError, match="max_iterations must be an integer"):
        T.soft_q_iteration(transitions, rewards, max_iterations=0, **kw)
    with pytest.raises(ValueError, match=r"initial_q must have shape \[S, A\]"):
        T.soft_q_iteration(transitions, rewards, initial_q=torch.zeros(3, 3, dtype=DTYPE), **kw)
    with pytest.raises(TypeError, match="terminal must be a boolean"):
        T.soft_q_iteration(transitions, rewards, terminal=torch.zeros(3), **kw)
    with pytest.raises(ValueError, match=r"terminal must have shape \[S\]"):
        T.soft_q_iteration(transitions, rewards, terminal=torch.zeros(2, dtype=torch.bool), **kw)
    with pytest.raises(ValueError, match=r"q must have shape \[S, A\]"):
        T.soft_bellman_operator(q[:2], transitions, rewards, **kw)
    with pytest.raises(ValueError, match="log_policy rows must be normalised"):
        T.soft_policy_evaluation(transitions, rewards, q, **kw)
    with pytest.raises(ValueError, match="log_policy contains NaN"):
        T.soft_policy_evaluation(transitions, rewards, q.fill_(math.nan), **kw)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        T.soft_policy_improvement(q, alpha="0.1")


def test_gridworld_rejects_bad_layouts():
    with pytest.raises(ValueError, match="height must be an integer >= 1"):
        T.gridworld(0, 3, goal=(0, 0))
    with pytest.raises(ValueError, match="outside the 2x3 grid"):
        T.gridworld(2, 3, goal=(2, 0))
    with pytest.raises(ValueError, match="cannot be a wall"):
        T.gridworld(2, 3, goal=(0, 0), walls=[(0, 0)])
    with pytest.raises(TypeError, match=r"wall must be a \(row, col\) pair"):
        T.gridworld(2, 3, goal=(0, 0), walls=[(1,)])
    with pytest.raises(ValueError, match=r"slip must lie in \[0, 1\]"):
        T.gridworld(2, 3, goal=(0, 0), slip=1.5)


# ---------------------------------------------------------------------------------------------
# Grid worlds from a text layout, shown as text
# ---------------------------------------------------------------------------------------------
def test_gridworld_from_layout_is_the_gridworld_it_draws():
    layout = ["S.#.", "....", "#..G"]
    world, start = T.gridworld_from_layout(layout, slip=0.3, step_reward=-0.5, goal_reward=2.0)
    expected = T.gridworld(3, 4, goal=(2, 3), walls=[(0, 2), (2, 0)], slip=0.3, step_reward=-0.5, goal_reward=2.0)
    assert start == 0 and world.cell(start) == (0, 0)
    assert (world.height, world.width, world.goal, world.walls) == (3, 4, (2, 3), ((0, 2), (2, 0)))
    for name in ("transitions", "rewards", "terminal"):
        assert torch.equal(getattr(world, name), getattr(expected, name)), name
    # dtype is honoured, and rows may come from a Hydra list (any sequence of strings).
    world32, _ = T.gridworld_from_layout(tuple(layout), dtype=torch.float32)
    assert world32.transitions.dtype == torch.float32


def test_gridworld_from_layout_hard_optimum_is_the_discounted_shortest_path():
    # S at distance 5 from G around the walls (slip 0, step cost 1): V* = −(1 − γ^5) / (1 − γ).
    world, start = T.gridworld_from_layout(["S..#", "....", "..#G"])
    gamma = 0.9
    result = T.soft_q_iteration(
        world.transitions, world.rewards, gamma=gamma, alpha=0.0, terminal=world.terminal, tol=1e-12
    )
    assert result.v[start].item() == pytest.approx(-(1 - gamma**5) / (1 - gamma), abs=1e-11)


@pytest.mark.parametrize(
    "layout, error, message",
    [
        (["S..", "..."], ValueError, r"layout must hold exactly one 'S' and one 'G'; found 1 and 0"),
        (["S.G", "S.."], ValueError, r"layout must hold exactly one 'S' and one 'G'; found 2 and 1"),
        (["S.G", ".."], ValueError, r"layout=\['S.G', '..'\] is invalid; expected non-empty rows of equal length"),
        ([], ValueError, "layout=.* expected non-empty rows"),
        (["S.G", ".x."], ValueError, r"layout has unknown characters \['x'\]"),
        ("S.G", TypeError, "layout must be a list of rows"),
    ],
)
def test_gridworld_from_layout_errors_name_the_layout(layout, error, message):
    with pytest.raises(error, match=message):
        T.gridworld_from_layout(layout)


def test_render_values_and_policy_show_the_exact_solution():
    # 'S' at (0, 0); two shortest paths of 3 steps to G: at α = 0 the first move is right or down
    # with probability 1/2 each, every later move is forced. V*(d) = −(1 − 0.5^d) / 0.5.
    world, _ = T.gridworld_from_layout(["S.#", "..G"])
    result = T.soft_q_iteration(
        world.transitions, world.rewards, gamma=0.5, alpha=0.0, terminal=world.terminal, tol=1e-13
    )
    assert T.render_values(world, result.v) == "   -1.750    -1.500         #\n   -1.500    -1.000         G"
    assert T.render_policy(world, result.log_policy) == "> 0.50 v 1.00      #\n> 1.00 > 1.00      G"
    with pytest.raises(ValueError, match=r"v must be a tensor of shape \(6,\)"):
        T.render_values(world, result.v[:5])
    with pytest.raises(ValueError, match=r"log_policy must be a tensor of shape \(6, 4\)"):
        T.render_policy(world, result.q[:, :3])
