"""Soft-value estimators against exact ground truth.

- ExactSoftValue: brute-force ``α log Σ exp(Q/α)`` (masks, ``α = 0`` → max).
- UniformSoftValue / ImportanceSoftValue: Simpson quadrature of ``∫ exp(Q/α)`` for a double-well
  Q on a 1-D and a 2-D box; consistency (error shrinks with K), downward bias (Jensen) whose size
  matches the delta-method prediction ``−α (E[w²]/E[w]² − 1)/(2K)``.
- PolicySoftValue: the Boltzmann policy attains the exact soft value, every other policy stays
  below it (Gibbs), closed-form policy values of a uniform policy on a box.
- ``estimate`` with a stacked ensemble of Q parameters: one estimate per member, each equal to
  that member evaluated alone (sampled estimators share their samples across members).
- Plumbing: keys, nested keys, ownership, gradients, input preservation, bad input (data errors
  only under ``set_data_checks(True)``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torchrl.data import Bounded, Categorical, MultiOneHot, OneHot, Unbounded

from maxent_components.checks import set_data_checks
from maxent_components.modules.qfunction import QFunction
from maxent_components.modules.qvalue import (
    continuous_qvalue_network,
    discrete_qvalue_network,
)
from maxent_components.samplers.boltzmann import BoltzmannSampler
from maxent_components.samplers.categorical import (
    CategoricalSampler,
    categorical_policy_network,
)
from maxent_components.samplers.gaussian import GaussianSampler
from maxent_components.samplers.mixture import MixtureSampler
from maxent_components.samplers.uniform import UniformSampler
from maxent_components.soft_value import (
    ExactSoftValue,
    ImportanceSoftValue,
    PolicySoftValue,
    UniformSoftValue,
)
from maxent_components.temperature import (
    AnnealedTemperature,
    AutoTemperature,
    FixedTemperature,
)

torch.set_num_threads(1)

HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True)
F64 = torch.float64


# -- analytic Q functions ---------------------------------------------------------------------
class DoubleWellQ(TensorDictModuleBase):
    """``Q(s, a) = −β Σ_i (a_i² − 1)² + s·a + c a_0 a_1``: two wells per coordinate, tilted by ``s``."""

    def __init__(
        self,
        *,
        beta: float = 1.0,
        coupling: float = 0.5,
        observation_key="observation",
        action_key="action",
        value_key="state_action_value",
    ) -> None:
        super().__init__()
        self.in_keys = [observation_key, action_key]
        self.out_keys = [value_key]
        self.beta, self.coupling = beta, coupling
        self.calls = 0

    def q(self, s, a):
        q = -self.beta * ((a**2 - 1) ** 2).sum(-1) + (s * a).sum(-1)
        if a.shape[-1] >= 2:
            q = q + self.coupling * a[..., 0] * a[..., 1]
        return q

    def forward(self, td):
        self.calls += 1
        s, a = td.get(self.in_keys[0]), td.get(self.in_keys[1])
        td.set(self.out_keys[0], self.q(s, a).unsqueeze(-1))
        return td


class FunctionQ(TensorDictModuleBase):
    """A continuous Q network from a plain function ``f(s, a) -> [*]``."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.in_keys = ["observation", "action"]
        self.out_keys = ["state_action_value"]
        self.fn = fn

    def forward(self, td):
        td.set("state_action_value", self.fn(td["observation"], td["action"]).unsqueeze(-1))
        return td


def action_value_net(q_of_obs):
    """A discrete Q network whose ``action_value`` is ``q_of_obs(observation)``."""
    return TensorDictModule(q_of_obs, in_keys=["observation"], out_keys=["action_value"])


def box(low, high, dtype=F64):
    low, high = torch.tensor(low, dtype=dtype), torch.tensor(high, dtype=dtype)
    return Bounded(low, high, shape=low.shape, dtype=dtype)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- quadrature ground truth ------------------------------------------------------------------
def _simpson(lo: float, hi: float, n: int):
    x = torch.linspace(lo, hi, n, dtype=F64)
    w = torch.ones(n, dtype=F64)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return x, (w * (hi - lo) / (3 * (n - 1))).log()


def quadrature_soft_value(qfn, obs, lows, highs, alpha, n):
    """``α log ∫_box exp(Q(s, a)/α) da`` per state by a tensor-product Simpson rule."""
    grids = [_simpson(lo, hi, n) for lo, hi in zip(lows, highs)]
    a = torch.stack(torch.meshgrid(*[g[0] for g in grids], indexing="ij"), -1).reshape(-1, len(lows))
    log_w = sum(torch.meshgrid(*[g[1] for g in grids], indexing="ij")).reshape(-1)
    return torch.stack([alpha * torch.logsumexp(qfn(s, a) / alpha + log_w, 0) for s in obs])


BOXES = {1: ([-2.0], [2.0]), 2: ([-2.0, -1.5], [2.0, 1.5])}
GRID = {1: 4001, 2: 301}
ALPHA = 0.5


@pytest.fixture(scope="module", params=[1, 2], ids=["1d", "2d"])
def well(request):
    """States, the double-well Q, the box, its exact soft values at α and α/2."""
    d = request.param
    lows, highs = BOXES[d]
    obs = torch.rand(32, d, generator=gen(0), dtype=F64) * 2 - 1
    qnet = DoubleWellQ()
    v = quadrature_soft_value(qnet.q, obs, lows, highs, ALPHA, GRID[d])
    v_half = quadrature_soft_value(qnet.q, obs, lows, highs, ALPHA / 2, GRID[d])
    spec = box(lows, highs)
    narrow = box([lo / 2 for lo in lows], [hi / 2 + 0.5 for hi in highs])
    mixture = MixtureSampler(
        [UniformSampler(action_spec=spec), UniformSampler(action_spec=narrow)], weights=[0.3, 0.7]
    )
    return dict(d=d, obs=obs, qnet=qnet, spec=spec, v=v, v_half=v_half, mixture=mixture,
                log_volume=sum(math.log(h - lo) for lo, h in zip(lows, highs)))


