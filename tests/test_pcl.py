"""Path consistency learning against the exact soft optimum of finite MDPs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import OneHot

from maxent_components import functional as F
from maxent_components.objectives import PathConsistencyLoss
from maxent_components.samplers import BoltzmannSampler, CategoricalSampler
from maxent_components.soft_value import ExactSoftValue
from maxent_components.tabular import soft_q_iteration

pytestmark = pytest.mark.usefixtures("one_thread")
S, A, L = 6, 3, 4


def deterministic_mdp(seed: int):
    """Random deterministic transitions (``P`` one-hot) and rewards; state ``S − 1`` is terminal."""
    gen = torch.Generator().manual_seed(seed)
    nxt = torch.randint(S, (S, A), generator=gen)
    P = torch.nn.functional.one_hot(nxt, S).double()
    R = torch.randn(S, A, generator=gen, dtype=torch.float64)
    terminal = torch.zeros(S, dtype=torch.bool)
    terminal[-1] = True
    return P, R, terminal, nxt


def table_module(table: torch.Tensor, out_key: str) -> TensorDictModule:
    """``f(s) = table[s]`` on one-hot observations (a linear layer without bias)."""
    linear = nn.Linear(table.shape[0], table.shape[-1] if table.ndim > 1 else 1, bias=False).double()
    with torch.no_grad():
        linear.weight.copy_(table.T if table.ndim > 1 else table.unsqueeze(0))
    return TensorDictModule(linear, in_keys=["observation"], out_keys=[out_key])


def slices(P, R, terminal, nxt, policy, *, num: int, seed: int) -> TensorDict:
    """``num`` paths of ``L`` steps of ``policy`` (stopping at the terminal state) from random starts."""
    gen = torch.Generator().manual_seed(seed)
    obs, actions, rewards, next_obs, terms = [], [], [], [], []
    while len(obs) < num:
        s = int(torch.randint(S - 1, (1,), generator=gen))
        path = []
        for _ in range(L):
            a = int(torch.multinomial(policy[s], 1, generator=gen))
            s2 = int(nxt[s, a])
            path.append((s, a, float(R[s, a]), s2, bool(terminal[s2])))
            if terminal[s2]:
                break
            s = s2
        if len(path) < L:  # slices lie inside an episode: keep the last L steps of a terminated one only when long enough
            continue
        o, a, r, o2, t = zip(*path)
        obs.append(o), actions.append(a), rewards.append(r), next_obs.append(o2), terms.append(t)
    one_hot = lambda x: torch.nn.functional.one_hot(torch.tensor(x), S).double()  # noqa: E731
    return TensorDict(
        {
            "observation": one_hot(obs),
            "action": torch.nn.functional.one_hot(torch.tensor(actions), A),
            "next": {
                "observation": one_hot(next_obs),
                "reward": torch.tensor(rewards, dtype=torch.float64).unsqueeze(-1),
                "terminated": torch.tensor(terms).unsqueeze(-1),
                "done": torch.tensor(terms).unsqueeze(-1),
            },
        },
        batch_size=[num, L],
    )


def exact(seed: int, alpha: float, gamma: float):
    P, R, terminal, nxt = deterministic_mdp(seed)
    solved = soft_q_iteration(P, R, gamma=gamma, alpha=alpha, terminal=terminal, tol=1e-12)
    return P, R, terminal, nxt, solved


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), alpha=st.floats(0.05, 5.0), gamma=st.floats(0.5, 0.99))
def test_every_path_is_consistent_at_the_exact_soft_optimum_and_not_for_another_policy(seed, alpha, gamma):
    P, R, terminal, nxt, solved = exact(seed, alpha, gamma)
    policy = solved.log_policy.exp()
    td = slices(P, R, terminal, nxt, policy, num=64, seed=seed)
    spec = OneHot(A)
    # PCL: V* in a value network, π* = softmax(Q*/α) as the actor's logits
    actor = CategoricalSampler(policy_network=table_module(solved.q / alpha, "logits"), action_spec=spec)
    pcl = PathConsistencyLoss(actor, table_module(solved.v, "state_value"), alpha=alpha, gamma=gamma)
    out = pcl(td)
    assert out["consistency"].item() < 1e-8 and out["loss_value"].item() < 1e-16
    # unified PCL: Q* alone gives both V = α logsumexp(Q/α) and log π = (Q − V)/α
    qnet = table_module(solved.q, "action_value")
    unified = PathConsistencyLoss(BoltzmannSampler(action_spec=spec), qvalue_network=qnet, soft_value=ExactSoftValue(),
                                  alpha=alpha, gamma=gamma)
    assert unified(td)["consistency"].item() < 1e-8
    # any other policy (here: uniform logits) breaks the consistency of the paths it generates
    uniform = torch.full((S, A), 1.0 / A, dtype=torch.float64)
    worse = CategoricalSampler(policy_network=table_module(torch.zeros(S, A, dtype=torch.float64), "logits"), action_spec=spec)
    other = PathConsistencyLoss(worse, table_module(solved.v, "state_value"), alpha=alpha, gamma=gamma)
    assert other(slices(P, R, terminal, nxt, uniform, num=64, seed=seed))["consistency"].item() > 1e-3


def test_path_consistency_matches_a_direct_sum():
    gen = torch.Generator().manual_seed(0)
    values, rewards, log_pi = torch.randn(5, L + 1, generator=gen), torch.randn(5, L, generator=gen), torch.randn(5, L, generator=gen)
    terminated = torch.tensor([False, True, False, True, False])
    alpha, gamma = 0.3, 0.9
    out = F.path_consistency(values, rewards, log_pi, alpha, gamma, terminated=terminated)
    for b in range(5):
        for j in range(L):
            tail = 0.0 if terminated[b] else gamma ** (L - j) * values[b, L]
            direct = -values[b, j] + tail + sum(gamma ** (k - j) * (rewards[b, k] - alpha * log_pi[b, k]) for k in range(j, L))
            assert out[b, j].item() == pytest.approx(float(direct), rel=1e-5, abs=1e-5)


def test_the_two_terms_carry_the_gradient_of_half_c_squared_to_value_and_policy():
    alpha, gamma = 0.5, 0.9
    P, R, terminal, nxt, solved = exact(3, alpha, gamma)
    torch.manual_seed(0)
    value = table_module(torch.randn(S, dtype=torch.float64), "state_value")
    actor = CategoricalSampler(policy_network=table_module(torch.randn(S, A, dtype=torch.float64), "logits"), action_spec=OneHot(A))
    loss = PathConsistencyLoss(actor, value, alpha=alpha, gamma=gamma)
    td = slices(P, R, terminal, nxt, solved.log_policy.exp(), num=32, seed=1)
    out = loss(td)
    params = [value.module.weight, actor.policy_network.module.weight]
    split = torch.autograd.grad(out["loss_value"] + out["loss_actor"], params)
    values, log_pi = loss._values_and_log_probs(td)
    c = F.path_consistency(values, td["next", "reward"].squeeze(-1), log_pi, alpha, gamma,
                           terminated=td["next", "terminated"].squeeze(-1)[:, -1])
    whole = torch.autograd.grad(0.5 * c.square().mean(), params)
    for a, b in zip(split, whole):
        torch.testing.assert_close(a, b)
    groups = loss.parameter_groups(lr_value=1e-2, lr_actor=1e-3)
    assert [g["name"] for g in groups] == ["value", "actor"] and [g["lr"] for g in groups] == [1e-2, 1e-3]


def test_constructor_errors():
    spec = OneHot(A)
    actor = CategoricalSampler(policy_network=table_module(torch.zeros(S, A), "logits"), action_spec=spec)
    with pytest.raises(ValueError, match="either value_network"):
        PathConsistencyLoss(actor, alpha=1.0)
    with pytest.raises(ValueError, match="either value_network"):
        PathConsistencyLoss(actor, table_module(torch.zeros(S), "state_value"), qvalue_network=table_module(torch.zeros(S, A), "action_value"),
                            soft_value=ExactSoftValue(), alpha=1.0)
    with pytest.raises(ValueError, match="gamma"):
        PathConsistencyLoss(actor, table_module(torch.zeros(S), "state_value"), alpha=1.0, gamma=1.5)
    loss = PathConsistencyLoss(actor, table_module(torch.zeros(S), "state_value"), alpha=1.0)
    with pytest.raises(ValueError, match="slices"):
        loss(TensorDict({"observation": torch.zeros(4, S)}, batch_size=[4]))
    assert math.isfinite(loss.gamma)
