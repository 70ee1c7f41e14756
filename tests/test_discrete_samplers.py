"""Discrete samplers against exact ground truth: the Boltzmann policy softmax(Q/α) is known in closed form."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded, Categorical, OneHot, Unbounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components.checks import set_data_checks
from maxent_components.modules.qfunction import QFunction
from maxent_components.modules.qvalue import discrete_qvalue_network
from maxent_components.objectives import SoftQLoss
from maxent_components.samplers.boltzmann import BoltzmannSampler
from maxent_components.samplers.categorical import (
    CategoricalSampler,
    categorical_policy_network,
)
from maxent_components.soft_value import ExactSoftValue, PolicySoftValue
from maxent_components.temperature import AutoTemperature, FixedTemperature

Q_TABLE = torch.tensor(
    [[1.0, 0.5, -0.3, 2.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 3.0, 2.5, 0.2]], dtype=torch.float32
)


pytestmark = pytest.mark.usefixtures("one_thread")


def tabular_network(table: torch.Tensor, out_key: str, in_key: str = "observation") -> TensorDictModule:
    """``s ↦ table[s]`` on one-hot observations: a network whose outputs are known exactly."""
    linear = nn.Linear(table.shape[0], table.shape[1], bias=False)
    with torch.no_grad():
        linear.weight.copy_(table.T)
    return TensorDictModule(linear, in_keys=[in_key], out_keys=[out_key])


def chi_square_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's χ² p-value of observed counts against probabilities (renormalised in float64)."""
    probs = probs.double() / probs.double().sum()
    return stats.chisquare(counts.double().numpy(), (probs * counts.sum()).numpy()).pvalue


def states_td(states: torch.Tensor, num_states: int = 3, key: str = "observation") -> TensorDict:
    obs = nn.functional.one_hot(states, num_states).float()
    return TensorDict({key: obs}, batch_size=states.shape)


# -- BoltzmannSampler --------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.3, 1.0, 5.0])
def test_boltzmann_frequencies_match_softmax(alpha):
    sampler = BoltzmannSampler(tabular_network(Q_TABLE, "action_value"), action_spec=Categorical(4), alpha=alpha)
    td = states_td(torch.arange(3))
    n = 40_000
    gen = torch.Generator().manual_seed(0)
    actions, _ = sampler.sample(td, n, generator=gen)
    assert actions.shape == (n, 3)
    expected = torch.softmax(Q_TABLE / alpha, -1).double()
    for s in range(3):
        counts = torch.bincount(actions[:, s], minlength=4).double()
        assert chi_square_pvalue(counts, expected[s]) > 1e-3, (s, counts / n, expected[s])
        # and a direct check: within 5 binomial standard deviations
        std = (expected[s] * (1 - expected[s]) / n).sqrt()
        assert ((counts / n - expected[s]).abs() <= 5 * std + 1e-12).all()