def test_quadrature_truth_matches_scipy_quad():
    qnet = DoubleWellQ()
    s = torch.tensor([0.3], dtype=F64)
    v = quadrature_soft_value(qnet.q, s[None], [-2.0], [2.0], ALPHA, GRID[1])[0].item()
    fn = lambda a: math.exp(qnet.q(s, torch.tensor([a], dtype=F64)).item() / ALPHA)  # noqa: E731
    z, _ = integrate.quad(fn, -2.0, 2.0, epsabs=1e-12, epsrel=1e-12)
    assert v == pytest.approx(ALPHA * math.log(z), abs=1e-9)


def _estimates(estimator, obs, reps, seed):
    td = TensorDict({"observation": obs.expand(reps, *obs.shape)}, batch_size=[reps, obs.shape[0]])
    return estimator(td, generator=gen(seed))["soft_value"].squeeze(-1)


def _make(kind, well, num_samples):
    if kind == "uniform":
        return UniformSoftValue(well["qnet"], action_spec=well["spec"], alpha=ALPHA, num_samples=num_samples)
    return ImportanceSoftValue(well["qnet"], well["mixture"], alpha=ALPHA, num_samples=num_samples)


@pytest.mark.parametrize("kind", ["uniform", "importance"])
def test_sampled_estimators_are_consistent(well, kind):
    err_small = (_estimates(_make(kind, well, 16), well["obs"], 16, 1) - well["v"]).abs().mean()
    err_large = (_estimates(_make(kind, well, 4096), well["obs"], 2, 2) - well["v"]).abs().mean()
    assert err_large < err_small / 4
    assert err_large < 0.05


@pytest.mark.parametrize("kind", ["uniform", "importance"])
def test_sampled_estimators_are_biased_low(well, kind):
    err = _estimates(_make(kind, well, 4), well["obs"], 400, 3) - well["v"]
    se = err.std() / math.sqrt(err.numel())
    assert err.mean() + 5 * se < 0


def test_uniform_bias_matches_delta_method(well):
    # log of a mean of K i.i.d. weights w = vol·exp(Q/α): E[log mean w] ≈ log E[w] − Var(w)/(2K E[w]²),
    # with E[w²]/E[w]² = vol ∫exp(2Q/α) / (∫exp(Q/α))² from the quadrature at α/2.
    k = 64
    rel_var = (well["log_volume"] + well["v_half"] / (ALPHA / 2) - 2 * well["v"] / ALPHA).exp() - 1
    predicted = (-ALPHA * rel_var / (2 * k)).mean()
    err = _estimates(_make("uniform", well, k), well["obs"], 400, 4) - well["v"]
    se = err.std() / math.sqrt(err.numel())
    assert err.mean() + 5 * se < 0
    assert abs(err.mean() - predicted) < 0.2 * abs(predicted) + 3 * se


def test_uniform_soft_value_calls_q_once_on_flat_batch(well):
    qnet = well["qnet"]
    estimator = UniformSoftValue(qnet, action_spec=well["spec"], alpha=ALPHA, num_samples=7)
    calls = qnet.calls
    td = TensorDict({"observation": well["obs"].reshape(4, 8, -1)}, batch_size=[4, 8])
    assert estimator(td)["soft_value"].shape == (4, 8, 1)
    assert qnet.calls == calls + 1


# -- exact identities for constant and self-normalised Q --------------------------------------
def test_all_estimators_exact_for_constant_q():
    c, alpha = 1.7, 0.3
    obs = torch.randn(5, 3, generator=gen(0), dtype=F64)
    td = TensorDict({"observation": obs}, batch_size=[5])
    const = FunctionQ(lambda s, a: torch.full(a.shape[:-1], c, dtype=F64))
    spec = box([-1.0, 0.0, -3.0], [1.0, 0.5, 2.0])
    log_vol = math.log(2.0 * 0.5 * 5.0)
    uniform = UniformSoftValue(const, action_spec=spec, alpha=alpha, num_samples=3)(td.clone())
    torch.testing.assert_close(uniform["soft_value"], torch.full((5, 1), c + alpha * log_vol, dtype=F64))
    importance = ImportanceSoftValue(const, UniformSampler(action_spec=spec), alpha=alpha, num_samples=3)
    out = importance(td.clone())
    torch.testing.assert_close(out["soft_value"], torch.full((5, 1), c + alpha * log_vol, dtype=F64))
    torch.testing.assert_close(out["ess"], torch.full((5, 1), 3.0, dtype=F64))
    policy = PolicySoftValue(const, UniformSampler(action_spec=spec), alpha=alpha, num_samples=2)
    torch.testing.assert_close(policy(td.clone())["soft_value"], torch.full((5, 1), c + alpha * log_vol, dtype=F64))

    discrete = action_value_net(lambda s: torch.full((*s.shape[:-1], 6), c, dtype=F64))
    exact = ExactSoftValue(discrete, alpha=alpha)(td.clone())
    torch.testing.assert_close(exact["soft_value"], torch.full((5, 1), c + alpha * math.log(6), dtype=F64))
    boltzmann = BoltzmannSampler(discrete, action_spec=OneHot(6), alpha=alpha)
    torch.testing.assert_close(PolicySoftValue(discrete, boltzmann)(td.clone())["soft_value"], exact["soft_value"])


def test_importance_is_exact_for_the_perfect_proposal():
    # With q ∝ exp(Q/α) every weight is equal: the estimate is exact for any K and ESS = K.
    alpha = 0.7
    spec = box([-2.0, -2.0], [2.0, 2.0])
    narrow = box([-0.5, -1.0], [1.5, 0.0])
    mixture = MixtureSampler(
        [UniformSampler(action_spec=spec), UniformSampler(action_spec=narrow)], weights=[0.25, 0.75]
    )
    offset = lambda s: s.sum(-1)  # noqa: E731
    qnet = FunctionQ(lambda s, a: alpha * mixture.log_prob(TensorDict({}, batch_size=a.shape[:-1]), a) + offset(s))
    obs = torch.randn(6, 2, generator=gen(1), dtype=F64)
    out = ImportanceSoftValue(qnet, mixture, alpha=alpha, num_samples=5)(
        TensorDict({"observation": obs}, batch_size=[6]), generator=gen(2)
    )
    torch.testing.assert_close(out["soft_value"].squeeze(-1), offset(obs))
    torch.testing.assert_close(out["ess"], torch.full((6, 1), 5.0, dtype=F64))


