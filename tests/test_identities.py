"""Property tests of the soft-value algebra and the soft Bellman identities.

Each property is a theorem of maximum-entropy RL (Haarnoja et al., 2017, section 2; Haarnoja et al.,
2018, Lemmas 1–2; the Gibbs variational principle), checked on random Q tables, random policies, random
finite MDPs (Dirichlet transition rows) and temperatures over many orders of magnitude. Examples are
derandomised so that every run checks the same cases.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from maxent_components import functional as F
from maxent_components import tabular as T

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# The MDP properties solve linear systems or iterate to convergence: fewer examples.
MDP_PROPERTY = settings(PROPERTY, max_examples=25)

DTYPE = torch.float64


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------
def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: 10.0**e)


alphas = log_uniform(1e-3, 1e2)


@st.composite
def q_tables(draw, *, max_rows: int = 4, max_actions: int = 6, bound: float = 100.0) -> torch.Tensor:
    rows = draw(st.integers(1, max_rows))
    actions = draw(st.integers(1, max_actions))
    values = draw(
        hnp.arrays(
            np.float64,
            (rows, actions),
            elements=st.floats(-bound, bound, allow_nan=False, allow_infinity=False),
        )
    )
    return torch.from_numpy(values)


@st.composite
def q_and_policy(draw) -> tuple[torch.Tensor, torch.Tensor]:
    """A Q table and an arbitrary policy over the same actions, possibly with zero entries."""
    q = draw(q_tables())
    weights = draw(hnp.arrays(np.float64, tuple(q.shape), elements=st.floats(0.0, 1.0)))
    weights = torch.from_numpy(weights)
    # A row without mass gets a point mass on its first action.
    weights[weights.sum(-1) == 0, 0] = 1.0
    return q, weights / weights.sum(-1, keepdim=True)


@st.composite
def mdps(draw, *, max_states: int = 5, max_actions: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A random finite MDP: Dirichlet transition rows and Gaussian rewards, from a drawn seed."""
    states = draw(st.integers(1, max_states))
    actions = draw(st.integers(1, max_actions))
    concentration = draw(st.sampled_from([0.2, 1.0, 5.0]))
    reward_scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    transitions = rng.dirichlet(np.full(states, concentration), size=(states, actions))
    # Tiny concentrations can leave rows that are one-hot up to rounding; renormalise exactly.
    transitions = transitions / transitions.sum(-1, keepdims=True)
    rewards = reward_scale * rng.standard_normal((states, actions))
    return torch.from_numpy(transitions), torch.from_numpy(rewards)


def random_policy(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]))


# ---------------------------------------------------------------------------------------------
# Soft value of one Q table
# ---------------------------------------------------------------------------------------------
def _scale(q: torch.Tensor, alpha: float) -> float:
    """Magnitude of the quantities involved: the natural unit for absolute tolerances."""
    return 1.0 + q.abs().max().item() + alpha * math.log(q.shape[-1] + 1)


@PROPERTY
@given(q=q_tables(), alpha=alphas)
def test_soft_value_between_max_and_max_plus_entropy_bound(q, alpha):
    v = F.soft_value(q, alpha)
    q_max = q.max(-1).values
    tol = 1e-12 * _scale(q, alpha)
    assert bool((v >= q_max - tol).all())
    assert bool((v <= q_max + alpha * math.log(q.shape[-1]) + tol).all())


@PROPERTY
@given(q=q_tables(), exponents=st.lists(st.floats(-6.0, 3.0), min_size=2, max_size=6, unique=True))
def test_soft_value_increases_with_alpha_and_tends_to_max(q, exponents):
    temperatures = sorted(10.0**e for e in exponents)
    values = torch.stack([F.soft_value(q, a) for a in temperatures])
    tol = 1e-12 * _scale(q, temperatures[-1])
    # dV/dα = H(π) ≥ 0.
    assert bool((values[1:] >= values[:-1] - tol).all())
    q_max = q.max(-1).values
    gap = values[0] - q_max
    assert bool((gap >= -tol).all())
    assert bool((gap <= temperatures[0] * math.log(q.shape[-1]) + tol).all())
    torch.testing.assert_close(F.soft_value(q, 0.0), q_max, rtol=0, atol=0)