def test_boltzmann_chi_square_detects_a_wrong_temperature():
    """The frequency test has power: samples at α = 1 are rejected as samples at α = 0.7."""
    sampler = BoltzmannSampler(tabular_network(Q_TABLE, "action_value"), action_spec=Categorical(4), alpha=1.0)
    n = 40_000
    actions, _ = sampler.sample(states_td(torch.tensor([0])), n, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(actions[:, 0], minlength=4).double()
    wrong = torch.softmax(Q_TABLE[0] / 0.7, -1).double()
    assert chi_square_pvalue(counts, wrong) < 1e-6


def test_boltzmann_log_prob_is_exact():
    alpha = 0.7
    sampler = BoltzmannSampler(tabular_network(Q_TABLE, "action_value"), action_spec=Categorical(4), alpha=alpha)
    td = states_td(torch.tensor([0, 2, 1, 2]))
    expected = torch.log_softmax(Q_TABLE[[0, 2, 1, 2]] / alpha, -1)
    torch.testing.assert_close(sampler.log_probs(td), expected)
    actions, log_prob = sampler.sample(td, 50, generator=torch.Generator().manual_seed(1))
    assert log_prob.shape == (50, 4)
    torch.testing.assert_close(log_prob, expected.expand(50, 4, 4).gather(-1, actions.unsqueeze(-1)).squeeze(-1))
    # log π(a) − log π(b) = (Q_a − Q_b)/α
    lp = sampler.log_probs(td)
    torch.testing.assert_close(lp[:, 0] - lp[:, 1], (Q_TABLE[[0, 2, 1, 2], 0] - Q_TABLE[[0, 2, 1, 2], 1]) / alpha)


@settings(max_examples=40, deadline=None)
@given(
    q=st.lists(st.floats(-50, 50, allow_nan=False, width=32), min_size=2, max_size=6),
    alpha=st.floats(1e-2, 1e2),
)
def test_boltzmann_log_probs_normalised_and_gibbs(q, alpha):
    """Properties: Σ π = 1, and E_π[Q − α log π] = α logsumexp(Q/α) (Gibbs equality)."""
    table = torch.tensor([q], dtype=torch.float32)
    sampler = BoltzmannSampler(tabular_network(table, "action_value"), action_spec=OneHot(len(q)), alpha=alpha)
    lp = sampler.log_probs(states_td(torch.tensor([0]), 1)).double()
    assert abs(lp.exp().sum().item() - 1.0) < 1e-5
    qd = table.double()
    gibbs = (lp.exp() * (qd - alpha * lp)).sum()
    exact = alpha * torch.logsumexp(qd / alpha, -1).squeeze()
    assert abs(gibbs.item() - exact.item()) <= 1e-4 * (1 + abs(exact.item()))


def test_boltzmann_encodings():
    qnet = tabular_network(Q_TABLE, "action_value")
    td = states_td(torch.tensor([0, 1, 2]))
    gen = torch.Generator().manual_seed(0)
    a_onehot, _ = BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=1.0).sample(td, 5, generator=gen)
    assert a_onehot.shape == (5, 3, 4) and a_onehot.dtype == torch.bool
    assert (a_onehot.sum(-1) == 1).all()
    a_index, _ = BoltzmannSampler(qnet, action_spec=Categorical(4), alpha=1.0).sample(td, 5, generator=gen)
    assert a_index.shape == (5, 3) and a_index.dtype == torch.int64
    a_index1, _ = BoltzmannSampler(qnet, action_spec=Categorical(4, shape=(1,)), alpha=1.0).sample(td, 5)
    assert a_index1.shape == (5, 3, 1)
    # the same generator seed gives the same draws in both encodings
    a1, _ = BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=1.0).sample(td, 9, generator=torch.Generator().manual_seed(3))
    a2, _ = BoltzmannSampler(qnet, action_spec=Categorical(4), alpha=1.0).sample(td, 9, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1.long().argmax(-1), a2)


@pytest.mark.parametrize("spec", [Bounded(-1.0, 1.0, shape=(2,)), Unbounded(shape=(3,))])
def test_boltzmann_rejects_continuous_spec(spec):
    with pytest.raises(ValueError, match="action_spec"):
        BoltzmannSampler(tabular_network(Q_TABLE, "action_value"), action_spec=spec)