def test_importance_with_uniform_proposal_equals_uniform_estimator(well):
    td = TensorDict({"observation": well["obs"]}, batch_size=[well["obs"].shape[0]])
    uniform = UniformSoftValue(well["qnet"], action_spec=well["spec"], alpha=ALPHA, num_samples=9)
    importance = ImportanceSoftValue(
        well["qnet"], UniformSampler(action_spec=well["spec"]), alpha=ALPHA, num_samples=9
    )
    a = uniform(td.clone(), generator=gen(11))["soft_value"]
    b = importance(td.clone(), generator=gen(11))["soft_value"]
    assert torch.equal(a, b)
    c = uniform(td.clone(), generator=gen(12))["soft_value"]
    assert not torch.equal(a, c)


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 48),
    alpha=st.floats(0.05, 5.0),
    weight=st.floats(0.0, 1.0),
)
def test_ess_lies_between_one_and_k(seed, k, alpha, weight):
    spec = box([-2.0], [2.0])
    proposal = MixtureSampler(
        [UniformSampler(action_spec=spec), UniformSampler(action_spec=box([0.5], [1.5]))],
        weights=[max(weight, 1e-3), 1.0 - weight],
    )
    estimator = ImportanceSoftValue(DoubleWellQ(beta=3.0), proposal, alpha=alpha, num_samples=k)
    obs = torch.randn(16, 1, generator=gen(seed), dtype=F64)
    ess = estimator(TensorDict({"observation": obs}, batch_size=[16]), generator=gen(seed + 1))["ess"]
    assert bool(((ess >= 1 - 1e-9) & (ess <= k + 1e-9)).all())


# -- ExactSoftValue ---------------------------------------------------------------------------
@HYPOTHESIS
@given(
    seed=st.integers(0, 2**16),
    num_actions=st.integers(1, 7),
    batch=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    alpha=st.one_of(st.just(0.0), st.floats(0.02, 10.0)),
    masked=st.booleans(),
)
def test_exact_soft_value_matches_brute_force(seed, num_actions, batch, alpha, masked):
    g = gen(seed)
    q = (torch.rand(*batch, num_actions, generator=g, dtype=F64) - 0.5) * 20
    td = TensorDict({"observation": q}, batch_size=batch)
    mask = None
    if masked:
        mask = torch.rand(*batch, num_actions, generator=g) < 0.6
        mask[..., int(torch.randint(num_actions, (), generator=g))] = True
        td.set("action_mask", mask)
    estimator = ExactSoftValue(action_value_net(lambda s: s.clone()), alpha=alpha, use_action_mask=masked)
    value = estimator(td)["soft_value"]
    assert value.shape == (*batch, 1)
    q_np = q.numpy().reshape(-1, num_actions)
    allowed = np.ones_like(q_np, dtype=bool) if mask is None else mask.numpy().reshape(-1, num_actions)
    # A fixed temperature computes with the exact Python float α (FixedTemperature.value()).
    for row, ok, v in zip(q_np, allowed, value.reshape(-1).tolist()):
        expected = row[ok].max() if alpha == 0 else alpha * math.log(np.exp(row[ok] / alpha).sum())
        assert v == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_exact_soft_value_accepts_minus_inf_on_masked_actions_and_spec_checks():
    q = torch.tensor([[1.0, -math.inf, 2.0]], dtype=F64)
    td = TensorDict({"observation": q, "action_mask": torch.tensor([[True, False, True]])}, [1])
    estimator = ExactSoftValue(action_value_net(lambda s: s), alpha=1.0, use_action_mask=True, action_spec=Categorical(3))
    assert estimator(td)["soft_value"].item() == pytest.approx(math.log(math.e + math.e**2))
    # Without the mask the -inf Q-value is a data error, reported under data checks only.
    with set_data_checks(True), pytest.raises(ValueError, match="'action_value' contains Inf"):
        ExactSoftValue(action_value_net(lambda s: s), alpha=1.0)(td.clone())
    unchecked = ExactSoftValue(action_value_net(lambda s: s), alpha=1.0)(td.clone())["soft_value"]
    assert unchecked.item() == pytest.approx(math.log(math.e + math.e**2))
    with pytest.raises(ValueError, match="action_spec has 4"):
        ExactSoftValue(action_value_net(lambda s: s), alpha=1.0, action_spec=OneHot(4))(td.clone())
    with pytest.raises(KeyError, match="action_mask"):
        ExactSoftValue(action_value_net(lambda s: s), alpha=1.0, use_action_mask=True)(
            TensorDict({"observation": q}, [1])
        )


def test_exact_soft_value_follows_a_temperature_object():
    temperature = AnnealedTemperature(alpha_init=1.0, alpha_final=0.01, num_steps=2)
    q = torch.tensor([[0.0, 1.0]], dtype=F64)
    estimator = ExactSoftValue(action_value_net(lambda s: s), alpha=temperature)
    td = TensorDict({"observation": q}, [1])
    assert estimator(td.clone())["soft_value"].item() == pytest.approx(math.log(1 + math.e))
    temperature.step()
    assert estimator(td.clone())["soft_value"].item() == pytest.approx(0.1 * math.log(1 + math.exp(10)))
    assert "temperature" not in dict(estimator.named_modules())


@pytest.mark.parametrize(
    "spec", [Bounded(-1.0, 1.0, shape=(2,)), Unbounded(shape=(2,)), MultiOneHot([2, 3])], ids=["bounded", "unbounded", "multi"]
)
def test_exact_soft_value_rejects_non_discrete_specs(spec):
    with pytest.raises(ValueError, match="action_spec"):
        ExactSoftValue(action_value_net(lambda s: s), action_spec=spec)


