"""Composing soft Q-functions: the algebra, exact finite-MDP bounds, and ``ComposedQ`` in every part.

Ground truth: on random finite MDPs with two (or three) rewards, ``tabular.compose_soft_q`` solves
each reward, the composed reward and the composed policy exactly; the tests check the inequalities
of Haarnoja et al. (2018), "Composable Deep Reinforcement Learning for Robotic Manipulation",
section 4, that the composition is exact when the constituent policies agree, and that it is not
when they differ (so the bounds are not vacuous).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from torchrl.data import Bounded, Categorical, OneHot

from maxent_components import ComposedQ, SoftQLoss
from maxent_components.functional import composition_divergence, soft_value
from maxent_components.modules import continuous_qvalue_network, discrete_qvalue_network
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers import (
    BoltzmannSampler,
    CategoricalSampler,
    GaussianSampler,
    LangevinSampler,
    MixtureSampler,
    SVGDSampler,
    UniformSampler,
)
from maxent_components.soft_value import ExactSoftValue, ImportanceSoftValue, UniformSoftValue
from maxent_components.tabular import compose_soft_q, soft_q_iteration

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-7


# -- the algebra ----------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 4),
    actions=st.integers(2, 6),
    alpha=st.floats(0.05, 5.0),
)
def test_composed_soft_value_loses_exactly_alpha_times_the_divergence(seed, n, actions, alpha):
    gen = torch.Generator().manual_seed(seed)
    q = 3 * torch.randn(n, 5, actions, generator=gen, dtype=torch.float64)
    w = torch.rand(n, generator=gen, dtype=torch.float64) + 0.05
    w = w / w.sum()
    log_pi = torch.log_softmax(q / alpha, dim=-1)
    divergence = composition_divergence(log_pi, w)
    v_i = soft_value(q, alpha)
    v_w = soft_value(torch.einsum("i,isa->sa", w, q), alpha)
    torch.testing.assert_close(torch.einsum("i,is->s", w, v_i) - v_w, alpha * divergence, rtol=1e-9, atol=1e-9)
    assert bool((divergence >= -1e-12).all())


def test_divergence_is_half_renyi_of_order_one_half_and_zero_for_equal_policies():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=torch.float64)
    half = torch.tensor([0.5, 0.5], dtype=torch.float64)
    renyi_half = -2 * math.log(float((p[0] * p[1]).sqrt().sum()))
    assert float(composition_divergence(p.log(), half)) == pytest.approx(renyi_half / 2, rel=1e-12)
    same = torch.stack([p[0], p[0]]).log()
    assert float(composition_divergence(same, torch.tensor([0.3, 0.7], dtype=torch.float64))) == pytest.approx(0, abs=1e-12)
    # A zero-probability action of one policy contributes nothing; a zero weight ignores that policy.
    masked = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.2, 0.6]], dtype=torch.float64).log()
    expected = -math.log(2 * math.sqrt(0.5 * 0.2))
    assert float(composition_divergence(masked, half)) == pytest.approx(expected, rel=1e-12)
    assert float(composition_divergence(masked, torch.tensor([0.0, 1.0], dtype=torch.float64))) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="3 weights"):
        composition_divergence(p.log(), torch.ones(3) / 3)


# -- exact bounds on finite MDPs ------------------------------------------------------------------
def _random_mdp(seed: int, states: int, actions: int, n: int, with_terminal: bool):
    gen = torch.Generator().manual_seed(seed)
    p = torch.rand(states, actions, states, generator=gen, dtype=torch.float64) ** 3
    p = p / p.sum(-1, keepdim=True)
    rewards = 2 * torch.randn(n, states, actions, generator=gen, dtype=torch.float64)
    terminal = None
    if with_terminal:
        terminal = torch.zeros(states, dtype=torch.bool)
        terminal[-1] = True
    return p, rewards, terminal


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    states=st.integers(2, 6),
    actions=st.integers(2, 4),
    n=st.integers(2, 3),
    gamma=st.floats(0.3, 0.95),
    alpha=st.floats(0.1, 3.0),
    with_terminal=st.booleans(),
)
def test_composition_bounds_hold_on_random_mdps(seed, states, actions, n, gamma, alpha, with_terminal):
    p, rewards, terminal = _random_mdp(seed, states, actions, n, with_terminal)
    res = compose_soft_q(p, rewards, gamma=gamma, alpha=alpha, terminal=terminal)
    # Q_w − C* ≤ Q*_w ≤ Q_w
    assert bool((res.q_optimal <= res.q_composed + TOL).all())
    assert bool((res.q_optimal >= res.q_composed - res.composed_bound - TOL).all())
    # Q*_w − D* ≤ Q^{π_w} ≤ Q*_w: the composed policy never beats the optimum, and its gap is bounded.
    assert bool((res.q_policy <= res.q_optimal + TOL).all())
    assert bool((res.q_policy >= res.q_optimal - res.policy_bound - TOL).all())
    assert bool((res.composed_bound >= -TOL).all()) and bool((res.policy_bound >= -TOL).all())


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0.3, 0.95), alpha=st.floats(0.1, 3.0))
def test_composition_is_exact_when_the_constituent_policies_agree(seed, gamma, alpha):
    # r_2 = r_1 shaped by a potential Φ and shifted by a constant has Q*_2 = Q*_1 − Φ(s) + c/(1−γ):
    # the same optimal policy, a different Q.
    p, rewards, _ = _random_mdp(seed, 5, 3, 1, False)
    gen = torch.Generator().manual_seed(seed + 1)
    phi = torch.randn(5, generator=gen, dtype=torch.float64)
    shaped = rewards[0] + gamma * torch.einsum("sat,t->sa", p, phi) - phi[:, None] + 0.7
    res = compose_soft_q(p, [rewards[0], shaped], gamma=gamma, alpha=alpha, weights=[0.3, 0.7])
    torch.testing.assert_close(res.q_constituents[1], res.q_constituents[0] - phi[:, None] + 0.7 / (1 - gamma))
    assert float(res.divergence.abs().max()) < 1e-9
    torch.testing.assert_close(res.q_optimal, res.q_composed, atol=1e-7, rtol=0)
    torch.testing.assert_close(res.q_policy, res.q_optimal, atol=1e-7, rtol=0)


def test_composition_loses_when_the_skills_disagree():
    # One state that loops; two actions; reward 1 prefers action 0, reward 2 prefers action 1.
    p = torch.ones(1, 2, 1, dtype=torch.float64)
    rewards = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]]], dtype=torch.float64)
    res = compose_soft_q(p, rewards, gamma=0.9, alpha=0.5)
    # Here r_w is a constant-shifted mean, so Q*_w has a closed form: V* = α log Σ exp(r_w/α) / (1 − γ).
    r_w = rewards.mean(0)[0]
    v_star = 0.5 * torch.logsumexp(r_w / 0.5, 0) / (1 - 0.9)
    torch.testing.assert_close(res.q_optimal[0], r_w + 0.9 * v_star)
    assert float((res.q_composed - res.q_optimal).min()) > 0.1  # the composed Q overestimates
    assert float(res.composed_bound.min()) > 0.1
    assert float(soft_q_iteration(p, rewards[0], gamma=0.9, alpha=0.5).q[0, 0]) == pytest.approx(float(res.q_constituents[0, 0, 0]))


def test_compose_soft_q_refuses_bad_input():
    p, rewards, _ = _random_mdp(0, 3, 2, 2, False)
    with pytest.raises(ValueError, match="at least two"):
        compose_soft_q(p, rewards[:1], gamma=0.9, alpha=1.0)
    with pytest.raises(ValueError, match="summing to one"):
        compose_soft_q(p, rewards, gamma=0.9, alpha=1.0, weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="alpha must be > 0"):
        compose_soft_q(p, rewards, gamma=0.9, alpha=0.0)


# -- ComposedQ in every part ----------------------------------------------------------------------
BOX = Bounded(-1.0, 1.0, shape=(2,))


def _continuous_q(weights=None):
    torch.manual_seed(0)
    return ComposedQ(continuous_qvalue_network(3, 2, num_cells=[16]), continuous_qvalue_network(3, 2, num_cells=[16]), weights=weights)


def _state(batch=4):
    return TensorDict(observation=torch.randn(batch, 3), batch_size=[batch])


def test_composed_q_is_the_weighted_sum_of_its_members():
    q = _continuous_q(weights=[0.25, 0.75])
    td = _state().set("action", torch.rand(4, 2) * 2 - 1)
    members = [net(td.clone())["state_action_value"] for net in q.qvalue_networks]
    torch.testing.assert_close(q(td.clone())["state_action_value"], 0.25 * members[0] + 0.75 * members[1])
    assert q.in_keys == ["observation", "action"] and q.out_keys == ["state_action_value"]
    assert "weights" in q.state_dict()


def test_composed_q_under_an_ensemble_of_parameters_matches_one_call_per_member():
    q = _continuous_q()
    params = TensorDict.from_module(q)
    stacked = torch.stack([params.clone(), params.apply(lambda t: t + 0.1)])
    td = _state()
    actions = torch.rand(5, 4, 2) * 2 - 1
    vmap = QFunction(q, stacked, mode="vmap").state_action_values(td, actions)
    loop = QFunction(q, stacked, mode="loop").state_action_values(td, actions)
    torch.testing.assert_close(vmap, loop)
    torch.testing.assert_close(QFunction(q, stacked).state_action_values(td, actions), loop)  # auto: a loop here
    assert vmap.shape == (2, 5, 4)


def test_auto_ensemble_mode_is_a_loop_on_one_cpu_thread_bmm_on_several_and_vmap_elsewhere():
    from maxent_components.modules.qfunction import ensemble_mode

    cpu = TensorDict(w=torch.zeros(2, 3), batch_size=[2])
    meta = TensorDict(w=torch.zeros(2, 3, device="meta"), batch_size=[2])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert ensemble_mode("auto", cpu) == "loop"
        torch.set_num_threads(2)
        assert ensemble_mode("auto", cpu) == "bmm"
    finally:
        torch.set_num_threads(threads)
    assert ensemble_mode("auto", meta) == "vmap"
    assert ensemble_mode("vmap", cpu) == "vmap" and ensemble_mode("loop", meta) == "loop"
    with pytest.raises(ValueError, match="mode"):
        QFunction(_continuous_q(), mode="batched")


def test_boltzmann_and_exact_value_on_a_composed_discrete_q():
    torch.manual_seed(0)
    q = ComposedQ(discrete_qvalue_network(3, 4, num_cells=[16]), discrete_qvalue_network(3, 4, num_cells=[16]))
    td = _state()
    mean_q = torch.stack([net(td.clone())["action_value"] for net in q.qvalue_networks]).mean(0)
    alpha = 0.7
    sampler = BoltzmannSampler(q, action_spec=Categorical(4), alpha=alpha)
    torch.testing.assert_close(sampler.log_probs(td), torch.log_softmax(mean_q / alpha, -1))
    torch.testing.assert_close(ExactSoftValue(q, alpha=alpha)(td.clone())["soft_value"].squeeze(-1), soft_value(mean_q, alpha))
    actions, _ = sampler.sample(td, 3)
    assert actions.shape[:2] == (3, 4)


def test_categorical_sampler_trains_against_a_composed_q():
    torch.manual_seed(0)
    q = ComposedQ(discrete_qvalue_network(3, 4, num_cells=[16]), discrete_qvalue_network(3, 4, num_cells=[16]))
    sampler = CategoricalSampler(q, action_spec=OneHot(4), alpha=1.0, observation_dim=3, num_cells=(16,))
    loss = sampler.loss(_state())["loss_actor"]
    loss.backward()
    assert all(p.grad is not None for p in sampler.parameters())
    assert all(p.grad is None for p in q.parameters())  # Q belongs to its own loss


@pytest.mark.parametrize(
    "make",
    [
        lambda q: GaussianSampler(q, action_spec=BOX, alpha=0.5, observation_dim=3, num_cells=(16,)),
        lambda q: SVGDSampler(q, action_spec=BOX, alpha=0.5, observation_dim=3, num_cells=(16,), num_particles=8),
        lambda q: LangevinSampler(q, action_spec=BOX, alpha=0.5, num_steps=5),
        lambda q: LangevinSampler(q, action_spec=BOX, alpha=0.5, num_steps=5, metropolis=True),
        lambda q: UniformSampler(q, action_spec=BOX),
        lambda q: MixtureSampler(
            [GaussianSampler(q, action_spec=BOX, alpha=0.5, observation_dim=3, num_cells=(16,)), UniformSampler(action_spec=BOX)],
            weights=[0.8, 0.2],
        ),
    ],
    ids=["gaussian", "svgd", "ula", "mala", "uniform", "mixture"],
)
def test_every_continuous_sampler_draws_from_a_composed_q(make):
    q = _continuous_q()
    sampler = make(q)
    td = _state()
    actions, _ = sampler.sample(td, 6)
    assert actions.shape == (6, 4, 2)
    assert bool((actions.abs() <= 1).all())
    trainable = list(sampler.parameters())
    if trainable:
        sampler.loss(td)["loss_actor"].backward()
        assert any(p.grad is not None for p in trainable)
        assert all(p.grad is None for p in q.parameters())


def test_soft_q_loss_trains_a_composed_q_with_each_continuous_estimator():
    for make_value in (
        lambda: UniformSoftValue(action_spec=BOX, num_samples=8),
        lambda: ImportanceSoftValue(proposal=GaussianSampler(action_spec=BOX, observation_dim=3, num_cells=(16,)), num_samples=8),
    ):
        q = _continuous_q()
        loss = SoftQLoss(q, make_value(), alpha=0.5)
        batch = _state(8).set("action", torch.rand(8, 2) * 2 - 1)
        batch["next"] = TensorDict(
            observation=torch.randn(8, 3), reward=torch.randn(8, 1), done=torch.zeros(8, 1, dtype=torch.bool),
            terminated=torch.zeros(8, 1, dtype=torch.bool), batch_size=[8],
        )  # fmt: skip
        loss(batch)["loss_qvalue"].backward()
        q_params = [p for name, p in loss.named_parameters() if name.startswith("qvalue_network_params.qvalue_networks.")]
        assert len(q_params) == 8 and all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in q_params)


def test_composed_q_refuses_bad_input():
    cont = continuous_qvalue_network(3, 2, num_cells=[8])
    disc = discrete_qvalue_network(3, 4, num_cells=[8])
    with pytest.raises(ValueError, match="at least two"):
        ComposedQ(cont)
    with pytest.raises(ValueError, match="one and the same out key"):
        ComposedQ(cont, disc)
    with pytest.raises(ValueError, match="2 finite numbers"):
        ComposedQ(cont, continuous_qvalue_network(3, 2, num_cells=[8]), weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="not all zero"):
        ComposedQ(cont, continuous_qvalue_network(3, 2, num_cells=[8]), weights=[0.0, 0.0])
    with pytest.raises(TypeError, match=r"qvalue_networks\[1\]"):
        ComposedQ(cont, torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="finite"):
        ComposedQ(cont, continuous_qvalue_network(3, 2, num_cells=[8]), weights=[float("nan"), 1.0])