def test_boltzmann_rejects_bad_inputs():
    qnet = tabular_network(Q_TABLE, "action_value")
    with pytest.raises(ValueError, match="action_spec"):
        BoltzmannSampler(qnet, action_spec=None)
    with pytest.raises(ValueError, match="actions"):
        BoltzmannSampler(qnet, action_spec=OneHot(5), alpha=1.0).sample(states_td(torch.tensor([0])))
    with pytest.raises(ValueError, match="num_samples"):
        BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=1.0).sample(states_td(torch.tensor([0])), 0)
    with pytest.raises(ValueError, match="alpha"):
        BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=-1.0)
    # NaN Q-values are a data error: reported under the data-check switch only (no host sync otherwise).
    nan_net = tabular_network(torch.full((3, 4), math.nan), "action_value")
    nan_sampler = BoltzmannSampler(nan_net, action_spec=OneHot(4), alpha=1.0)
    with set_data_checks(True):
        with pytest.raises(ValueError, match="Q-values.*NaN"):
            nan_sampler.sample(states_td(torch.tensor([0])))
        with pytest.raises(ValueError, match="Q-values.*NaN"):
            nan_sampler.log_probs(states_td(torch.tensor([0])))
    assert torch.isnan(nan_sampler.log_probs(states_td(torch.tensor([0])))).all()
    with pytest.raises(KeyError, match="action_mask"):
        BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=1.0, use_action_mask=True).sample(
            states_td(torch.tensor([0]))
        )
    with pytest.raises(ValueError, match="observation_key|not a key"):
        BoltzmannSampler(qnet, action_spec=OneHot(4)).set_keys(observation_key="x")


def test_boltzmann_action_mask_respected():
    mask = torch.tensor([[True, False, True, False], [False, False, False, True], [True, True, False, True]])
    sampler = BoltzmannSampler(
        tabular_network(Q_TABLE, "action_value"), action_spec=Categorical(4), alpha=1.0, use_action_mask=True
    )
    assert sampler.in_keys == ["observation", "action_mask"]
    td = states_td(torch.arange(3))
    td["action_mask"] = mask
    n = 20_000
    actions, log_prob = sampler.sample(td, n, generator=torch.Generator().manual_seed(0))
    assert mask.gather(-1, actions.T).all()
    expected = torch.softmax(Q_TABLE.masked_fill(~mask, -math.inf), -1)
    for s in range(3):
        freq = torch.bincount(actions[:, s], minlength=4).double() / n
        assert (freq - expected[s]).abs().max() < 0.015
    assert torch.isfinite(log_prob).all()
    # greedy respects the mask: state 2's unmasked argmax is action 1 (Q=3), masked argmax too;
    # state 0's best action 3 is masked, so the greedy action is 0.
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        out = sampler(td.clone())
    assert out["action"].tolist() == [0, 3, 1]
    # A mask excluding every action is a data error, reported under the data-check switch only.
    td["action_mask"] = torch.zeros(3, 4, dtype=torch.bool)
    with set_data_checks(True):
        with pytest.raises(ValueError, match="at least one"):
            sampler.sample(td)
        with pytest.raises(ValueError, match="at least one"):
            sampler.log_probs(td)
    # Without the switch the mask is not read on the host: no error, the policy is undefined (NaN).
    assert not torch.isfinite(sampler.log_probs(td)).any()


def test_boltzmann_zero_temperature_is_greedy():
    sampler = BoltzmannSampler(tabular_network(Q_TABLE, "action_value"), action_spec=Categorical(4), alpha=0.0)
    actions, log_prob = sampler.sample(states_td(torch.tensor([0, 2])), 100)
    assert (actions == torch.tensor([3, 1])).all()
    assert (log_prob == 0).all()


def test_boltzmann_forward_exploration_types():
    sampler = BoltzmannSampler(tabular_network(Q_TABLE, "action_value"), action_spec=OneHot(4), alpha=2.0)
    td = states_td(torch.tensor([0, 1, 2] * 100))
    for kind in (ExplorationType.DETERMINISTIC, ExplorationType.MODE):
        with set_exploration_type(kind):
            out = sampler(td.clone())
        assert (out["action"].long().argmax(-1) == Q_TABLE[td["observation"].argmax(-1)].argmax(-1)).all()
        torch.testing.assert_close(
            out["action_log_prob"],
            torch.log_softmax(Q_TABLE / 2.0, -1)[td["observation"].argmax(-1), Q_TABLE[td["observation"].argmax(-1)].argmax(-1)],
        )
    torch.manual_seed(0)
    with set_exploration_type(ExplorationType.RANDOM):
        out = sampler(td.clone())
    # at α = 2 the sampled actions of state 0 are not all greedy
    assert out["action"].shape == (300, 4)
    assert len(out["action"][0::3].long().argmax(-1).unique()) > 1