# -- PolicySoftValue --------------------------------------------------------------------------
@HYPOTHESIS
@given(seed=st.integers(0, 2**16), alpha=st.floats(0.05, 5.0), other=st.floats(0.05, 5.0), masked=st.booleans())
def test_policy_soft_value_discrete_gibbs(seed, alpha, other, masked):
    torch.manual_seed(seed)
    qnet = discrete_qvalue_network(3, 5, num_cells=[16])
    obs = torch.randn(12, 3, generator=gen(seed))
    td = TensorDict({"observation": obs}, batch_size=[12])
    if masked:
        mask = torch.rand(12, 5, generator=gen(seed + 1)) < 0.5
        mask[:, 0] = True
        td.set("action_mask", mask)
    exact = ExactSoftValue(qnet, alpha=alpha, use_action_mask=masked)(td.clone())["soft_value"]
    boltzmann = BoltzmannSampler(qnet, action_spec=OneHot(5), alpha=alpha, use_action_mask=masked)
    out = PolicySoftValue(qnet, boltzmann)(td.clone())
    torch.testing.assert_close(out["soft_value"], exact, atol=1e-5, rtol=1e-5)
    # Another policy (Boltzmann at a different temperature, a random categorical) stays below V.
    tempered = BoltzmannSampler(qnet, action_spec=OneHot(5), alpha=other, use_action_mask=masked)
    v_other = PolicySoftValue(qnet, tempered, alpha=alpha)(td.clone())["soft_value"]
    assert bool((v_other <= exact + 1e-5).all())
    categorical = CategoricalSampler(
        qnet, categorical_policy_network(3, 5, num_cells=[8]), action_spec=OneHot(5), alpha=alpha, use_action_mask=masked
    )
    v_cat = PolicySoftValue(qnet, categorical)(td.clone())
    assert bool((v_cat["soft_value"] <= exact + 1e-5).all())
    # The written entropy is the exact entropy of the policy.
    log_pi = categorical.log_probs(td.clone())
    p = log_pi.exp()
    entropy = -(p * log_pi.masked_fill(p == 0, 0.0)).sum(-1, keepdim=True)
    torch.testing.assert_close(v_cat["entropy"], entropy)


def test_policy_soft_value_uses_the_policy_temperature_by_default():
    temperature = AutoTemperature(target_entropy=0.5, alpha_init=0.4)
    qnet = discrete_qvalue_network(3, 4, num_cells=[8])
    policy = CategoricalSampler(qnet, categorical_policy_network(3, 4, num_cells=[8]), action_spec=OneHot(4), alpha=temperature)
    estimator = PolicySoftValue(qnet, policy)
    td = TensorDict({"observation": torch.randn(6, 3, generator=gen(0))}, [6])
    before = estimator(td.clone())
    with torch.no_grad():
        temperature.log_alpha.fill_(math.log(1.5))
    after = estimator(td.clone())
    # V^π(α') − V^π(α) = (α' − α) H(π)
    torch.testing.assert_close(after["soft_value"] - before["soft_value"], (1.5 - 0.4) * before["entropy"], atol=1e-5, rtol=1e-5)
    assert list(estimator.parameters()) == [] and estimator.state_dict() == {}


def test_policy_soft_value_continuous_uniform_policy_closed_form():
    # π = U([-1, 1]²), Q = −‖a − s‖²: V^π(s) = −‖s‖² − 2/3 + α · 2 log 2.
    alpha = 0.3
    qnet = FunctionQ(lambda s, a: -((a - s) ** 2).sum(-1))
    policy = UniformSampler(action_spec=box([-1.0, -1.0], [1.0, 1.0]))
    obs = torch.randn(8, 2, generator=gen(5), dtype=F64)
    truth = -(obs**2).sum(-1) - 2 / 3 + alpha * 2 * math.log(2)
    estimator = PolicySoftValue(qnet, policy, alpha=alpha, num_samples=64)
    reps = 200
    est = _estimates(estimator, obs, reps, 6)
    z = (est.mean(0) - truth) / (est.std(0) / math.sqrt(reps))
    assert bool((z.abs() < 5).all())
    # Monte-Carlo error shrinks like 1/√K.
    spread_1 = _estimates(PolicySoftValue(qnet, policy, alpha=alpha, num_samples=1), obs, reps, 7).std(0)
    spread_64 = est.std(0)
    ratio = (spread_1 / spread_64).mean()
    assert 6 < ratio < 11
    assert torch.allclose(estimator(TensorDict({"observation": obs}, [8]))["entropy"].squeeze(-1),
                          torch.full((8,), 2 * math.log(2), dtype=F64))


def test_policy_soft_value_continuous_gaussian_policy_against_quadrature():
    # V^π(s) = ∫ π(a|s) (Q(s, a) − α log π(a|s)) da on the 1-D box, with π's own density.
    torch.manual_seed(0)
    alpha = 0.5
    qnet = FunctionQ(lambda s, a: -2 * (a - 0.3 * s).square().sum(-1))
    policy = GaussianSampler(qnet, action_spec=Bounded(-1.0, 1.0, shape=(1,)), alpha=alpha, observation_dim=1, num_cells=(8,))
    obs = torch.linspace(-1, 1, 4).unsqueeze(-1)
    x = torch.linspace(-1, 1, 20001)[1:-1]
    truths = []
    for s in obs:
        grid_td = TensorDict({"observation": s.expand(x.shape[0], 1)}, [x.shape[0]])
        log_pi = policy.log_prob(grid_td, x.unsqueeze(-1)).double()
        integrand = log_pi.exp() * (qnet.fn(s.double(), x.double().unsqueeze(-1)) - alpha * log_pi)
        truths.append(torch.trapezoid(integrand, x.double()))
    truth = torch.stack(truths)
    estimator = PolicySoftValue(qnet, policy, num_samples=256)
    with torch.no_grad():
        est = _estimates(estimator, obs, 64, 8).double()
    z = (est.mean(0) - truth) / (est.std(0) / math.sqrt(64))
    assert bool((z.abs() < 5).all())


# -- gradients and ownership ------------------------------------------------------------------
def test_importance_gradients_reach_q_but_never_the_proposal():
    torch.manual_seed(0)
    spec = Bounded(-1.0, 1.0, shape=(2,))
    qnet = continuous_qvalue_network(3, 2, num_cells=[16])
    gaussian = GaussianSampler(qnet, action_spec=spec, alpha=0.5, observation_dim=3, num_cells=(16,))
    proposal = MixtureSampler([gaussian, UniformSampler(action_spec=spec)], weights=[0.8, 0.2])
    for sampler in (gaussian, proposal):
        estimator = ImportanceSoftValue(qnet, sampler, alpha=0.5, num_samples=8)
        assert list(estimator.parameters()) == [] and estimator.state_dict() == {}
        qnet.zero_grad(set_to_none=True)
        gaussian.zero_grad(set_to_none=True)
        td = TensorDict({"observation": torch.randn(10, 3)}, [10])
        estimator(td)["soft_value"].sum().backward()
        assert all(p.grad is None for p in gaussian.parameters())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in qnet.parameters())
        assert not td["ess"].requires_grad
    # The policy soft value keeps reparameterised samples: gradients reach the policy (an actor
    # objective), which a critic target avoids with torch.no_grad().
    gaussian.zero_grad(set_to_none=True)
    PolicySoftValue(qnet, gaussian, num_samples=4)(TensorDict({"observation": torch.randn(10, 3)}, [10]))[
        "soft_value"
    ].sum().backward()
    assert any(p.grad is not None for p in gaussian.parameters())