@PROPERTY
@given(q=q_tables(), alpha=alphas, shift=st.floats(-1e3, 1e3))
def test_shift_moves_value_and_leaves_policy(q, alpha, shift):
    tol = 1e-12 * (_scale(q, alpha) + abs(shift))
    torch.testing.assert_close(F.soft_value(q + shift, alpha), F.soft_value(q, alpha) + shift, rtol=0, atol=tol)
    # (q + c)/α loses |c|/α · ε in the exponent; compare the probabilities at that precision.
    prob_tol = 1e-13 * (1.0 + (q.abs().max().item() + abs(shift)) / alpha)
    torch.testing.assert_close(
        F.boltzmann_log_prob(q + shift, alpha).exp(),
        F.boltzmann_log_prob(q, alpha).exp(),
        rtol=0,
        atol=prob_tol,
    )


@PROPERTY
@given(q=q_tables(), alpha=alphas)
def test_temperature_scaling(q, alpha):
    # V_α(Q) = α V_1(Q / α).
    torch.testing.assert_close(
        F.soft_value(q, alpha), alpha * F.soft_value(q / alpha, 1.0), rtol=0, atol=1e-12 * _scale(q, alpha)
    )


@PROPERTY
@given(q=q_tables(), alpha=alphas)
def test_boltzmann_policy_is_normalised_and_matches_value(q, alpha):
    v = F.soft_value(q, alpha, keepdim=True)
    policy = ((q - v) / alpha).exp()
    # (q − v)/α carries the rounding of q/α: the error grows with |Q|/α (e.g. Q ≡ 16, α = 1e-3).
    tol = 1e-12 * (1 + _scale(q, alpha) / alpha)
    torch.testing.assert_close(policy.sum(-1), torch.ones(q.shape[0], dtype=DTYPE), rtol=0, atol=tol)
    torch.testing.assert_close(F.boltzmann_log_prob(q, alpha).exp(), policy, rtol=0, atol=tol)


@PROPERTY
@given(q=q_tables(), alpha=alphas)
def test_gradient_of_soft_value_is_the_boltzmann_policy(q, alpha):
    q = q.clone().requires_grad_(True)
    F.soft_value(q, alpha).sum().backward()
    torch.testing.assert_close(q.grad, F.boltzmann_log_prob(q.detach(), alpha).exp(), rtol=0, atol=1e-12)


@PROPERTY
@given(q_policy=q_and_policy(), alpha=alphas)
def test_gibbs_variational_principle(q_policy, alpha):
    q, policy = q_policy
    log_policy = policy.log()
    v = F.soft_value(q, alpha)
    boltzmann = F.boltzmann_log_prob(q, alpha)
    tol = 1e-11 * _scale(q, alpha)
    # Equality at the Boltzmann policy ...
    torch.testing.assert_close(F.expected_soft_value(q, boltzmann, alpha), v, rtol=0, atol=tol)
    torch.testing.assert_close(
        (boltzmann.exp() * q).sum(-1) + alpha * F.entropy(boltzmann), v, rtol=0, atol=tol
    )
    # ... and for any other π the gap is exactly α KL(π ‖ π_Boltzmann) ≥ 0.
    v_pi = F.expected_soft_value(q, log_policy, alpha)
    assert bool((v_pi <= v + tol).all())
    support = policy > 0
    kl = (policy * (log_policy - boltzmann)).masked_fill(~support, 0.0).sum(-1)
    torch.testing.assert_close(v - v_pi, alpha * kl, rtol=0, atol=tol)


@PROPERTY
@given(q=q_tables(), alpha=st.one_of(st.just(0.0), alphas), data=st.data())
def test_masked_value_is_value_of_allowed_subset(q, alpha, data):
    mask = torch.from_numpy(data.draw(hnp.arrays(np.bool_, tuple(q.shape))))
    mask[~mask.any(-1), 0] = True
    masked_v = F.soft_value(q, alpha, mask=mask)
    masked_log_pi = F.boltzmann_log_prob(q, alpha, mask=mask)
    for row in range(q.shape[0]):
        allowed = q[row][mask[row]]
        torch.testing.assert_close(masked_v[row], F.soft_value(allowed, alpha), rtol=0, atol=0)
        torch.testing.assert_close(masked_log_pi[row][mask[row]], F.boltzmann_log_prob(allowed, alpha))
        assert bool((masked_log_pi[row][~mask[row]] == -math.inf).all())