def test_boltzmann_temperature_objects_and_keys():
    temperature = FixedTemperature(0.5)
    qnet = tabular_network(Q_TABLE, ("agent", "q"), in_key=("agent", "obs"))
    sampler = BoltzmannSampler(qnet, action_spec=Categorical(4), alpha=temperature)
    sampler.set_keys(observation=("agent", "obs"), action_value=("agent", "q"), action=("agent", "act"))
    assert sampler.temperature is temperature
    assert sampler.in_keys == [("agent", "obs")]
    td = TensorDict({("agent", "obs"): nn.functional.one_hot(torch.tensor([2]), 3).float()}, batch_size=[1])
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        sampler(td)
    assert td["agent", "act"].tolist() == [1]
    torch.testing.assert_close(sampler.log_probs(td), torch.log_softmax(Q_TABLE[[2]] / 0.5, -1))


@pytest.mark.parametrize("kind", ["boltzmann_one_hot", "boltzmann_categorical", "categorical_policy"])
def test_samplers_drive_torchrl_collector_on_cartpole(kind):
    with warnings.catch_warnings():
        # torchrl.collectors announces its own API deprecations on import and construction
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchrl.collectors import Collector
        from torchrl.envs import GymEnv

        torch.manual_seed(0)
        env = GymEnv("CartPole-v1", categorical_action_encoding=kind == "boltzmann_categorical")
        env.set_seed(0)
        qnet = discrete_qvalue_network(4, 2, num_cells=[16])
        if kind == "categorical_policy":
            policy = categorical_policy_network(4, 2, num_cells=[16])
            sampler = CategoricalSampler(qnet, policy, action_spec=env.action_spec, alpha=1.0)
        else:
            sampler = BoltzmannSampler(qnet, action_spec=env.action_spec, alpha=1.0)
        collector = Collector(
            env, sampler, frames_per_batch=32, total_frames=64, auto_register_policy_transforms=False
        )
        batches = list(collector)
        collector.shutdown()
    assert len(batches) == 2
    for batch in batches:
        assert batch.batch_size == (32,)
        if kind == "boltzmann_categorical":
            assert batch["action"].shape == (32,) and set(batch["action"].tolist()) <= {0, 1}
        else:
            assert batch["action"].shape == (32, 2)
            assert (batch["action"].sum(-1) == 1).all()
        assert batch["action_log_prob"].shape == (32,)
        assert (batch["action_log_prob"] <= 0).all()
        assert ("next", "reward") in batch.keys(True)
    env.close()


# -- CategoricalSampler ------------------------------------------------------------------------
def tabular_policy(num_states: int, num_actions: int, *, seed: int = 0) -> TensorDictModule:
    torch.manual_seed(seed)
    linear = nn.Linear(num_states, num_actions, bias=False)
    return TensorDictModule(linear, in_keys=["observation"], out_keys=["logits"])


def test_categorical_loss_equals_hand_computation():
    alpha = 0.4
    policy = tabular_policy(3, 4)
    sampler = CategoricalSampler(tabular_network(Q_TABLE, "action_value"), policy, action_spec=OneHot(4), alpha=alpha)
    states = torch.tensor([0, 1, 2, 2, 0])
    out = sampler.loss(states_td(states))
    logits = policy.module.weight.T[states]
    log_pi = torch.log_softmax(logits, -1)
    expected = (log_pi.exp() * (alpha * log_pi - Q_TABLE[states])).sum(-1).mean()
    torch.testing.assert_close(out["loss_actor"], expected)
    torch.testing.assert_close(out["entropy"], -(log_pi.exp() * log_pi).sum(-1).mean())
    assert out["alpha"].item() == pytest.approx(alpha)
    assert "loss_alpha" not in out.keys()
    assert not out["entropy"].requires_grad and not out["alpha"].requires_grad


