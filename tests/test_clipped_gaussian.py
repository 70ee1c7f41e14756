"""The clipped Gaussian policy against the exact law of ``clip(u, low, high)``, ``u ∼ N(μ, σ²)``.

Ground truth: the normal CDF gives the masses on the bounds, the normal density the interior, and
quadrature of the density plus the two masses must be one. Sampling is checked by the frequency of
draws landing on each bound (binomial tolerance) and by the sampler's own log-probabilities.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from torch.distributions import Normal
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components import functional as F
from maxent_components.modules.qvalue import continuous_qvalue_network
from maxent_components.objectives import PathConsistencyLoss, SoftQLoss
from maxent_components.samplers import ClippedGaussianSampler, GaussianSampler
from maxent_components.soft_value import ImportanceSoftValue, PolicySoftValue

pytestmark = pytest.mark.usefixtures("one_thread")


@settings(max_examples=40, deadline=None)
@given(
    loc=st.floats(-6.0, 6.0),
    scale=st.floats(0.05, 5.0),
    low=st.floats(-3.0, 0.0),
    width=st.floats(0.1, 4.0),
)
def test_density_and_masses_are_the_law_of_the_clipped_normal_and_total_one(loc, scale, low, width):
    high = low + width
    mu, sigma = torch.tensor(loc, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64)
    normal = Normal(mu, sigma)
    at = torch.tensor([low, high], dtype=torch.float64)
    masses = F.clipped_normal_log_prob(at, mu, sigma, low, high).exp()
    torch.testing.assert_close(masses, torch.stack([normal.cdf(at[0]), 1 - normal.cdf(at[1])]), atol=1e-9, rtol=1e-6)
    n = 20_000
    grid = low + (torch.arange(n, dtype=torch.float64) + 0.5) / n * width
    density = F.clipped_normal_log_prob(grid, mu, sigma, low, high)
    torch.testing.assert_close(density, normal.log_prob(grid))
    total = density.exp().sum() * width / n + masses.sum()
    assert abs(float(total) - 1.0) < 1e-4


def test_log_prob_on_a_bound_is_at_most_zero_where_the_tanh_normal_density_diverges():
    # All mass pushed to the upper bound. The clipped law gives the bound log 1 = 0 at most; the
    # tanh-normal density there (at its clamped preimage) grows as the scale shrinks.
    spec = Bounded(-2.0, 2.0, shape=(1,))
    clipped = ClippedGaussianSampler(action_spec=spec, observation_dim=1, num_cells=(4,))
    tanh = GaussianSampler(action_spec=spec, observation_dim=1, num_cells=(4,))
    td = TensorDict(observation=torch.zeros(1, 1), batch_size=[1])
    bound = torch.tensor([[2.0]])
    edge = tanh.unsquash(bound)  # the pre-tanh point the bound is evaluated at
    tanh_values = []
    for scale in (1.0, 0.1, 0.01):
        params = (lambda td, loc=edge, s=scale: (loc, torch.full((1, 1), s)))
        clipped.distribution_params, tanh.distribution_params = (lambda td, s=scale: (torch.full((1, 1), 50.0), torch.full((1, 1), s))), params
        assert -1e-6 < float(clipped.log_prob(td, bound)) <= 0.0
        tanh_values.append(float(tanh.log_prob(td, bound)))
    assert tanh_values[0] > 10.0 and tanh_values[0] < tanh_values[1] < tanh_values[2]


def test_samples_hit_the_bounds_as_often_as_the_normal_cdf_says():
    torch.manual_seed(0)
    spec = Bounded(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.5]), shape=(2,))
    sampler = ClippedGaussianSampler(action_spec=spec, observation_dim=3, num_cells=(16,))
    td = TensorDict(observation=torch.randn(3, 3), batch_size=[3])
    n = 20_000
    with torch.no_grad():
        actions, log_prob = sampler.sample(td, n, generator=torch.Generator().manual_seed(1))
        loc, scale = sampler.distribution_params(td)
        torch.testing.assert_close(log_prob, sampler.log_prob(td, actions))
    assert actions.shape == (n, 3, 2)
    assert bool(((actions >= spec.space.low) & (actions <= spec.space.high)).all())
    normal = Normal(loc.double(), scale.double())
    for bound, expected in ((spec.space.low, normal.cdf(spec.space.low.double())),
                            (spec.space.high, 1 - normal.cdf(spec.space.high.double()))):
        freq = (actions == bound).double().mean(0)
        tol = 4 * (expected * (1 - expected) / n).sqrt() + 1e-3
        assert bool(((freq - expected).abs() <= tol).all()), (freq, expected)
    # The network works in units of the box: an output (0, 1) is the box's centre and half-width.
    centre, half = (spec.space.low + spec.space.high) / 2, (spec.space.high - spec.space.low) / 2
    raw_loc, raw_scale = GaussianSampler.distribution_params(sampler, td)
    torch.testing.assert_close(loc, centre + half * raw_loc)
    torch.testing.assert_close(scale, half * raw_scale)


def test_deterministic_action_is_the_clipped_mean_and_random_actions_vary():
    spec = Bounded(-1.0, 1.0, shape=(2,))
    sampler = ClippedGaussianSampler(action_spec=spec, observation_dim=1, num_cells=(8,))
    td = TensorDict(observation=torch.tensor([[0.0], [30.0]]), batch_size=[2])
    loc, _ = sampler.distribution_params(td)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        out = sampler(td.clone())
    torch.testing.assert_close(out["action"], loc.clamp(-1.0, 1.0))
    torch.testing.assert_close(out["action_log_prob"], sampler.log_prob(td, out["action"]))
    with set_exploration_type(ExplorationType.RANDOM):
        out = sampler(td.clone())
    assert out["action"].shape == (2, 2) and not torch.allclose(out["action"], loc.clamp(-1.0, 1.0))
    assert float(sampler.log_prob(td, torch.full((2, 2), 1.5))[0].detach()) == -math.inf  # outside the box


def test_it_trains_through_log_prob_in_pcl_and_is_refused_where_a_loss_must_train_it():
    spec = Bounded(-1.0, 1.0, shape=(1,))
    sampler = ClippedGaussianSampler(action_spec=spec, observation_dim=3, num_cells=(8,))
    assert not sampler.has_loss and sampler.has_log_prob
    with pytest.raises(NotImplementedError, match="use GaussianSampler"):
        sampler.loss(TensorDict(observation=torch.zeros(2, 3), batch_size=[2]))
    qnet = continuous_qvalue_network(3, 1, num_cells=(8,))
    with pytest.raises(ValueError, match=r"actor \(ClippedGaussianSampler\) has a policy network but no loss"):
        SoftQLoss(qnet, PolicySoftValue(), actor=sampler, alpha=0.1)
    proposal = ClippedGaussianSampler(action_spec=spec, observation_dim=3, num_cells=(8,))
    with pytest.raises(ValueError, match="has a policy network but no loss"):
        SoftQLoss(qnet, ImportanceSoftValue(proposal=proposal), actor=GaussianSampler(action_spec=spec, observation_dim=3, num_cells=(8,)), alpha=0.1)
    from torchrl.modules import MLP, ValueOperator

    value = ValueOperator(MLP(in_features=3, out_features=1, num_cells=[8]), in_keys=["observation"])
    loss = PathConsistencyLoss(sampler, value, alpha=0.2, gamma=0.99)
    n, horizon = 4, 3
    td = TensorDict({
        "observation": torch.randn(n, horizon, 3),
        "action": torch.rand(n, horizon, 1) * 2 - 1,
        "next": {"observation": torch.randn(n, horizon, 3), "reward": torch.randn(n, horizon, 1),
                 "terminated": torch.zeros(n, horizon, 1, dtype=torch.bool)},
    }, batch_size=[n, horizon])
    td["action"][0, 0] = 1.0  # a replayed action on the bound: a finite log-probability
    out = loss(td)
    out["loss_actor"].backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in sampler.parameters())