# ---------------------------------------------------------------------------------------------
# Numerical stability against a float64 reference summed exactly with math.fsum
# ---------------------------------------------------------------------------------------------
def reference_soft_value(row: list[float], alpha: float) -> float:
    top = max(row)
    return top + alpha * math.log(math.fsum(math.exp((x - top) / alpha) for x in row))


def _check_against_reference(q: torch.Tensor, alpha: float) -> None:
    v = F.soft_value(q, alpha)
    log_pi = F.boltzmann_log_prob(q, alpha)
    assert v.dtype == q.dtype and bool(torch.isfinite(v).all())
    assert not bool(torch.isnan(log_pi).any())
    eps = torch.finfo(q.dtype).eps
    sums = log_pi.to(torch.float64).exp().sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums), rtol=0, atol=16 * eps * q.shape[-1])
    for row, value in zip(q.to(torch.float64).tolist(), v.tolist()):
        expected = reference_soft_value(row, alpha)
        # Rounding of the final ``max + α log Σ`` and of the shifted exponents, in the input dtype.
        tol = eps * (2 * abs(max(row)) + 64 * alpha * (1 + math.log(len(row))))
        assert abs(value - expected) <= tol, (row, alpha, value, expected)


@PROPERTY
@given(
    q=q_tables(max_rows=3, max_actions=8, bound=1e6),
    alpha=log_uniform(1e-6, 1e4),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_soft_value_is_stable_for_extreme_q_and_alpha(q, alpha, dtype):
    _check_against_reference(q.to(dtype), alpha)


def test_soft_value_is_stable_on_the_extreme_grid():
    base = torch.tensor([[1.0, -1.0, 0.5, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1e-3, -1e-3, 2e-3]], dtype=DTYPE)
    for magnitude, alpha, dtype in itertools.product(
        (1e-3, 1.0, 1e3, 1e6), (1e-6, 1e-3, 1.0, 1e2, 1e4), (torch.float32, torch.float64)
    ):
        for offset in (0.0, magnitude, -magnitude):
            _check_against_reference((magnitude * base + offset).to(dtype), alpha)


# ---------------------------------------------------------------------------------------------
# Soft Bellman identities on random finite MDPs
# ---------------------------------------------------------------------------------------------
gammas = st.floats(0.0, 0.95)
mdp_alphas = st.one_of(st.just(0.0), log_uniform(1e-2, 10.0))


@MDP_PROPERTY
@given(mdp=mdps(), gamma=gammas, alpha=mdp_alphas, seed=st.integers(0, 2**32 - 1))
def test_soft_bellman_operator_is_a_gamma_contraction(mdp, gamma, alpha, seed):
    transitions, rewards = mdp
    rng = np.random.default_rng(seed)
    q1 = torch.from_numpy(10 * rng.standard_normal(tuple(rewards.shape)))
    q2 = torch.from_numpy(10 * rng.standard_normal(tuple(rewards.shape)))
    t1 = T.soft_bellman_operator(q1, transitions, rewards, gamma=gamma, alpha=alpha)
    t2 = T.soft_bellman_operator(q2, transitions, rewards, gamma=gamma, alpha=alpha)
    distance = (q1 - q2).abs().max().item()
    assert (t1 - t2).abs().max().item() <= gamma * distance + 1e-12 * (1 + distance)


@MDP_PROPERTY
@given(mdp=mdps(), gamma=gammas, alpha=mdp_alphas)
def test_soft_q_iteration_fixed_point_satisfies_the_soft_bellman_equation(mdp, gamma, alpha):
    transitions, rewards = mdp
    tol = 1e-9
    result = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=alpha, tol=tol)
    assert result.converged
    backed_up = T.soft_bellman_operator(result.q, transitions, rewards, gamma=gamma, alpha=alpha)
    assert (backed_up - result.q).abs().max().item() <= (1 - gamma) * tol + 1e-12
    torch.testing.assert_close(result.v, F.soft_value(result.q, alpha), rtol=0, atol=0)
    torch.testing.assert_close(result.log_policy, F.boltzmann_log_prob(result.q, alpha), rtol=0, atol=0)