def test_categorical_gradient_matches_closed_form():
    """∂/∂z_b Σ_a π_a(α log π_a − Q_a) = π_b (f_b − E_π f) with f = α log π − Q."""
    alpha = 0.8
    policy = tabular_policy(3, 4, seed=1)
    qnet = tabular_network(Q_TABLE, "action_value")
    sampler = CategoricalSampler(qnet, policy, action_spec=Categorical(4), alpha=alpha)
    states = torch.tensor([0, 1, 2, 2, 1, 1])
    sampler.loss(states_td(states))["loss_actor"].backward()
    with torch.no_grad():
        pi = torch.softmax(policy.module.weight.T, -1)
        f = alpha * pi.log() - Q_TABLE
        per_state = pi * (f - (pi * f).sum(-1, keepdim=True))
        counts = torch.bincount(states, minlength=3).float()
        expected = (per_state * counts[:, None] / len(states)).T
    torch.testing.assert_close(policy.module.weight.grad, expected)
    # Q is used without gradient
    assert qnet.module.weight.grad is None


def test_categorical_converges_to_boltzmann():
    alpha = 0.5
    policy = tabular_policy(3, 4, seed=2)
    sampler = CategoricalSampler(tabular_network(Q_TABLE, "action_value"), policy, action_spec=OneHot(4), alpha=alpha)
    optim = torch.optim.Adam(policy.parameters(), lr=0.1)
    td = states_td(torch.arange(3))
    for _ in range(600):
        optim.zero_grad()
        sampler.loss(td)["loss_actor"].backward()
        optim.step()
    target = torch.log_softmax(Q_TABLE / alpha, -1)
    log_pi = sampler.log_probs(td).detach()
    kl = (target.exp() * (target - log_pi)).sum(-1)
    assert kl.max() < 1e-3, kl


def test_categorical_with_mask_converges_to_masked_boltzmann_without_nan():
    alpha = 1.0
    mask = torch.tensor([[True, False, True, False], [False, True, True, True], [True, True, True, True]])
    policy = tabular_policy(3, 4, seed=3)
    sampler = CategoricalSampler(
        tabular_network(Q_TABLE, "action_value"), policy, action_spec=Categorical(4), alpha=alpha, use_action_mask=True
    )
    td = states_td(torch.arange(3))
    td["action_mask"] = mask
    optim = torch.optim.Adam(policy.parameters(), lr=0.1)
    for _ in range(600):
        optim.zero_grad()
        out = sampler.loss(td)
        out["loss_actor"].backward()
        assert torch.isfinite(policy.module.weight.grad).all()
        optim.step()
    assert torch.isfinite(out["loss_actor"]) and torch.isfinite(out["entropy"])
    target = torch.softmax(Q_TABLE.masked_fill(~mask, -math.inf), -1)
    pi = sampler.log_probs(td).exp().detach()
    assert (pi[~mask] == 0).all()
    kl = (target * (target.clamp_min(1e-30).log() - pi.clamp_min(1e-30).log())).sum(-1)
    assert kl.max() < 1e-3
    actions, _ = sampler.sample(td, 500, generator=torch.Generator().manual_seed(0))
    assert mask.gather(-1, actions.T).all()


