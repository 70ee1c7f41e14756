"""SoftQLoss against hand computations, exact soft Q-iteration and TorchRL's conventions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded, Categorical, OneHot
from torchrl.objectives import HardUpdate, SoftUpdate, ValueEstimators

from maxent_components.checks import set_data_checks
from maxent_components.objectives.soft_q import SoftQLoss
from maxent_components.samplers.boltzmann import BoltzmannSampler
from maxent_components.samplers.categorical import (
    CategoricalSampler,
    categorical_policy_network,
)
from maxent_components.soft_value import (
    ExactSoftValue,
    PolicySoftValue,
    UniformSoftValue,
)
from maxent_components.tabular import soft_q_iteration

S, A = 3, 4


pytestmark = pytest.mark.usefixtures("one_thread")


def tabular_q(table: torch.Tensor, *, obs_key="observation", out_key="action_value") -> TensorDictModule:
    """``Q(s, ·) = table[s]`` on one-hot observations, so every Q-value is known exactly."""
    linear = nn.Linear(table.shape[0], table.shape[1], bias=False)
    with torch.no_grad():
        linear.weight.copy_(table.T)
    return TensorDictModule(linear, in_keys=[obs_key], out_keys=[out_key])


def q_table_of(params) -> torch.Tensor:
    """The Q table ``[(N,) S, A]`` held by (stacked) parameters of :func:`tabular_q`."""
    return params["module", "weight"].detach().transpose(-1, -2)


def transitions(
    s, a, r, s_next, terminated, truncated=None, *, encoding="one_hot", num_states=S, num_actions=A
) -> TensorDict:
    s, a, s_next = torch.as_tensor(s), torch.as_tensor(a), torch.as_tensor(s_next)
    terminated = torch.as_tensor(terminated, dtype=torch.bool)
    truncated = torch.zeros_like(terminated) if truncated is None else torch.as_tensor(truncated, dtype=torch.bool)
    action = nn.functional.one_hot(a, num_actions) if encoding == "one_hot" else a
    n = len(s)
    return TensorDict(
        {
            "observation": nn.functional.one_hot(s, num_states).float(),
            "action": action,
            "next": {
                "observation": nn.functional.one_hot(s_next, num_states).float(),
                "reward": torch.as_tensor(r, dtype=torch.float32).reshape(n, 1),
                "terminated": terminated.reshape(n, 1),
                "truncated": truncated.reshape(n, 1),
                "done": (terminated | truncated).reshape(n, 1),
            },
        },
        batch_size=[n],
    )


def sample_batch() -> TensorDict:
    return transitions(
        s=[0, 1, 2, 2, 0, 1],
        a=[3, 0, 1, 2, 0, 3],
        r=[1.0, -0.5, 0.25, 2.0, 0.0, 1.5],
        s_next=[1, 2, 0, 1, 2, 0],
        terminated=[False, True, False, False, False, True],
        truncated=[False, False, True, False, False, False],
    )


Q0 = torch.tensor([[1.0, 0.5, -0.3, 2.0], [0.0, 0.2, 0.1, -1.0], [-1.0, 3.0, 2.5, 0.2]])


def make_loss(alpha=0.5, gamma=0.9, **kwargs):
    qnet = tabular_q(Q0)
    loss = SoftQLoss(qnet, ExactSoftValue(), alpha=alpha, **kwargs)
    loss.make_value_estimator(gamma=gamma)
    return qnet, loss


# -- ground truth --------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["one_hot", "categorical"])
@pytest.mark.parametrize("loss_function", ["l2", "smooth_l1"])
def test_loss_equals_hand_computation(encoding, loss_function):
    alpha, gamma = 0.5, 0.9
    spec = OneHot(A) if encoding == "one_hot" else Categorical(A)
    qnet, loss = make_loss(alpha, gamma, loss_function=loss_function, action_spec=spec)
    SoftUpdate(loss, tau=0.1)
    # make the target differ from the online Q, so that using the wrong one is caught
    loss.target_qvalue_network_params["module", "weight"].data.add_(torch.arange(A * S).reshape(A, S) / 10)
    q_target = q_table_of(loss.target_qvalue_network_params)
    td = sample_batch()
    if encoding == "categorical":
        td["action"] = td["action"].argmax(-1)
    out = loss(td)

    s, a = torch.tensor([0, 1, 2, 2, 0, 1]), torch.tensor([3, 0, 1, 2, 0, 3])
    s_next = torch.tensor([1, 2, 0, 1, 2, 0])
    r = torch.tensor([1.0, -0.5, 0.25, 2.0, 0.0, 1.5])
    term = torch.tensor([0.0, 1, 0, 0, 0, 1])
    v_next = alpha * torch.logsumexp(q_target[s_next] / alpha, -1)
    y = r + gamma * (1 - term) * v_next
    q_sa = Q0[s, a]
    if loss_function == "l2":
        expected = ((q_sa - y) ** 2).mean()
    else:
        expected = nn.functional.smooth_l1_loss(q_sa, y)
    torch.testing.assert_close(out["loss_qvalue"], expected)
    torch.testing.assert_close(out["soft_value"], v_next.mean())
    torch.testing.assert_close(td["td_error"], (q_sa - y).abs())
    torch.testing.assert_close(out["td_error"], (q_sa - y).abs().mean())
    assert out["alpha"].item() == pytest.approx(alpha)
    assert out.batch_size == torch.Size([])
    for key in ("soft_value", "td_error", "alpha"):
        assert not out[key].requires_grad


def test_terminated_masks_and_truncated_bootstraps():
    alpha, gamma = 1.0, 0.5
    qnet, loss = make_loss(alpha, gamma)
    HardUpdate(loss, value_network_update_interval=10)
    td = transitions(
        s=[0, 0, 0], a=[1, 1, 1], r=[2.0, 2.0, 2.0], s_next=[2, 2, 2],
        terminated=[True, False, False], truncated=[False, True, False],
    )
    target, _ = loss.target_value(td)
    v = alpha * torch.logsumexp(Q0[2] / alpha, -1)
    torch.testing.assert_close(target, torch.stack([torch.tensor(2.0), 2 + gamma * v, 2 + gamma * v]))


def test_input_unchanged_except_priority_key():
    _, loss = make_loss()
    SoftUpdate(loss, tau=0.1)
    td = sample_batch()
    before = td.clone()
    loss(td)
    assert set(td.keys(True, True)) == set(before.keys(True, True)) | {"td_error"}
    for key in before.keys(True, True):
        assert torch.equal(td[key], before[key]), key
    assert td["td_error"].shape == (6,)


def test_gradients_only_on_online_q_parameters():
    qnet, loss = make_loss()
    SoftUpdate(loss, tau=0.1)
    params = list(loss.parameters())
    assert len(params) == 1 and params[0] is loss.qvalue_network_params["module", "weight"]
    # the online parameters are the Q module's own (num_qvalue_nets = 1): samplers act with them
    assert params[0] is qnet.module.weight
    assert list(loss.soft_value.parameters()) == []
    loss(sample_batch())["loss_qvalue"].backward()
    assert params[0].grad is not None and params[0].grad.abs().sum() > 0
    for value in loss.target_qvalue_network_params.values(True, True):
        assert not value.requires_grad and value.grad is None


def test_critic_loss_does_not_train_the_policy_of_a_policy_soft_value():
    qnet = tabular_q(Q0)
    policy = categorical_policy_network(S, A, num_cells=[8])
    sampler = CategoricalSampler(policy_network=policy, action_spec=OneHot(A))
    loss = SoftQLoss(qnet, PolicySoftValue(), actor=sampler, alpha=0.3)
    SoftUpdate(loss, tau=0.1)
    # the actor is owned by the loss: its parameters are trained by the one optimiser ...
    assert {id(p) for p in policy.parameters()} <= {id(p) for p in loss.parameters()}
    out = loss(sample_batch())
    # ... but through loss_actor only: the critic's target never carries a gradient to it
    out["loss_qvalue"].backward()
    assert all(p.grad is None for p in policy.parameters())
    assert out["alpha"].item() == pytest.approx(0.3)


def test_gibbs_policy_soft_value_of_boltzmann_equals_exact():
    """V^π = E_π[Q − α log π] = α logsumexp(Q/α) when π = softmax(Q/α) (Gibbs equality)."""
    alpha = 0.7
    qnet = tabular_q(Q0)
    exact = SoftQLoss(qnet, ExactSoftValue(), alpha=alpha)
    # π = softmax(Q_target/α): the Boltzmann policy of the target Q, which a policy sampler bound
    # to the loss evaluates with the online Q; here the online Q is set equal to the target.
    gibbs = SoftQLoss(qnet, PolicySoftValue(), actor=BoltzmannSampler(action_spec=OneHot(A)), alpha=alpha)
    for loss in (exact, gibbs):
        SoftUpdate(loss, tau=0.1)
        loss.make_value_estimator(gamma=0.9)
        loss.target_qvalue_network_params["module", "weight"].data.copy_(2 * Q0.T - 1)
    with torch.no_grad():
        qnet.module.weight.copy_(2 * Q0.T - 1)
    out_exact, out_gibbs = exact(sample_batch()), gibbs(sample_batch())
    torch.testing.assert_close(out_gibbs["loss_qvalue"], out_exact["loss_qvalue"])
    torch.testing.assert_close(out_gibbs["soft_value"], out_exact["soft_value"])
    # and the Gibbs inequality for a non-Boltzmann policy: V^π < V
    torch.manual_seed(0)
    other = CategoricalSampler(policy_network=categorical_policy_network(S, A, num_cells=[8]), action_spec=OneHot(A))
    below = SoftQLoss(tabular_q(Q0), PolicySoftValue(), actor=other, alpha=alpha)
    SoftUpdate(below, tau=0.1)
    below.make_value_estimator(gamma=0.9)
    below.target_qvalue_network_params["module", "weight"].data.copy_(2 * Q0.T - 1)
    assert below(sample_batch())["soft_value"] < out_exact["soft_value"] - 1e-3


def test_continuous_q_with_uniform_soft_value():
    """Q(s, a) = w·s does not depend on a, so the uniform estimate is exact: V = w·s + α log vol(A)."""

    class ObsOnlyQ(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))

        def forward(self, obs, action):
            return (obs * self.w).sum(-1, keepdim=True) + 0.0 * action.sum(-1, keepdim=True)

    qnet = TensorDictModule(ObsOnlyQ(), in_keys=["observation", "action"], out_keys=["state_action_value"])
    spec = Bounded(low=torch.tensor([-1.0, 0.0]), high=torch.tensor([1.0, 3.0]))
    alpha, gamma = 0.4, 0.95
    loss = SoftQLoss(qnet, UniformSoftValue(action_spec=spec, num_samples=8), alpha=alpha)
    loss.make_value_estimator(gamma=gamma)
    SoftUpdate(loss, tau=0.1)
    torch.manual_seed(0)
    obs, next_obs = torch.randn(5, 3), torch.randn(5, 3)
    td = TensorDict(
        {
            "observation": obs,
            "action": torch.rand(5, 2),
            "next": {
                "observation": next_obs,
                "reward": torch.randn(5, 1),
                "done": torch.tensor([[False], [True], [False], [False], [False]]),
                "terminated": torch.tensor([[False], [True], [False], [False], [False]]),
            },
        },
        batch_size=[5],
    )
    out = loss(td)
    w = torch.tensor([0.5, -1.0, 2.0])
    v_next = next_obs @ w + alpha * math.log(2.0 * 3.0)
    y = td["next", "reward"].squeeze(-1) + gamma * (1 - td["next", "terminated"].float().squeeze(-1)) * v_next
    torch.testing.assert_close(out["loss_qvalue"], ((obs @ w - y) ** 2).mean())
    torch.testing.assert_close(out["soft_value"], v_next.mean())


def test_fitted_soft_q_iteration_converges_to_exact_fixed_point():
    """Minimising SoftQLoss with a tabular Q and hard target copies is soft Q-iteration.

    Every (s, a, s') triple appears once with priority weight P(s'|s, a), so the weighted TD loss
    of each (s, a) is minimised exactly at the expected backup r(s, a) + γ E_{s'}[V(s')].
    """
    gen = torch.Generator().manual_seed(0)
    num_s, num_a = 4, 3
    P = torch.rand(num_s, num_a, num_s, generator=gen, dtype=torch.float64) ** 2
    P /= P.sum(-1, keepdim=True)
    R = torch.randn(num_s, num_a, generator=gen, dtype=torch.float64)
    terminal = torch.tensor([False, False, False, True])
    gamma, alpha = 0.7, 0.5
    exact = soft_q_iteration(P, R, gamma=gamma, alpha=alpha, terminal=terminal, tol=1e-10).q

    s, a, s_next = torch.meshgrid(torch.arange(num_s), torch.arange(num_a), torch.arange(num_s), indexing="ij")
    s, a, s_next = s.flatten(), a.flatten(), s_next.flatten()
    td = transitions(
        s, a, R[s, a].float(), s_next, terminal[s_next], encoding="categorical", num_states=num_s, num_actions=num_a
    )
    td["priority_weight"] = P[s, a, s_next].float()

    qnet = tabular_q(torch.zeros(num_s, num_a))
    loss = SoftQLoss(qnet, ExactSoftValue(), alpha=alpha, action_spec=Categorical(num_a))
    loss.make_value_estimator(gamma=gamma)
    inner = 15
    # TorchRL's HardUpdate copies on every (interval + 1)-th step
    updater = HardUpdate(loss, value_network_update_interval=inner - 1)
    # each Q(s, a) has weight 1 out of num_s·num_a in the weighted mean: this step size halves the gap
    optim = torch.optim.SGD(loss.parameters(), lr=0.25 * num_s * num_a)
    for _ in range(45 * inner):
        optim.zero_grad()
        loss(td)["loss_qvalue"].backward()
        optim.step()
        updater.step()
    q = q_table_of(loss.qvalue_network_params).double()
    # terminal rows are never regressed on targets that matter (V(terminal) = 0 is imposed by the flag)
    torch.testing.assert_close(q[~terminal], exact[~terminal], atol=2e-4, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    alpha=st.floats(0.05, 20.0),
    gamma=st.floats(0.05, 1.0),
    shift=st.floats(-100.0, 100.0),
)
def test_target_identities(seed, alpha, gamma, shift):
    """y = r + γ(1−term) V̄(s'); shifting the target Q by c shifts y by γ(1−term)c; α = 0 gives max."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(S, A, generator=gen) * 3
    loss = SoftQLoss(tabular_q(table), ExactSoftValue(), alpha=alpha)
    loss.make_value_estimator(gamma=gamma)
    SoftUpdate(loss, tau=0.1)
    td = sample_batch()
    td["next", "reward"] = torch.randn(6, 1, generator=gen)
    not_term = 1 - td["next", "terminated"].float().squeeze(-1)
    r = td["next", "reward"].squeeze(-1)
    s_next = td["next", "observation"].argmax(-1)
    y, _ = loss.target_value(td)
    torch.testing.assert_close(y, r + gamma * not_term * alpha * torch.logsumexp(table[s_next] / alpha, -1))
    loss.target_qvalue_network_params["module", "weight"].data.add_(shift)
    y_shifted, _ = loss.target_value(td)
    torch.testing.assert_close(y_shifted, y + gamma * not_term * shift, atol=1e-4, rtol=1e-5)
    hard = SoftQLoss(tabular_q(table), ExactSoftValue(), alpha=0.0)
    hard.make_value_estimator(gamma=gamma)
    SoftUpdate(hard, tau=0.1)
    torch.testing.assert_close(hard.target_value(td)[0], r + gamma * not_term * table[s_next].amax(-1))
    # the soft target is never below the hard one: V = α logsumexp(Q/α) ≥ max Q
    assert (y >= hard.target_value(td)[0] - 1e-5).all()


# -- ensembles -----------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["min", "mean"])
@pytest.mark.parametrize("ensemble_mode", ["vmap", "loop"])
def test_ensemble_min_and_mean_targets(reduction, ensemble_mode):
    alpha, gamma = 0.5, 0.9
    qnet = tabular_q(Q0)
    loss = SoftQLoss(
        qnet, ExactSoftValue(), alpha=alpha, num_qvalue_nets=2,
        target_reduction=reduction, ensemble_mode=ensemble_mode,
    )
    loss.make_value_estimator(gamma=gamma)
    SoftUpdate(loss, tau=0.1)
    online = torch.stack([Q0, Q0 + torch.linspace(-1, 1, A)])
    target_tables = torch.stack([Q0 - 0.5, Q0.flip(-1)])
    loss.qvalue_network_params["module", "weight"].data.copy_(online.transpose(-1, -2))
    loss.target_qvalue_network_params["module", "weight"].data.copy_(target_tables.transpose(-1, -2))
    td = sample_batch()
    out = loss(td)

    s, a = torch.tensor([0, 1, 2, 2, 0, 1]), torch.tensor([3, 0, 1, 2, 0, 3])
    s_next = torch.tensor([1, 2, 0, 1, 2, 0])
    r = torch.tensor([1.0, -0.5, 0.25, 2.0, 0.0, 1.5])
    term = torch.tensor([0.0, 1, 0, 0, 0, 1])
    v_members = alpha * torch.logsumexp(target_tables[:, s_next] / alpha, -1)
    v = v_members.amin(0) if reduction == "min" else v_members.mean(0)
    y = r + gamma * (1 - term) * v
    q_sa = online[:, s, a]
    torch.testing.assert_close(out["loss_qvalue"], ((q_sa - y) ** 2).mean(-1).sum())
    torch.testing.assert_close(td["td_error"], (q_sa - y).abs().amax(0))
    torch.testing.assert_close(out["soft_value"], v.mean())
    out["loss_qvalue"].backward()
    assert loss.qvalue_network_params["module", "weight"].grad.shape == (2, A, S)


@pytest.mark.parametrize("use_generator", [False, True])
def test_ensemble_members_share_samples_of_sampled_estimators(use_generator):
    """The estimator draws its samples once; every member evaluates Q on the same actions."""

    class LinearQ(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(5, 1)

        def forward(self, obs, action):
            return self.linear(torch.cat([obs, action], -1)) + (action**2).sum(-1, keepdim=True)

    torch.manual_seed(0)
    qnet = TensorDictModule(LinearQ(), in_keys=["observation", "action"], out_keys=["state_action_value"])
    spec = Bounded(-1.0, 1.0, shape=(2,))
    td = TensorDict(
        {
            "observation": torch.randn(7, 3),
            "action": torch.rand(7, 2),
            "next": {
                "observation": torch.randn(7, 3),
                "reward": torch.randn(7, 1),
                "done": torch.zeros(7, 1, dtype=torch.bool),
                "terminated": torch.zeros(7, 1, dtype=torch.bool),
            },
        },
        batch_size=[7],
    )
    shared = TensorDict.from_module(qnet).data
    targets = {}
    for mode in ("vmap", "loop"):
        for reduction in ("min", "mean"):
            generator = torch.Generator().manual_seed(5) if use_generator else None
            estimator = UniformSoftValue(action_spec=spec, num_samples=4, generator=generator)
            loss = SoftQLoss(
                qnet, estimator, alpha=0.5, num_qvalue_nets=2, target_reduction=reduction, ensemble_mode=mode
            )
            SoftUpdate(loss, tau=0.1)
            # both members (and every loss built here) get the Q module's own parameters
            loss.target_qvalue_network_params.data.copy_(shared.expand(2))
            torch.manual_seed(1)
            targets[mode, reduction] = loss.target_value(td)[0]
    # identical members: min = mean only if both members saw the same uniform samples
    torch.testing.assert_close(targets["vmap", "min"], targets["vmap", "mean"])
    torch.testing.assert_close(targets["loop", "min"], targets["loop", "mean"])
    torch.testing.assert_close(targets["vmap", "min"], targets["loop", "min"])
    if not use_generator:
        # and the estimate is genuinely random: another seed gives another target
        torch.manual_seed(2)
        assert not torch.allclose(loss.target_value(td)[0], targets["loop", "mean"])


# -- TorchRL conventions -------------------------------------------------------------------------
def test_set_keys_unknown_raises_and_nested_keys_work():
    _, loss = make_loss()
    with pytest.raises(ValueError, match="not an accepted tensordict key"):
        loss.set_keys(observation_key="x")

    nested_q = tabular_q(Q0, obs_key=("agent", "obs"), out_key=("agent", "q"))
    estimator = ExactSoftValue().set_keys(observation=("agent", "obs"), action_value=("agent", "q"))
    nested = SoftQLoss(nested_q, estimator, alpha=0.5, action_spec=OneHot(A))
    nested.make_value_estimator(gamma=0.9)
    nested.set_keys(
        observation=("agent", "obs"), action=("agent", "act"), reward=("agent", "rew"),
        done=("agent", "done"), terminated=("agent", "term"), action_value=("agent", "q"),
        priority=("agent", "prio"),
    )
    SoftUpdate(nested, tau=0.1)
    _, plain = make_loss(0.5, 0.9, action_spec=OneHot(A))
    SoftUpdate(plain, tau=0.1)
    td = sample_batch()
    td_nested = TensorDict(
        {
            ("agent", "obs"): td["observation"],
            ("agent", "act"): td["action"],
            ("next", "agent", "obs"): td["next", "observation"],
            ("next", "agent", "rew"): td["next", "reward"],
            ("next", "agent", "done"): td["next", "done"],
            ("next", "agent", "term"): td["next", "terminated"],
        },
        batch_size=[6],
    )
    assert ("next", "agent", "rew") in nested.in_keys and ("next", "agent", "obs") in nested.in_keys
    torch.testing.assert_close(nested(td_nested)["loss_qvalue"], plain(td)["loss_qvalue"])
    torch.testing.assert_close(td_nested["agent", "prio"], td["td_error"])


def test_state_dict_round_trip():
    torch.manual_seed(0)
    qnet, loss = make_loss()
    updater = SoftUpdate(loss, tau=0.3)
    optim = torch.optim.Adam(loss.parameters(), lr=0.05)
    for _ in range(5):
        optim.zero_grad()
        loss(sample_batch())["loss_qvalue"].backward()
        optim.step()
        updater.step()
    state = loss.state_dict()
    assert any(k.startswith("target_qvalue_network_params") for k in state)

    fresh_q = tabular_q(torch.randn(S, A))
    fresh = SoftQLoss(fresh_q, ExactSoftValue(), alpha=0.5)
    fresh.make_value_estimator(gamma=0.9)
    SoftUpdate(fresh, tau=0.3)
    assert not torch.allclose(fresh(sample_batch())["loss_qvalue"], loss(sample_batch())["loss_qvalue"])
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(sample_batch())["loss_qvalue"], loss(sample_batch())["loss_qvalue"])
    torch.testing.assert_close(
        q_table_of(fresh.target_qvalue_network_params), q_table_of(loss.target_qvalue_network_params)
    )
    # the fresh Q module itself now holds the loaded parameters
    torch.testing.assert_close(fresh_q.module.weight, qnet.module.weight)


def test_soft_update_and_hard_update_move_the_target():
    _, loss = make_loss()
    tau = 0.25
    updater = SoftUpdate(loss, tau=tau)
    online = loss.qvalue_network_params["module", "weight"]
    target = loss.target_qvalue_network_params["module", "weight"]
    assert torch.equal(online, target) and target.data_ptr() != online.data_ptr()
    before = target.clone()
    with torch.no_grad():
        online.add_(1.0)
    updater.step()
    torch.testing.assert_close(target, (1 - tau) * before + tau * online.detach())

    _, loss = make_loss()
    hard = HardUpdate(loss, value_network_update_interval=3)
    online = loss.qvalue_network_params["module", "weight"]
    target = loss.target_qvalue_network_params["module", "weight"]
    before = target.clone()
    with torch.no_grad():
        online.add_(1.0)
    # TorchRL's HardUpdate counts 0..interval and copies when the counter reaches the interval,
    # i.e. on every (interval + 1)-th call
    for _ in range(3):
        hard.step()
        assert torch.equal(target, before)
    hard.step()
    assert torch.equal(target, online.detach())


def test_value_estimators_td1_and_gamma():
    """TD(1) on a trajectory: G_t = r_t + γ G_{t+1}, bootstrapping from V̂(s_T) at the end."""
    alpha, gamma = 0.5, 0.8
    _, loss = make_loss(alpha, gamma)
    SoftUpdate(loss, tau=0.1)
    s = torch.tensor([0, 1, 2, 0])
    s_next = torch.tensor([1, 2, 0, 2])
    r = torch.tensor([1.0, -1.0, 0.5, 2.0])
    td = transitions(s, torch.tensor([0, 1, 2, 3]), r, s_next, [False] * 4)
    loss.make_value_estimator(ValueEstimators.TD1)
    assert loss.gamma == gamma
    target, _ = loss.target_value(td)
    g = alpha * torch.logsumexp(Q0[2] / alpha, -1)
    expected = []
    for t in reversed(range(4)):
        g = r[t] + gamma * g
        expected.append(g)
    torch.testing.assert_close(target, torch.stack(expected[::-1]))
    loss.make_value_estimator(ValueEstimators.TD0, gamma=0.5)
    assert loss.gamma == 0.5
    with pytest.raises(ValueError, match="gamma"):
        loss.make_value_estimator(ValueEstimators.TD0, gamma=1.5)
    with pytest.raises(NotImplementedError, match="GAE"):
        loss.make_value_estimator(ValueEstimators.GAE)


# -- errors --------------------------------------------------------------------------------------
def test_constructor_errors():
    qnet = tabular_q(Q0)
    for gamma in (0.0, -0.1, 1.5, math.nan, True):
        with pytest.raises(ValueError, match="gamma"):
            SoftQLoss(qnet, ExactSoftValue(), alpha=1.0).make_value_estimator(gamma=gamma)
    with pytest.raises(TypeError, match="gamma"):
        SoftQLoss(qnet, ExactSoftValue(), alpha=1.0, gamma=0.9)  # TorchRL: gamma goes to the value estimator
    with pytest.raises(ValueError, match="num_qvalue_nets"):
        SoftQLoss(qnet, ExactSoftValue(), alpha=1.0, num_qvalue_nets=0)
    with pytest.raises(ValueError, match="target_reduction"):
        SoftQLoss(qnet, ExactSoftValue(), alpha=1.0, target_reduction="max")
    with pytest.raises(ValueError, match="loss_function"):
        SoftQLoss(qnet, ExactSoftValue(), alpha=1.0, loss_function="l3")
    with pytest.raises(ValueError, match="action_spec"):
        SoftQLoss(qnet, ExactSoftValue(), alpha=1.0, action_spec=Bounded(-1.0, 1.0, shape=(2,)))
    with pytest.raises(TypeError, match="soft_value"):
        SoftQLoss(qnet, 3.0, alpha=1.0)
    with pytest.raises(ValueError, match="alpha is required"):
        SoftQLoss(qnet, ExactSoftValue())
    SoftQLoss(qnet, ExactSoftValue(), alpha=1.0).make_value_estimator(gamma=1.0)  # undiscounted is allowed


def test_forward_errors_name_the_culprit():
    _, loss = make_loss()
    SoftUpdate(loss, tau=0.1)
    td = sample_batch()
    td["next", "reward"][2] = math.nan
    # The first batch's values are checked once ...
    with pytest.raises(ValueError, match=r"SoftQLoss input row 3: next.reward=\[nan\] is not finite"):
        loss(td)
    loss(sample_batch())
    loss(td)  # ... later ones only under data checks: no host synchronisation in training
    with set_data_checks(True), pytest.raises(ValueError, match="row 3: next.reward"):
        loss(td)
    td = sample_batch()
    td["next", "reward"] = td["next", "reward"].squeeze(-1)
    with pytest.raises(ValueError, match="reward.*shape"):
        loss(td)
    td = sample_batch()
    td["action"] = td["action"][:, :3]
    with pytest.raises(ValueError, match="action"):
        loss(td)
    td = sample_batch()
    del td["next", "reward"]
    with pytest.raises(KeyError, match="reward"):
        loss(td)
    odd_q = TensorDictModule(nn.Linear(S, A), in_keys=["observation"], out_keys=["something"])
    odd = SoftQLoss(odd_q, ExactSoftValue().set_keys(action_value="something"), alpha=1.0)
    SoftUpdate(odd, tau=0.1)
    with pytest.raises(KeyError, match="action_value"):
        odd(sample_batch())
    odd.set_keys(action_value="something")
    assert torch.isfinite(odd(sample_batch())["loss_qvalue"])
    with torch.no_grad():
        loss.qvalue_network_params["module", "weight"][0, 0] = math.inf
    with set_data_checks(True), pytest.raises(ValueError, match="Q-values.*NaN"):
        loss(sample_batch())
    _, loss = make_loss()
    SoftUpdate(loss, tau=0.1)
    with torch.no_grad():
        loss.target_qvalue_network_params["module", "weight"][0, 1] = math.nan
    with set_data_checks(True), pytest.raises(ValueError, match="NaN"):
        loss(sample_batch())


def test_discrete_sac_critic_with_ensemble_policy_soft_value():
    """Target = min_i Σ_a π(a|s')(Q̄_i(s', a) − α log π(a|s')) with the actor's own π."""
    alpha, gamma = 0.3, 0.9
    qnet = tabular_q(Q0)
    policy = categorical_policy_network(S, A, num_cells=[8])
    sampler = CategoricalSampler(policy_network=policy, action_spec=OneHot(A))
    loss = SoftQLoss(qnet, PolicySoftValue(), actor=sampler, alpha=alpha, num_qvalue_nets=2)
    loss.make_value_estimator(gamma=gamma)
    SoftUpdate(loss, tau=0.1)
    target_tables = torch.stack([Q0 - 0.5, Q0.flip(-1)])
    loss.target_qvalue_network_params["module", "weight"].data.copy_(target_tables.transpose(-1, -2))
    td = sample_batch()
    target, _ = loss.target_value(td)
    with torch.no_grad():
        log_pi = torch.log_softmax(policy(td["next"].select("observation").copy())["logits"], -1)
    s_next = torch.tensor([1, 2, 0, 1, 2, 0])
    v_members = (log_pi.exp() * (target_tables[:, s_next] - alpha * log_pi)).sum(-1)
    term = torch.tensor([0.0, 1, 0, 0, 0, 1])
    expected = td["next", "reward"].squeeze(-1) + gamma * (1 - term) * v_members.amin(0)
    torch.testing.assert_close(target, expected)


def test_discrete_sac_evaluates_the_online_critics_once_and_the_actor_sees_the_same_q():
    """The actor's loss reuses the TD loss's Q(s, ·): per forward, N online and N target evaluations
    of the network (not 2N online), and the same actor loss as evaluating Q again."""
    alpha = 0.3
    qnet = tabular_q(Q0)
    sampler = CategoricalSampler(policy_network=categorical_policy_network(S, A, num_cells=[8]), action_spec=OneHot(A))
    loss = SoftQLoss(qnet, PolicySoftValue(), actor=sampler, alpha=alpha, num_qvalue_nets=2)
    SoftUpdate(loss, tau=0.1)
    calls = []
    qnet.module.register_forward_hook(lambda *args: calls.append(1))
    td = sample_batch()
    out = loss(td)
    assert len(calls) == 2 + 2
    calls.clear()
    again = sampler.loss(td, qvalue=loss.qfunction())["loss_actor"]
    assert len(calls) == 2
    torch.testing.assert_close(out["loss_actor"], again)
    # The reused values carry no gradient to Q: only the actor's parameters get one from loss_actor.
    out["loss_actor"].backward()
    assert all(p.grad is None for p in loss.qvalue_network_params.values(True, True))
    assert any(p.grad is not None for p in sampler.parameters())


def test_a_known_evaluation_answers_only_its_own_batch_and_key():
    from maxent_components.modules.qfunction import QFunction

    qnet = tabular_q(Q0)
    q = QFunction(qnet)
    td, other = sample_batch(), sample_batch()
    values = torch.randn(1, *td.batch_size, A, requires_grad=True)
    known = q.knowing(td, values)
    assert known.action_values(td) is values
    torch.testing.assert_close(known.action_values(other), q.action_values(other))  # another batch: evaluated
    with pytest.raises(KeyError, match="other"):  # another key: the network is asked (and lacks it)
        known.action_values(td, value_key="other")
    detached = known.detached()
    assert not detached.action_values(td).requires_grad
    torch.testing.assert_close(detached.action_values(td), values.detach())


def test_priority_weights_weight_the_mean():
    alpha, gamma = 0.5, 0.9
    _, loss = make_loss(alpha, gamma)
    SoftUpdate(loss, tau=0.1)
    td = sample_batch()
    weights = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.0, 3.0])
    td["priority_weight"] = weights
    out = loss(td)
    y, _ = loss.target_value(td)
    q_sa = Q0[[0, 1, 2, 2, 0, 1], [3, 0, 1, 2, 0, 3]]
    torch.testing.assert_close(out["loss_qvalue"], (weights * (q_sa - y) ** 2).sum() / weights.sum())