def _all_estimators(cont, disc):
    spec = box([-2.0, -1.0], [2.0, 1.0])
    return [
        (ExactSoftValue(disc, alpha=0.5), {"soft_value"}),
        (UniformSoftValue(cont, action_spec=spec, alpha=0.5, num_samples=4), {"soft_value"}),
        (ImportanceSoftValue(cont, UniformSampler(action_spec=spec), alpha=0.5, num_samples=4), {"soft_value", "ess"}),
        (PolicySoftValue(cont, UniformSampler(action_spec=spec), alpha=0.5, num_samples=4), {"soft_value", "entropy"}),
        (PolicySoftValue(disc, BoltzmannSampler(disc, action_spec=OneHot(4), alpha=0.5)), {"soft_value", "entropy"}),
    ]


@pytest.mark.parametrize("index", range(5), ids=["exact", "uniform", "importance", "policy", "policy-discrete"])
def test_input_preserved_state_dict_round_trip_and_generator(index):
    torch.manual_seed(0)
    cont, disc = DoubleWellQ(), discrete_qvalue_network(2, 4, num_cells=[8]).double()
    estimator, written = _all_estimators(cont, disc)[index]
    fresh, _ = _all_estimators(cont, disc)[index]
    obs = torch.randn(3, 5, 2, generator=gen(0), dtype=F64)
    td = TensorDict({"observation": obs, "other": torch.ones(3, 5)}, batch_size=[3, 5])
    before = td.clone()
    out = estimator(td, generator=gen(1))
    assert out is td
    assert set(td.keys()) == set(before.keys()) | written
    for key in before.keys():
        assert torch.equal(td[key], before[key])
    assert td["soft_value"].shape == (3, 5, 1)
    assert set(estimator.out_keys) == written
    # Owning nothing, an estimator checkpoints nothing; its Q network and temperature live elsewhere.
    assert estimator.state_dict() == {} and list(estimator.parameters()) == []
    fresh.load_state_dict(estimator.state_dict())
    assert torch.equal(fresh(before.clone(), generator=gen(1))["soft_value"], td["soft_value"])


def test_construction_generator_is_the_default():
    spec = box([-1.0], [1.0])
    obs = TensorDict({"observation": torch.zeros(4, 1, dtype=F64)}, [4])
    a = UniformSoftValue(DoubleWellQ(), action_spec=spec, alpha=1.0, num_samples=3, generator=gen(5))(obs.clone())
    b = UniformSoftValue(DoubleWellQ(), action_spec=spec, alpha=1.0, num_samples=3)(obs.clone(), generator=gen(5))
    assert torch.equal(a["soft_value"], b["soft_value"])


# -- keys -------------------------------------------------------------------------------------
def test_set_keys_rejects_unknown_names_and_supports_nested_keys():
    spec = box([-2.0, -1.0], [2.0, 1.0])
    flat = UniformSoftValue(DoubleWellQ(), action_spec=spec, alpha=1.0, num_samples=5)
    with pytest.raises(ValueError, match="'actions' is not a key of UniformSoftValue"):
        flat.set_keys(actions="a")
    with pytest.raises(TypeError, match="observation"):
        flat.set_keys(observation=3)
    nested_q = DoubleWellQ(observation_key=("agent", "obs"), action_key=("agent", "act"), value_key=("agent", "q"))
    nested = ImportanceSoftValue(nested_q, UniformSampler(action_spec=spec), alpha=1.0, num_samples=5)
    nested.set_keys(
        observation=("agent", "obs"), action=("agent", "act"), state_action_value=("agent", "q"),
        soft_value=("agent", "v"), ess=("agent", "ess"),
    )
    assert nested.in_keys == [("agent", "obs")] and nested.out_keys == [("agent", "v"), ("agent", "ess")]
    obs = torch.randn(6, 2, generator=gen(0), dtype=F64)
    td = TensorDict({"agent": {"obs": obs}}, batch_size=[6])
    nested(td, generator=gen(3))
    reference = flat(TensorDict({"observation": obs}, [6]), generator=gen(3))
    assert torch.equal(td["agent", "v"], reference["soft_value"])
    assert td["agent", "ess"].shape == (6, 1)

    exact = ExactSoftValue(
        TensorDictModule(lambda s: s, in_keys=[("agent", "obs")], out_keys=[("agent", "qs")]),
        alpha=1.0,
        use_action_mask=True,
    ).set_keys(observation=("agent", "obs"), action_value=("agent", "qs"), action_mask=("agent", "mask"), soft_value="v")
    td = TensorDict({"agent": {"obs": torch.tensor([[0.0, 1.0, 5.0]]), "mask": torch.tensor([[True, True, False]])}}, [1])
    assert exact.in_keys == [("agent", "obs"), ("agent", "mask")]
    assert exact(td)["v"].item() == pytest.approx(math.log(1 + math.e), rel=1e-6)