def test_categorical_auto_temperature_term():
    temperature = AutoTemperature(target_entropy=0.6 * math.log(4), alpha_init=0.3)
    policy = tabular_policy(3, 4)
    sampler = CategoricalSampler(tabular_network(Q_TABLE, "action_value"), policy, action_spec=OneHot(4), alpha=temperature)
    assert any(p is temperature.log_alpha for p in sampler.parameters())
    td = states_td(torch.tensor([0, 1, 2]))
    out = sampler.loss(td)
    # The sampler reports the entropy; the temperature's own loss is computed from it.
    assert "loss_alpha" not in out
    log_pi = torch.log_softmax(policy.module.weight.T, -1).detach()
    ent = -(log_pi.exp() * log_pi).sum(-1)
    torch.testing.assert_close(out["entropy"], ent.mean())
    loss_alpha = temperature.loss(out["entropy"])["loss_alpha"]
    torch.testing.assert_close(loss_alpha, (temperature.log_alpha * (ent - 0.6 * math.log(4))).mean())
    assert out["alpha"].item() == pytest.approx(0.3)
    loss_alpha.backward()
    torch.testing.assert_close(temperature.log_alpha.grad, (ent - 0.6 * math.log(4)).mean())
    # the actor loss does not push gradient into log α (α is detached there)
    temperature.log_alpha.grad = None
    sampler.loss(td)["loss_actor"].backward()
    assert temperature.log_alpha.grad is None


def _member_action_values(qnet, params: TensorDict, td: TensorDict) -> torch.Tensor:
    """``Q_i(s, ·)`` of every member of a stacked parameter set ``[N, ...]``, by hand: ``[N, *B, |A|]``."""
    values = []
    with torch.no_grad():
        for i in range(params.batch_size[0]):
            with params[i].to_module(qnet):
                values.append(qnet(td.copy())["action_value"])
    return torch.stack(values)


@pytest.mark.parametrize("kind", ["boltzmann", "categorical"])
def test_sampler_bound_by_loss_uses_min_over_ensemble(kind):
    """The actor of ``SoftQLoss(..., num_qvalue_nets=2)`` acts with ``min_i Q_i`` of the loss's members."""
    torch.manual_seed(0)
    alpha = 0.7
    qnet = discrete_qvalue_network(3, 4, num_cells=[8])
    if kind == "boltzmann":
        sampler = BoltzmannSampler(action_spec=OneHot(4))
        loss = SoftQLoss(qnet, ExactSoftValue(), actor=sampler, alpha=alpha, num_qvalue_nets=2)
    else:
        policy = tabular_policy(3, 4)
        sampler = CategoricalSampler(policy_network=policy, action_spec=OneHot(4))
        loss = SoftQLoss(qnet, PolicySoftValue(), actor=sampler, alpha=alpha, num_qvalue_nets=2)
    assert loss.actor is sampler
    assert sampler.temperature is loss.temperature
    params = loss.qvalue_network_params
    assert params.batch_size == (2,)
    # the loss's parameters are referenced, not owned, by the sampler
    param_ids = {id(p) for p in params.values(True, True)}
    assert not any(id(p) in param_ids for p in sampler.parameters())
    td = states_td(torch.tensor([0, 1, 2, 2]))

    def check(expected_min):
        q = sampler.action_values(td)
        torch.testing.assert_close(q, expected_min)
        assert not q.requires_grad  # acts with the online members, detached
        if kind == "boltzmann":
            torch.testing.assert_close(sampler.log_probs(td), torch.log_softmax(expected_min / alpha, -1))
        else:
            log_pi = torch.log_softmax(policy.module.weight.T[[0, 1, 2, 2]], -1)
            expected = (log_pi.exp() * (alpha * log_pi - expected_min)).sum(-1).mean()
            torch.testing.assert_close(sampler.loss(td)["loss_actor"], expected)

    # independently initialised members: the min differs from each member
    members = _member_action_values(qnet, params, td)
    hand_min = members.amin(0)
    assert not torch.allclose(hand_min, members[0]) and not torch.allclose(hand_min, members[1])
    check(hand_min)
    # the sampler follows the loss's parameters as they are trained (in place)
    with torch.no_grad():
        params["module", "2", "weight"].zero_()
        params["module", "2", "bias"].copy_(torch.stack([torch.zeros(4), torch.tensor([1.0, -1.0, 1.0, -1.0])]))
    torch.testing.assert_close(_member_action_values(qnet, params, td).amin(0), torch.tensor([0.0, -1.0, 0.0, -1.0]).expand(4, 4))
    check(torch.tensor([0.0, -1.0, 0.0, -1.0]).expand(4, 4))