def test_importance_estimator_reports_effective_sample_size():
    from maxent_components.samplers.uniform import UniformSampler
    from maxent_components.soft_value import ImportanceSoftValue

    torch.manual_seed(0)
    qnet = TensorDictModule(_CatQ(), in_keys=["observation", "action"], out_keys=["state_action_value"])
    spec = Bounded(-1.0, 1.0, shape=(2,))
    k = 16
    loss = SoftQLoss(qnet, ImportanceSoftValue(proposal=UniformSampler(action_spec=spec), num_samples=k), alpha=1.0)
    SoftUpdate(loss, tau=0.1)
    td = TensorDict(
        {
            "observation": torch.randn(4, 3),
            "action": torch.rand(4, 2),
            "next": {
                "observation": torch.randn(4, 3),
                "reward": torch.randn(4, 1),
                "done": torch.zeros(4, 1, dtype=torch.bool),
                "terminated": torch.zeros(4, 1, dtype=torch.bool),
            },
        },
        batch_size=[4],
    )
    out = loss(td)
    assert 1.0 <= out["ess"].item() <= k
    assert not out["ess"].requires_grad


class _CatQ(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, obs, action):
        return self.net(torch.cat([obs, action], -1))


@pytest.mark.parametrize("num_qvalue_nets", [1, 2])
def test_foreach_soft_update_equals_torchrl_soft_update(num_qvalue_nets):
    """The fused Polyak step gives TorchRL's SoftUpdate targets, θ̄ ← (1 − τ) θ̄ + τ θ, bit for bit
    up to float rounding, over several steps while the online parameters move."""
    from maxent_components.objectives.targets import ForeachSoftUpdate

    def build():
        torch.manual_seed(3)
        qnet = TensorDictModule(nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)), ["observation"], ["action_value"])
        return SoftQLoss(qnet, ExactSoftValue(), alpha=0.5, num_qvalue_nets=num_qvalue_nets)

    ours, theirs = build(), build()
    fused, reference = ForeachSoftUpdate(ours, tau=0.2), SoftUpdate(theirs, tau=0.2)
    target_before = ours.target_qvalue_network_params.clone()
    for step in range(4):
        for loss in (ours, theirs):
            torch.manual_seed(step)
            loss.qvalue_network_params.apply(lambda p: p.data.add_(torch.randn_like(p)))
        fused.step()
        reference.step()
        torch.testing.assert_close(ours.target_qvalue_network_params.to_dict(), theirs.target_qvalue_network_params.to_dict())
    assert not (ours.target_qvalue_network_params == target_before).all()
    assert fused.state_dict() == reference.state_dict()