# -- bad input --------------------------------------------------------------------------------
def test_sampled_estimators_need_positive_alpha_and_num_samples():
    spec = box([-1.0], [1.0])
    q = DoubleWellQ()
    for alpha in (0.0, -1.0, FixedTemperature(0.0), float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            UniformSoftValue(q, action_spec=spec, alpha=alpha)
        with pytest.raises(ValueError, match="alpha"):
            ImportanceSoftValue(q, UniformSampler(action_spec=spec), alpha=alpha)
    with pytest.raises(ValueError, match="alpha"):
        ExactSoftValue(action_value_net(lambda s: s), alpha=-0.1)
    for k in (0, -3, 2.5, True, "4"):
        with pytest.raises(ValueError, match="num_samples"):
            UniformSoftValue(q, action_spec=spec, num_samples=k)
        with pytest.raises(ValueError, match="num_samples"):
            ImportanceSoftValue(q, UniformSampler(action_spec=spec), num_samples=k)
        with pytest.raises(ValueError, match="num_samples"):
            PolicySoftValue(q, UniformSampler(action_spec=spec), alpha=1.0, num_samples=k)
    with pytest.raises(TypeError, match="alpha"):
        UniformSoftValue(q, action_spec=spec, alpha="1.0")


@pytest.mark.parametrize(
    "spec,match",
    [
        (OneHot(3), "discrete"),
        (Categorical(3), "discrete"),
        (Unbounded(shape=(2,)), "Bounded"),
        (Bounded(torch.tensor([-1.0, -math.inf]), torch.tensor([1.0, 1.0]), shape=(2,)), "finite bounds"),
        (Bounded(torch.tensor([0.0]), torch.tensor([0.0]), shape=(1,)), "high > low"),
    ],
    ids=["onehot", "categorical", "unbounded", "infinite", "empty"],
)
def test_uniform_soft_value_rejects_bad_action_specs(spec, match):
    with pytest.raises(ValueError, match=f"action_spec.*{match}|{match}.*action_spec"):
        UniformSoftValue(DoubleWellQ(), action_spec=spec)


def _nan_q(kind):
    if kind == "discrete":
        return action_value_net(lambda s: torch.where(s > 0.5, torch.nan, s))
    return FunctionQ(lambda s, a: torch.where(a[..., 0] > 0.5, torch.nan, a[..., 0]))


def _nan_q_estimator(kind):
    spec = box([-1.0], [1.0])
    if kind == "exact":
        return ExactSoftValue(_nan_q("discrete"), alpha=1.0)
    if kind == "uniform":
        return UniformSoftValue(_nan_q("continuous"), action_spec=spec, alpha=1.0, num_samples=32)
    if kind == "importance":
        return ImportanceSoftValue(_nan_q("continuous"), UniformSampler(action_spec=spec), alpha=1.0, num_samples=32)
    if kind == "policy":
        return PolicySoftValue(_nan_q("continuous"), UniformSampler(action_spec=spec), alpha=1.0, num_samples=32)
    boltzmann = BoltzmannSampler(action_value_net(lambda s: s), action_spec=OneHot(2), alpha=1.0)
    return PolicySoftValue(_nan_q("discrete"), boltzmann)


@pytest.mark.parametrize("kind", ["exact", "uniform", "importance", "policy", "policy-discrete"])
def test_non_finite_q_values_raise_naming_the_q_network(kind):
    td = TensorDict({"observation": torch.linspace(0, 1, 8, dtype=F64).reshape(4, 2)}, [4])
    estimator = _nan_q_estimator(kind)
    # The message names the Q network's output entry.
    key = "action_value" if kind in ("exact", "policy-discrete") else "state_action_value"
    with set_data_checks(True), pytest.raises(ValueError, match=f"'{key}' contains NaN"):
        estimator(td.clone(), generator=gen(0))
    # Data checks are off by default (no host sync): the NaN propagates into the estimate.
    value = estimator(td.clone(), generator=gen(0))["soft_value"]
    assert bool(value.isnan().any())


def test_a_mask_excluding_every_action_raises_under_data_checks():
    q = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], dtype=F64)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    td = TensorDict({"observation": q, "action_mask": mask}, [2])
    exact = ExactSoftValue(action_value_net(lambda s: s), alpha=1.0, use_action_mask=True)
    boltzmann = BoltzmannSampler(action_value_net(lambda s: s), action_spec=OneHot(3), alpha=1.0, use_action_mask=True)
    policy = PolicySoftValue(action_value_net(lambda s: s), boltzmann)
    for estimator in (exact, policy):
        with set_data_checks(True), pytest.raises(ValueError, match="mask excludes every action"):
            estimator(td.clone())
        # Unchecked, the allowed row is still exact.
        value = estimator(td.clone())["soft_value"]
        assert value[0].item() == pytest.approx(math.log(1 + math.e**2))


class _NegativeTemperature(AnnealedTemperature):
    """A temperature whose tensor value is invalid (negative): only data checks can see it."""

    def forward(self):
        return -super().forward()


@pytest.mark.parametrize("kind", ["exact", "uniform", "importance", "policy", "policy-discrete"])
def test_invalid_tensor_temperature_raises_under_data_checks(kind):
    torch.manual_seed(0)
    cont, disc = DoubleWellQ(), discrete_qvalue_network(2, 4, num_cells=[8]).double()
    spec = box([-2.0, -1.0], [2.0, 1.0])
    bad = _NegativeTemperature(alpha_init=0.5, alpha_final=0.1, num_steps=4)
    estimator = {
        "exact": lambda: ExactSoftValue(disc, alpha=bad),
        "uniform": lambda: UniformSoftValue(cont, action_spec=spec, alpha=bad, num_samples=4),
        "importance": lambda: ImportanceSoftValue(cont, UniformSampler(action_spec=spec), alpha=bad, num_samples=4),
        "policy": lambda: PolicySoftValue(cont, UniformSampler(action_spec=spec), alpha=bad, num_samples=4),
        "policy-discrete": lambda: PolicySoftValue(disc, BoltzmannSampler(disc, action_spec=OneHot(4), alpha=0.5), alpha=bad),
    }[kind]()
    td = TensorDict({"observation": torch.randn(3, 2, generator=gen(0), dtype=F64)}, [3])
    with set_data_checks(True), pytest.raises(ValueError, match="alpha must be a finite value"):
        estimator(td.clone(), generator=gen(1))
    # Off by default: a tensor α is never read on the host.
    assert estimator(td.clone(), generator=gen(1))["soft_value"].shape == (3, 1)


class _NaNDensity(UniformSampler):
    def sample(self, tensordict, num_samples=1, *, generator=None):
        actions, log_prob = super().sample(tensordict, num_samples, generator=generator)
        return actions, torch.where(actions[..., 0] > 0, torch.nan, log_prob)


@pytest.mark.parametrize("role", ["proposal", "policy"])
def test_non_finite_log_probabilities_raise_naming_the_sampler(role):
    spec = box([-1.0], [1.0])
    sampler = _NaNDensity(action_spec=spec)
    if role == "proposal":
        estimator = ImportanceSoftValue(DoubleWellQ(), sampler, alpha=1.0, num_samples=32)
    else:
        estimator = PolicySoftValue(DoubleWellQ(), sampler, alpha=1.0, num_samples=32)
    td = TensorDict({"observation": torch.zeros(4, 1, dtype=F64)}, [4])
    with set_data_checks(True), pytest.raises(ValueError, match=f"{role} log-probabilities contains NaN"):
        estimator(td.clone(), generator=gen(0))
    value = estimator(td.clone(), generator=gen(0))["soft_value"]
    assert bool(value.isnan().any())