def test_categorical_sampling_frequencies_and_forward():
    policy = tabular_policy(3, 4, seed=4)
    sampler = CategoricalSampler(tabular_network(Q_TABLE, "action_value"), policy, action_spec=Categorical(4))
    td = states_td(torch.tensor([1]))
    n = 40_000
    actions, log_prob = sampler.sample(td, n, generator=torch.Generator().manual_seed(0))
    pi = torch.softmax(policy.module.weight.T[1], -1).detach().double()
    counts = torch.bincount(actions[:, 0], minlength=4).double()
    assert chi_square_pvalue(counts, pi) > 1e-3
    torch.testing.assert_close(log_prob[:, 0], pi.log().float()[actions[:, 0]])
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        out = sampler(td.clone())
    assert out["action"].item() == pi.argmax().item()


def test_categorical_factory_and_errors():
    policy = categorical_policy_network(3, 4, num_cells=[8])
    qnet = discrete_qvalue_network(3, 4, num_cells=[8])
    assert policy(TensorDict({"observation": torch.randn(6, 3)}, [6]))["logits"].shape == (6, 4)
    sampler = CategoricalSampler(qnet, policy, action_spec=OneHot(4))
    assert {id(p) for p in sampler.parameters()} == {id(p) for p in policy.parameters()}
    with pytest.raises(ValueError, match="action_spec"):
        CategoricalSampler(qnet, policy, action_spec=Bounded(-1.0, 1.0, shape=(4,)))
    with pytest.raises(ValueError, match="actions"):
        CategoricalSampler(qnet, categorical_policy_network(3, 5, num_cells=[8]), action_spec=OneHot(4)).sample(
            TensorDict({"observation": torch.randn(2, 3)}, [2])
        )
    with pytest.raises(TypeError, match="policy_network"):
        CategoricalSampler(qnet, lambda td: td, action_spec=OneHot(4))
    # NaN logits are a data error, reported under the data-check switch only.
    nan_policy = tabular_network(torch.full((3, 4), math.nan), "logits")
    nan_sampler = CategoricalSampler(qnet, nan_policy, action_spec=OneHot(4), alpha=1.0)
    with set_data_checks(True), pytest.raises(ValueError, match="logits.*NaN"):
        nan_sampler.loss(states_td(torch.tensor([0])))
    assert torch.isnan(nan_sampler.loss(states_td(torch.tensor([0])))["loss_actor"])


def test_bind_after_construction():
    """``bind(QFunction(qnet, stacked_params), temperature)``: act with the min over the stack from then on."""
    qnet = discrete_qvalue_network(3, 4, num_cells=[8])
    params = TensorDict.from_module(qnet).expand(2).clone()
    params["module", "2", "weight"] = torch.zeros(2, 4, 8)
    params["module", "2", "bias"] = torch.stack([torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0, 0.0])])
    td = states_td(torch.tensor([0]))
    for sampler in (
        BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=1.0),
        CategoricalSampler(qnet, tabular_policy(3, 4), action_spec=OneHot(4), alpha=1.0),
    ):
        temperature = sampler.temperature
        assert sampler.bind(QFunction(qnet, params), None) is sampler
        assert sampler.temperature is temperature  # None keeps the sampler's temperature
        torch.testing.assert_close(sampler.action_values(td), torch.zeros(1, 4))
        assert not any(p is params["module", "2", "bias"] for p in sampler.parameters())
        sampler.bind(QFunction(qnet), None)
        torch.testing.assert_close(sampler.action_values(td), qnet(td.copy())["action_value"].detach())
        new_temperature = FixedTemperature(0.25)
        sampler.bind(QFunction(qnet), new_temperature)
        assert sampler.temperature is new_temperature
        with pytest.raises(TypeError, match="QFunction"):
            sampler.bind(torch.zeros(3), None)
    # a bound temperature is the one the Boltzmann policy uses
    torch.testing.assert_close(
        BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=1.0).bind(QFunction(qnet), FixedTemperature(0.25)).log_probs(td),
        torch.log_softmax(qnet(td.copy())["action_value"].detach() / 0.25, -1),
    )
    with pytest.raises(TypeError, match="params"):
        QFunction(qnet, torch.zeros(3))


