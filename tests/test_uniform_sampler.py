"""UniformSampler and MixtureSampler: exact densities, distributions of the draws, interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from tensordict import TensorDict
from torchrl.data import Bounded, Categorical, Composite, OneHot, Unbounded
from torchrl.envs import GymEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components.modules.qfunction import QFunction
from maxent_components.modules.qvalue import continuous_qvalue_network
from maxent_components.samplers.base import PolicySampler
from maxent_components.samplers.boltzmann import BoltzmannSampler
from maxent_components.samplers.gaussian import GaussianSampler
from maxent_components.samplers.mixture import MixtureSampler
from maxent_components.samplers.uniform import UniformSampler
from maxent_components.temperature import FixedTemperature

torch.set_num_threads(1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def empty(*batch: int) -> TensorDict:
    return TensorDict({}, batch_size=list(batch))


SPEC = Bounded(torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([1.0, 0.5, 5.0]), shape=(3,))


def test_uniform_samples_shapes_bounds_and_density():
    sampler = UniformSampler(action_spec=SPEC)
    assert isinstance(sampler, PolicySampler)
    actions, log_prob = sampler.sample(empty(4, 5), 7, generator=gen(0))
    assert actions.shape == (7, 4, 5, 3) and log_prob.shape == (7, 4, 5)
    assert bool(((actions >= SPEC.space.low) & (actions <= SPEC.space.high)).all())
    expected = -math.log(2.0 * 0.5 * 3.0)
    torch.testing.assert_close(log_prob, torch.full((7, 4, 5), expected))
    torch.testing.assert_close(sampler.log_prob(empty(4, 5), actions), log_prob)
    outside = actions.clone()
    outside[0, 0, 0, 1] = 0.6
    outside[1, 2, 3, 2] = 1.9
    log_q = sampler.log_prob(empty(4, 5), outside)
    assert log_q[0, 0, 0] == -math.inf and log_q[1, 2, 3] == -math.inf
    assert bool(torch.isfinite(log_q).sum() == 7 * 4 * 5 - 2)
    with pytest.raises(ValueError, match="action shape"):
        sampler.log_prob(empty(4), torch.zeros(4, 2))


def test_uniform_samples_are_uniform():
    sampler = UniformSampler(action_spec=SPEC)
    actions, _ = sampler.sample(empty(), 4000, generator=gen(1))
    for i, (lo, hi) in enumerate([(-1.0, 1.0), (0.0, 0.5), (2.0, 5.0)]):
        p = stats.kstest(actions[:, i].numpy(), stats.uniform(loc=lo, scale=hi - lo).cdf).pvalue
        assert p > 1e-3
    # independent coordinates: correlations vanish at the 1/√n scale
    corr = torch.corrcoef(actions.T)
    assert bool((corr - torch.eye(3)).abs().max() < 5 / math.sqrt(4000))


def test_uniform_sampler_reproducible_and_drives_a_collector():
    sampler = UniformSampler(action_spec=SPEC)
    a, _ = sampler.sample(empty(3), 2, generator=gen(5))
    b, _ = sampler.sample(empty(3), 2, generator=gen(5))
    c, _ = sampler.sample(empty(3), 2, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    td = sampler(TensorDict({"observation": torch.zeros(3, 2)}, [3]))
    assert td["action"].shape == (3, 3) and td["action_log_prob"].shape == (3,)
    env = GymEnv("Pendulum-v1")
    env.set_seed(0)
    explorer = UniformSampler(action_spec=env.action_spec)
    with set_exploration_type(ExplorationType.RANDOM):
        rollout = env.rollout(12, policy=explorer)
    env.close()
    assert rollout["action"].shape == (12, 1)
    assert bool((rollout["action"].abs() <= 2.0).all())
    assert rollout["action"].std() > 0.5


@pytest.mark.parametrize(
    "spec,error,match",
    [
        (OneHot(3), ValueError, "action_spec.*discrete"),
        (Categorical(3), ValueError, "action_spec.*discrete"),
        (Unbounded(shape=(2,)), ValueError, "action_spec.*Bounded"),
        (Composite(other=Bounded(-1.0, 1.0, shape=(2,))), ValueError, "action_spec is a Composite spec without"),
        (Bounded(torch.tensor([-math.inf]), torch.tensor([1.0]), shape=(1,)), ValueError, "finite bounds"),
        (None, ValueError, "action_spec is required"),
    ],
    ids=["onehot", "categorical", "unbounded", "composite", "infinite", "missing"],
)
def test_uniform_sampler_rejects_bad_specs(spec, error, match):
    with pytest.raises(error, match=match):
        UniformSampler(action_spec=spec)


def test_uniform_sampler_reads_the_action_entry_of_a_composite_spec():
    sampler = UniformSampler(action_spec=Composite(action=Bounded(-2.0, 1.0, shape=(2,))))
    assert sampler.log_prob(TensorDict(batch_size=[]), torch.zeros(2)).item() == pytest.approx(-2 * math.log(3.0))


def test_uniform_sampler_rejects_bad_num_samples():
    sampler = UniformSampler(action_spec=SPEC)
    for n in (0, -1, 1.5):
        with pytest.raises(ValueError, match="num_samples"):
            sampler.sample(empty(2), n)


# -- mixtures ---------------------------------------------------------------------------------
WIDE = Bounded(-2.0, 2.0, shape=(1,))
NARROW = Bounded(0.0, 1.0, shape=(1,))


def _mixture(w_wide=0.4):
    return MixtureSampler(
        [UniformSampler(action_spec=WIDE), UniformSampler(action_spec=NARROW)], weights=[w_wide, 1 - w_wide]
    )


def test_mixture_log_prob_is_the_exact_mixture_density():
    mixture = _mixture(0.4)
    x = torch.tensor([[-1.5], [0.5], [1.0], [1.5], [2.5]])
    expected = torch.tensor([0.4 / 4, 0.4 / 4 + 0.6, 0.4 / 4 + 0.6, 0.4 / 4, 0.0]).log()
    torch.testing.assert_close(mixture.log_prob(empty(5), x), expected)
    torch.testing.assert_close(mixture.weights, torch.tensor([0.4, 0.6]))
    # weights are normalised
    torch.testing.assert_close(
        MixtureSampler(mixture.samplers, weights=[2.0, 3.0]).log_prob(empty(5), x), expected
    )


def test_mixture_samples_follow_the_mixture_distribution():
    mixture = _mixture(0.4)
    actions, log_prob = mixture.sample(empty(50), 80, generator=gen(2))
    assert actions.shape == (80, 50, 1) and log_prob.shape == (80, 50)
    torch.testing.assert_close(log_prob, mixture.log_prob(empty(50), actions))

    def cdf(x):
        return 0.4 * np.clip((x + 2) / 4, 0.0, 1.0) + 0.6 * np.clip(x, 0.0, 1.0)

    pvalue = stats.kstest(actions.flatten().double().numpy(), cdf).pvalue
    assert pvalue > 1e-3
    # the component choice is independent across states and samples
    inside = ((actions > 0) & (actions < 1)).float().squeeze(-1)
    assert abs(inside.mean().item() - (0.4 / 4 + 0.6)) < 5 * math.sqrt(0.7 * 0.3 / inside.numel())


def test_mixture_with_gaussian_component_integrates_to_one_and_owns_nothing():
    torch.manual_seed(0)
    spec = Bounded(-1.0, 1.0, shape=(1,))
    qnet = continuous_qvalue_network(2, 1, num_cells=[8])
    gaussian = GaussianSampler(qnet, action_spec=spec, alpha=0.3, observation_dim=2, num_cells=(8,))
    uniform = UniformSampler(action_spec=spec)
    mixture = MixtureSampler([gaussian, uniform], weights=[0.7, 0.3])
    assert list(mixture.parameters()) == [] and mixture.state_dict() == {}
    # Neither the mixture nor the uniform component has a temperature of its own; the Gaussian
    # keeps its own, and it is reached through subsamplers() (which a loss binds).
    assert mixture.temperature is None and uniform.temperature is None
    assert gaussian.temperature.value() == 0.3
    assert mixture.subsamplers() == (gaussian, uniform)
    x = torch.linspace(-1, 1, 40001)[1:-1]
    for s in torch.randn(3, 2, generator=gen(3)):
        td = TensorDict({"observation": s.expand(x.shape[0], 2)}, [x.shape[0]])
        density = mixture.log_prob(td, x.unsqueeze(-1)).double().exp()
        assert torch.trapezoid(density, x.double()).item() == pytest.approx(1.0, abs=2e-3)
    td = TensorDict({"observation": torch.randn(6, 2, generator=gen(4))}, [6])
    actions, log_prob = mixture.sample(td, 5, generator=gen(5))
    assert actions.shape == (5, 6, 1) and bool((actions.abs() <= 1).all())
    torch.testing.assert_close(log_prob, mixture.log_prob(td, actions))
    # Binding the mixture (what a loss does) binds its components to the same Q and temperature.
    other_q, temperature = QFunction(continuous_qvalue_network(2, 1, num_cells=[8])), FixedTemperature(0.5)
    mixture.bind(other_q, temperature)
    assert gaussian.qvalue is other_q and gaussian.temperature is temperature
    assert uniform.qvalue is other_q and uniform.temperature is temperature
    assert list(mixture.parameters()) == []


def test_mixture_rejects_bad_components_and_weights():
    uniform = UniformSampler(action_spec=WIDE)
    with pytest.raises(ValueError, match="at least one"):
        MixtureSampler([], weights=[])
    with pytest.raises(ValueError, match="one weight per sampler"):
        MixtureSampler([uniform, uniform], weights=[1.0])
    for weights in ([-0.1, 1.1], [0.0, 0.0], [math.nan, 1.0]):
        with pytest.raises(ValueError, match="weights must be finite"):
            MixtureSampler([uniform, uniform], weights=weights)
    with pytest.raises(ValueError, match="share one action shape"):
        MixtureSampler([uniform, UniformSampler(action_spec=SPEC)], weights=[0.5, 0.5])
    qnet = continuous_qvalue_network(2, 3, num_cells=[4])
    with pytest.raises(TypeError, match=r"samplers\[1\].*log_prob"):
        MixtureSampler([uniform, BoltzmannSampler(qnet, action_spec=OneHot(3))], weights=[0.5, 0.5])