def test_wrong_q_output_shapes_raise_naming_the_q_network():
    # Shape checks always run (no data read). The Q network is evaluated through QFunction, whose
    # messages name it "the Q network".
    spec = box([-1.0], [1.0])
    td = TensorDict({"observation": torch.zeros(4, 2, dtype=F64)}, [4])
    wide = TensorDictModule(
        lambda s, a: torch.cat([a, a], -1), in_keys=["observation", "action"], out_keys=["state_action_value"]
    )
    with pytest.raises(ValueError, match="Q network wrote 'state_action_value' of shape"):
        UniformSoftValue(wide, action_spec=spec, alpha=1.0, num_samples=3)(td.clone())
    scalar = action_value_net(lambda s: s.sum(-1))
    with pytest.raises(ValueError, match=r"Q network wrote 'action_value' of shape \(4,\)"):
        ExactSoftValue(scalar, alpha=1.0)(td.clone())
    with pytest.raises(KeyError, match="observation"):
        UniformSoftValue(DoubleWellQ(), action_spec=spec, alpha=1.0)(TensorDict({"obs": torch.zeros(4, 1)}, [4]))


def test_q_output_without_the_trailing_value_dim_is_rejected():
    # A continuous Q network writes "state_action_value" [*, 1]; one that squeezes the last dim
    # breaks the library's layout and must be reported, not silently accepted.
    spec = box([-1.0], [1.0])
    td = TensorDict({"observation": torch.zeros(4, 2, dtype=F64)}, [4])
    squeezed = TensorDictModule(lambda s, a: a.sum(-1), in_keys=["observation", "action"], out_keys=["state_action_value"])
    with pytest.raises(ValueError, match="Q network wrote 'state_action_value' of shape"):
        UniformSoftValue(squeezed, action_spec=spec, alpha=1.0, num_samples=3)(td.clone())


class _Temperatureless:
    """A sampler-like object with no temperature (PolicySoftValue then needs an explicit alpha)."""

    def sample(self, tensordict, num_samples=1, *, generator=None):
        return UniformSampler(action_spec=box([-1.0], [1.0])).sample(tensordict, num_samples, generator=generator)


class _NoDensity(UniformSampler):
    has_log_prob = False


class _DensityLost(UniformSampler):
    def sample(self, tensordict, num_samples=1, *, generator=None):
        return super().sample(tensordict, num_samples, generator=generator)[0], None


def test_proposals_and_policies_without_log_prob_are_rejected():
    spec = box([-1.0], [1.0])
    with pytest.raises(ValueError, match="proposal.*log-probability"):
        ImportanceSoftValue(DoubleWellQ(), _NoDensity(action_spec=spec))
    with pytest.raises(TypeError, match="proposal"):
        ImportanceSoftValue(DoubleWellQ(), object())
    td = TensorDict({"observation": torch.zeros(4, 1, dtype=F64)}, [4])
    with pytest.raises(ValueError, match="proposal.*no log-probabilities"):
        ImportanceSoftValue(DoubleWellQ(), _DensityLost(action_spec=spec), alpha=1.0)(td)
    with pytest.raises(ValueError, match="policy.*log-probabilit"):
        PolicySoftValue(DoubleWellQ(), _NoDensity(action_spec=spec))
    with pytest.raises(ValueError, match="policy.*no log-probabilities"):
        PolicySoftValue(DoubleWellQ(), _DensityLost(action_spec=spec), alpha=1.0)(td.clone())
    # A policy without a temperature and no alpha: the estimator has no temperature when used alone.
    with pytest.raises(RuntimeError, match="PolicySoftValue has no temperature: pass alpha="):
        PolicySoftValue(DoubleWellQ(), _Temperatureless())(td.clone())
    assert PolicySoftValue(DoubleWellQ(), _Temperatureless(), alpha=1.0)(td.clone())["soft_value"].shape == (4, 1)


# -- estimate(): explicit Q function, one estimate per ensemble member -------------------------
ENSEMBLE_KINDS = ["exact", "exact-masked", "uniform", "importance", "policy", "policy-discrete"]


def _ensemble_setup(kind):
    """Three Q networks of one architecture (different weights), a state batch, and a factory
    ``make(qnet)`` of the estimator reading ``qnet`` (samplers are shared, so draws are equal)."""
    torch.manual_seed(0)
    alpha = 0.3
    discrete = kind in ("exact", "exact-masked", "policy-discrete")
    if discrete:
        nets = [discrete_qvalue_network(3, 4, num_cells=[16]).double() for _ in range(3)]
    else:
        nets = [continuous_qvalue_network(3, 2, num_cells=[16]).double() for _ in range(3)]
    obs = torch.randn(2, 5, 3, generator=gen(0), dtype=F64)
    td = TensorDict({"observation": obs}, batch_size=[2, 5])
    if kind == "exact-masked":
        mask = torch.rand(2, 5, 4, generator=gen(1)) < 0.5
        mask[..., 2] = True
        td.set("action_mask", mask)
    spec = box([-1.0, -1.0], [1.0, 1.0])
    if kind in ("importance", "policy"):
        gaussian = GaussianSampler(nets[0], action_spec=spec, alpha=alpha, observation_dim=3, num_cells=(8,)).double()
    make = {
        "exact": lambda q: ExactSoftValue(q, alpha=alpha),
        "exact-masked": lambda q: ExactSoftValue(q, alpha=alpha, use_action_mask=True),
        "uniform": lambda q: UniformSoftValue(q, action_spec=spec, alpha=alpha, num_samples=8),
        "importance": lambda q: ImportanceSoftValue(
            q, MixtureSampler([gaussian, UniformSampler(action_spec=spec)], weights=[0.7, 0.3]), alpha=alpha, num_samples=8
        ),
        "policy": lambda q: PolicySoftValue(q, gaussian, alpha=alpha, num_samples=8),
        "policy-discrete": lambda q: PolicySoftValue(
            q, BoltzmannSampler(nets[0], action_spec=OneHot(4), alpha=alpha), alpha=alpha
        ),
    }[kind]
    return nets, td, alpha, make