def test_sampler_alone_needs_alpha_and_a_q_network():
    """Used alone, a sampler needs ``alpha=`` (no default temperature) and a Q network."""
    qnet = tabular_network(Q_TABLE, "action_value")
    td = states_td(torch.tensor([0, 2]))
    boltzmann = BoltzmannSampler(qnet, action_spec=OneHot(4))
    assert boltzmann.temperature is None
    for call in (
        lambda: boltzmann.sample(td),
        lambda: boltzmann.log_probs(td),
        lambda: boltzmann(td.clone()),
        lambda: boltzmann.alpha,
    ):
        with pytest.raises(RuntimeError, match="alpha"):
            call()
    categorical = CategoricalSampler(qnet, tabular_policy(3, 4), action_spec=OneHot(4))
    with pytest.raises(RuntimeError, match="alpha"):
        categorical.loss(td)
    # the amortized policy itself does not need alpha to act
    actions, _ = categorical.sample(td, 3)
    assert actions.shape == (3, 2, 4)
    # no Q network: neither can evaluate Q
    for sampler in (
        BoltzmannSampler(action_spec=OneHot(4), alpha=1.0),
        CategoricalSampler(policy_network=tabular_policy(3, 4), action_spec=OneHot(4), alpha=1.0),
    ):
        assert sampler.qvalue_network is None
        with pytest.raises(RuntimeError, match="Q network"):
            sampler.action_values(td)
    with pytest.raises(RuntimeError, match="Q network"):
        BoltzmannSampler(action_spec=OneHot(4), alpha=1.0).sample(td)
    with pytest.raises(RuntimeError, match="Q network"):
        CategoricalSampler(policy_network=tabular_policy(3, 4), action_spec=OneHot(4), alpha=1.0).loss(td)


def test_both_discrete_samplers_reject_a_non_boolean_mask_and_differ_only_in_q_gradient():
    qnet = tabular_network(Q_TABLE, "action_value")
    td = states_td(torch.arange(3))
    td["action_mask"] = torch.ones(3, 4)
    boltzmann = BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=1.0, use_action_mask=True)
    categorical = CategoricalSampler(qnet, tabular_policy(3, 4), action_spec=OneHot(4), alpha=1.0, use_action_mask=True)
    for sampler in (boltzmann, categorical):
        with pytest.raises(TypeError, match="action_mask must be boolean"):
            sampler.sample(td)
    # The exact sampler's log-probabilities are a function of Q and carry the Q network's graph;
    # the amortized actor treats Q as a fixed target: neither its policy nor its loss reaches Q.
    td["action_mask"] = torch.ones(3, 4, dtype=torch.bool)
    weight = qnet.module.weight
    (grad,) = torch.autograd.grad(boltzmann.log_probs(td)[:, 0].sum(), weight)
    pi = torch.softmax(Q_TABLE, -1)
    # ∂ log π_0(s) / ∂Q(s, b) = 1[b = 0] − π_b(s); weight = Q_TABLEᵀ
    torch.testing.assert_close(grad, (torch.nn.functional.one_hot(torch.zeros(3, dtype=torch.long), 4) - pi).T)
    assert torch.autograd.grad(categorical.log_probs(td).sum(), weight, allow_unused=True) == (None,)
    assert torch.autograd.grad(categorical.loss(td)["loss_actor"], weight, allow_unused=True) == (None,)