@MDP_PROPERTY
@given(mdp=mdps(), gamma=gammas, alpha=mdp_alphas, seed=st.integers(0, 2**32 - 1))
def test_soft_policy_improvement_never_lowers_q(mdp, gamma, alpha, seed):
    transitions, rewards = mdp
    policy = random_policy(tuple(rewards.shape), seed)
    q_pi = T.soft_policy_evaluation(transitions, rewards, policy.log(), gamma=gamma, alpha=alpha).q
    improved = T.soft_policy_improvement(q_pi, alpha=alpha)
    q_improved = T.soft_policy_evaluation(transitions, rewards, improved, gamma=gamma, alpha=alpha).q
    scale = 1.0 + q_pi.abs().max().item()
    assert bool((q_improved >= q_pi - 1e-10 * scale).all())


@MDP_PROPERTY
@given(mdp=mdps(), gamma=gammas, alpha=log_uniform(1e-2, 10.0))
def test_evaluating_the_boltzmann_policy_of_q_star_returns_q_star(mdp, gamma, alpha):
    transitions, rewards = mdp
    optimum = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=alpha, tol=1e-11)
    evaluation = T.soft_policy_evaluation(
        transitions, rewards, optimum.log_policy, gamma=gamma, alpha=alpha
    )
    scale = 1.0 + optimum.q.abs().max().item()
    torch.testing.assert_close(evaluation.q, optimum.q, rtol=0, atol=1e-8 * scale)
    torch.testing.assert_close(evaluation.v, optimum.v, rtol=0, atol=1e-8 * scale)


def _enumerated_optimal_values(transitions: np.ndarray, rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Elementwise maximum of V^μ over every deterministic policy μ, each solved with numpy."""
    states, actions = rewards.shape
    best = np.full(states, -np.inf)
    for choice in itertools.product(range(actions), repeat=states):
        index = np.arange(states)
        p_mu = transitions[index, choice]
        r_mu = rewards[index, choice]
        v_mu = np.linalg.solve(np.eye(states) - gamma * p_mu, r_mu)
        best = np.maximum(best, v_mu)
    return best


@MDP_PROPERTY
@given(mdp=mdps(max_states=3, max_actions=3), gamma=gammas)
def test_zero_temperature_matches_policy_enumeration(mdp, gamma):
    transitions, rewards = mdp
    result = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=0.0, tol=1e-11)
    expected = _enumerated_optimal_values(transitions.numpy(), rewards.numpy(), gamma)
    scale = 1.0 + np.abs(expected).max()
    np.testing.assert_allclose(result.v.numpy(), expected, rtol=0, atol=1e-9 * scale)


@MDP_PROPERTY
@given(mdp=mdps(), gamma=gammas, alpha=log_uniform(1e-3, 10.0))
def test_soft_optimum_lies_within_the_entropy_bound_of_the_hard_optimum(mdp, gamma, alpha):
    # 0 ≤ V*_α − V*_0 ≤ α log|A| / (1 − γ): the α → 0 limit is the hard optimum.
    transitions, rewards = mdp
    tol = 1e-10
    soft = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=alpha, tol=tol).v
    hard = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=0.0, tol=tol).v
    gap = soft - hard
    assert bool((gap >= -2 * tol).all())
    assert bool((gap <= alpha * math.log(rewards.shape[1]) / (1 - gamma) + 2 * tol).all())


@MDP_PROPERTY
@given(mdp=mdps(), gamma=gammas, alpha=mdp_alphas, tol=log_uniform(1e-10, 1e-2))
def test_iteration_count_is_honest(mdp, gamma, alpha, tol):
    transitions, rewards = mdp
    result = T.soft_q_iteration(transitions, rewards, gamma=gamma, alpha=alpha, tol=tol)
    q = torch.zeros_like(rewards)
    changes = []
    for _ in range(result.iterations):
        q_next = T.soft_bellman_operator(q, transitions, rewards, gamma=gamma, alpha=alpha)
        changes.append((q_next - q).abs().max().item())
        q = q_next
    # Exactly `iterations` applications reproduce the returned table ...
    torch.testing.assert_close(result.q, q, rtol=0, atol=0)
    assert result.residual == changes[-1]
    # ... the criterion holds at the last one and at no earlier one.
    factor = gamma / (1 - gamma)
    assert factor * changes[-1] <= tol
    assert all(factor * change > tol for change in changes[:-1])