@pytest.mark.parametrize("stack", ["torch.stack", "from_modules"])
@pytest.mark.parametrize("mode", ["vmap", "loop"])
@pytest.mark.parametrize("kind", ENSEMBLE_KINDS)
def test_estimate_with_a_stacked_ensemble_equals_each_member_alone(kind, mode, stack):
    # estimate(td, QFunction(qnet, params [N, ...]), α) evaluates every member (one torch.vmap, or
    # one call per member) on the same samples: member i equals the estimator built on network i
    # alone, with the same generator seed.
    nets, td, alpha, make = _ensemble_setup(kind)
    if stack == "torch.stack":
        params = torch.stack([TensorDict.from_module(net) for net in nets])
    else:
        params = TensorDict.from_modules(*nets)
    before = td.clone()
    estimator = make(nets[0])
    with torch.no_grad():
        out = estimator.estimate(td, QFunction(nets[0], params, mode=mode), alpha, generator=gen(7))
        alone = [make(net)(before.clone(), generator=gen(7)) for net in nets]
    # estimate() writes nothing into its input.
    assert set(td.keys()) == set(before.keys())
    for key in before.keys():  # noqa: SIM118 (iterating a TensorDict walks its batch dim)
        assert torch.equal(td[key], before[key])
    batch = tuple(td.batch_size)
    assert out["soft_value"].shape == (3, *batch)
    for i, reference in enumerate(alone):
        torch.testing.assert_close(out["soft_value"][i], reference["soft_value"].squeeze(-1), rtol=1e-12, atol=1e-12)
    if kind == "importance":
        assert out["ess"].shape == (3, *batch)
        for i, reference in enumerate(alone):
            torch.testing.assert_close(out["ess"][i], reference["ess"].squeeze(-1), rtol=1e-12, atol=1e-12)
    if kind.startswith("policy"):
        # The policy's entropy does not depend on Q: one per state, not per member.
        assert out["entropy"].shape == batch
        torch.testing.assert_close(out["entropy"], alone[0]["entropy"].squeeze(-1), rtol=1e-12, atol=1e-12)
    # The members are different networks: their estimates differ.
    assert not torch.allclose(out["soft_value"][0], out["soft_value"][1])


@pytest.mark.parametrize("kind", ENSEMBLE_KINDS)
def test_estimate_of_a_single_network_has_one_member_and_forward_reduces_a_bound_ensemble(kind):
    nets, td, alpha, make = _ensemble_setup(kind)
    estimator = make(nets[0])
    with torch.no_grad():
        # Under the network's own parameters, or one unstacked parameter set: a member dim of 1.
        own = estimator.estimate(td, QFunction(nets[1]), alpha, generator=gen(3))["soft_value"]
        one_set = estimator.estimate(td, QFunction(nets[0], TensorDict.from_module(nets[1])), alpha, generator=gen(3))
        reference = make(nets[1])(td.clone(), generator=gen(3))["soft_value"].squeeze(-1)
        assert own.shape == one_set["soft_value"].shape == (1, *td.batch_size)
        torch.testing.assert_close(own[0], reference, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(one_set["soft_value"][0], reference, rtol=1e-12, atol=1e-12)
        # Bound to an ensemble (as SoftQLoss binds its target parameters), forward writes the min
        # over the members of the per-member estimates.
        params = torch.stack([TensorDict.from_module(net) for net in nets])
        members = estimator.estimate(td, QFunction(nets[0], params), alpha, generator=gen(4))["soft_value"]
        bound = make(nets[0]).bind(QFunction(nets[0], params), FixedTemperature(alpha))
        written = bound(td.clone(), generator=gen(4))["soft_value"]
    assert written.shape == (*td.batch_size, 1)
    torch.testing.assert_close(written.squeeze(-1), members.amin(0), rtol=1e-12, atol=1e-12)


@HYPOTHESIS
@given(seed=st.integers(0, 2**16), shift=st.floats(-50.0, 50.0), alpha=st.floats(0.05, 5.0), k=st.integers(1, 32))
def test_sampled_estimators_shift_with_q_and_follow_alpha_scaling(seed, shift, alpha, k):
    # On equal samples: V̂[Q + c] = V̂[Q] + c, and V̂_α[Q] = α V̂_1[Q/α].
    spec = box([-2.0, -1.0], [2.0, 1.0])
    base = DoubleWellQ()
    shifted = FunctionQ(lambda s, a: base.q(s, a) + shift)
    scaled = FunctionQ(lambda s, a: base.q(s, a) / alpha)
    proposal = MixtureSampler(
        [UniformSampler(action_spec=spec), UniformSampler(action_spec=box([0.0, 0.0], [1.0, 1.0]))], weights=[0.5, 0.5]
    )
    td = TensorDict({"observation": torch.randn(7, 2, generator=gen(seed), dtype=F64)}, [7])
    for make in (
        lambda q, a: UniformSoftValue(q, action_spec=spec, alpha=a, num_samples=k),
        lambda q, a: ImportanceSoftValue(q, proposal, alpha=a, num_samples=k),
    ):
        v = make(base, alpha)(td.clone(), generator=gen(seed))["soft_value"]
        v_shift = make(shifted, alpha)(td.clone(), generator=gen(seed))["soft_value"]
        torch.testing.assert_close(v_shift, v + shift, atol=1e-9, rtol=1e-9)
        # A fixed temperature computes with the exact Python float α.
        v_unit = make(scaled, 1.0)(td.clone(), generator=gen(seed))["soft_value"]
        torch.testing.assert_close(v, alpha * v_unit, atol=1e-6, rtol=1e-6)


def test_unbatched_state():
    spec = box([-1.0], [1.0])
    td = TensorDict({"observation": torch.tensor([0.5], dtype=F64)}, [])
    for estimator in (
        UniformSoftValue(DoubleWellQ(), action_spec=spec, alpha=1.0, num_samples=3),
        ImportanceSoftValue(DoubleWellQ(), UniformSampler(action_spec=spec), alpha=1.0, num_samples=3),
        PolicySoftValue(DoubleWellQ(), UniformSampler(action_spec=spec), alpha=1.0, num_samples=3),
        ExactSoftValue(action_value_net(lambda s: torch.cat([s, -s], -1)), alpha=1.0),
    ):
        assert estimator(td.clone(), generator=gen(0))["soft_value"].shape == (1,)
