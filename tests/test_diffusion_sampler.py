"""DiffusionSampler (DIME's policy) against exact ground truth.

- Its ``log_prob`` is the path ratio DIME's bound is made of: for any network,
  ``E[1{a ∈ C} exp(−log_prob)] = |C|`` for every cell ``C`` (the noising process integrates to one),
  checked with the unbiased cell-volume estimator in 1-D and 2-D; a wrong term in ``ℓ`` breaks it.
- The bound on targets whose entropy is known (a Gaussian and a two-mode mixture in ``u``): with the
  network the forward process itself prescribes (the posterior mean of each step, in closed form for
  Gaussian mixtures), ``−mean(log_prob)`` is below the entropy of the sampled actions (a histogram on
  a fine grid) and the gap shrinks as ``K`` grows.
- A trained sampler on the tilted double well and on the four-mode mixture: each mode's share, the
  MMD to exact samples, and its reported entropy below the entropy of its samples.
- The API, a TorchRL collector, SAC's composition (each loss term reaches only its own parameters,
  no host reads), the noise schedule and the network's start.
"""

from __future__ import annotations

import pytest
import torch
from density_sampler_checks import (
    BOX,
    OBS,
    check_api,
    check_drives_a_collector,
    check_ownership,
    width_estimates,
)
from tensordict import TensorDict
from test_samplers_continuous import (
    BOX1,
    BOX2,
    MIX_Q,
    MIX_TD,
    TILTS,
    WELL_ALPHA,
    WELL_Q,
    WELL_TD,
    check_mixture,
    exact_well_samples,
    mmd2,
    well_share,
)
from torch import nn

from maxent_components import DiffusionSampler, LangevinSampler
from maxent_components.modules import continuous_qvalue_network
from maxent_components.samplers.diffusion import DenoisingNetwork, cosine_noise_schedule

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _entropy_of_samples(actions: torch.Tensor, bins: int = 400) -> float:
    """Plug-in entropy of 1-D actions on ``[−1, 1]`` from a histogram (a density on the grid's cells)."""
    p = torch.histc(actions, bins, -1, 1) / len(actions)
    p = p[p > 0]
    return float(-(p * (p * bins / 2).log()).sum())


# -- the path ratio -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [1, 2])
def test_log_prob_is_the_path_ratio_of_the_bound(float64, dim):
    torch.manual_seed(dim)
    spec = BOX1 if dim == 1 else BOX2
    network = DenoisingNetwork(1, dim, num_cells=(16,))
    with torch.no_grad():  # a network that does something: the last layer is zero at the start
        network.mlp[-1].weight.normal_(0.0, 0.2)
        network.mlp[-1].bias.normal_(0.0, 0.1)
    sampler = DiffusionSampler(MIX_Q if dim == 2 else WELL_Q, network, action_spec=spec, alpha=1.0,
                               num_steps=4).double()
    td = TensorDict(observation=torch.full((1, 1), 0.5), batch_size=[1])
    n = 200_000
    with torch.no_grad():
        actions, log_prob = sampler.sample(td, n, generator=torch.Generator().manual_seed(0))
    edges = torch.linspace(-0.9, 0.9, 10 if dim == 1 else 5)
    volume = float(edges[1] - edges[0]) ** dim
    widths, errors, counts = width_estimates(actions[:, 0], log_prob[:, 0], edges)
    used = counts > 2000
    assert int(used.sum()) >= (6 if dim == 1 else 9)
    ratio = widths[used] / volume
    assert bool(((ratio - 1).abs() < 4 * errors[used] / volume + 0.01).all()), (ratio, errors[used] / volume)


# -- the bound on known entropies -------------------------------------------------------------------------
class _ReversalMean(nn.Module):
    """The score whose Euler–Maruyama step lands on the forward process's posterior mean
    ``E[x_k | x_{k+1}]``, in closed form when ``x_0`` is a Gaussian mixture in ``u``-space."""

    def __init__(self, sampler: DiffusionSampler, means, stds, weights):
        super().__init__()
        self.sampler = [sampler]  # not a submodule
        gammas = sampler.gammas.double()
        means, variances = [torch.tensor(means)], [torch.tensor(stds).square()]
        for g in gammas:
            means.append((1 - g / 2) * means[-1])
            variances.append((1 - g / 2) ** 2 * variances[-1] + sampler.prior_std**2 * g)
        self.means, self.variances, self.log_weights = means, variances, torch.tensor(weights).log()

    def forward(self, observation, x, t):
        sampler = self.sampler[0]
        k = int(round(float(t) * sampler.num_steps)) - 1  # the step from x_{k+1} to x_k
        g, sigma2 = sampler.gammas[k].double(), sampler.prior_std**2
        m_next, v_next = self.means[k + 1], self.variances[k + 1]
        log_r = self.log_weights - (x - m_next).square() / (2 * v_next) - 0.5 * v_next.log()
        posterior = self.means[k] + (1 - g / 2) * self.variances[k] / v_next * (x - m_next)
        mean = (log_r.softmax(-1) * posterior).sum(-1, keepdim=True)
        return (mean - x - g * x / 2) / (sigma2 * g)


@pytest.mark.parametrize(
    "means, stds, weights",
    [([0.3], [0.4], [1.0]), ([-0.8, 0.6], [0.3, 0.25], [0.4, 0.6])],
    ids=["gaussian", "two_modes"],
)
def test_bound_is_below_the_entropy_and_tightens_with_more_steps(float64, means, stds, weights):
    td = TensorDict(observation=torch.zeros(1, 1), batch_size=[1])
    gaps = []
    for num_steps in (8, 16, 32, 64):
        sampler = DiffusionSampler(WELL_Q, nn.Identity(), action_spec=BOX1, alpha=1.0, num_steps=num_steps).double()
        sampler.policy_network = _ReversalMean(sampler, means, stds, weights)
        with torch.no_grad():
            actions, log_prob = sampler.sample(td, 200_000, generator=torch.Generator().manual_seed(num_steps))
        bound, entropy = float(-log_prob.mean()), _entropy_of_samples(actions[:, 0, 0])
        assert bound < entropy + 0.01, (num_steps, bound, entropy)
        gaps.append(entropy - bound)
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.5 * gaps[0], gaps


# -- learning ------------------------------------------------------------------------------------------
def _train(sampler, td, steps, *, lr=3e-3, seed=0):
    """Adam with a cosine decay of the step size, on the sampler's own loss."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    optim = torch.optim.Adam(sampler.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps, eta_min=lr / 20)
    for _ in range(steps):
        loss = sampler.loss(td, generator=gen)["loss_actor"]
        optim.zero_grad()
        loss.backward()
        optim.step()
        schedule.step()
    return sampler


def test_trained_on_the_double_well():
    torch.manual_seed(0)
    sampler = DiffusionSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, observation_dim=1, num_cells=(64, 64),
                               num_steps=16, num_loss_samples=16)
    _train(sampler, WELL_TD.expand(4, 2).reshape(-1), 2000)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        actions, log_prob = sampler.sample(WELL_TD, 4000, generator=gen)
    mala, _ = LangevinSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, num_steps=400, step_size=0.05,
                              metropolis=True).sample(WELL_TD, 4000, generator=gen)
    for b, tilt in enumerate(TILTS):
        share = float((actions[:, b] > 0).float().mean())
        assert abs(share - well_share(tilt)) < 0.05, (tilt, share)
        exact = exact_well_samples(tilt, 4000, gen)
        uniform = torch.rand(4000, 1, generator=gen) * 2 - 1
        ours, theirs, base = (mmd2(x, exact, 0.1) for x in (actions[:, b], mala[:, b], uniform))
        assert ours < 0.3 * base, (tilt, ours, theirs, base)
        # DIME's entropy is a lower bound: below the entropy of the sampler's own actions
        assert float(-log_prob[:, b].mean()) < _entropy_of_samples(actions[:, b, 0]) + 0.02


def test_trained_on_the_four_mode_mixture():
    torch.manual_seed(0)
    sampler = DiffusionSampler(MIX_Q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(64, 64),
                               num_steps=16, num_loss_samples=16)
    _train(sampler, MIX_TD.expand(8).clone(), 1500)
    with torch.no_grad():
        actions, _ = sampler.sample(MIX_TD, 2000, generator=torch.Generator().manual_seed(2))
    check_mixture(actions, slack=0.06, mmd_ratio=0.35, seed=3)


# -- API, collector, SAC's composition ---------------------------------------------------------------------
def _actor(qnet=None, **kwargs):
    options = {"observation_dim": OBS, "num_cells": (16,), "num_steps": 3, **kwargs}
    return DiffusionSampler(qnet, action_spec=BOX, **options)


def test_sampler_api():
    torch.manual_seed(5)
    q = continuous_qvalue_network(OBS, 2, num_cells=[16])
    sampler = _actor(q, alpha=0.5)
    check_api(sampler, TensorDict(observation=torch.randn(4, OBS), batch_size=[4]))
    check_api(sampler, TensorDict(observation=torch.randn(2, 3, OBS), batch_size=[2, 3]))
    loss = sampler.loss(TensorDict(observation=torch.randn(4, OBS), batch_size=[4]))
    assert set(loss.keys()) == {"loss_actor", "alpha", "entropy"}
    assert loss["loss_actor"].requires_grad and not loss["entropy"].requires_grad
    loss["loss_actor"].backward()
    assert all(p.grad is None for p in q.parameters())
    assert all(p.grad is not None for p in sampler.policy_network.parameters())


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_steps": 0}, "num_steps"), ({"prior_std": 0.0}, "prior_std"), ({"max_noise": 1.0}, "max_noise"),
     ({"num_loss_samples": 0}, "num_loss_samples")],
)
def test_bad_hyperparameters_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _actor(**kwargs)


def test_a_network_of_the_wrong_shape_is_named():
    sampler = DiffusionSampler(WELL_Q, lambda obs, x, t: x[..., :0], action_spec=BOX1, alpha=1.0, num_steps=2)
    with pytest.raises(ValueError, match="policy_network must return shape"):
        sampler.sample(WELL_TD, 3)


def test_drives_a_torchrl_collector():
    check_drives_a_collector(lambda q, spec: DiffusionSampler(q, action_spec=spec, alpha=0.5, observation_dim=3,
                                                              num_cells=(16,), num_steps=3))


def test_in_sac_each_loss_term_reaches_only_its_own_parameters():
    check_ownership(_actor)


def test_network_is_called_once_per_step_on_every_sample_of_every_state():
    calls = []

    class Counting(DenoisingNetwork):
        def forward(self, observation, x, t):
            calls.append((tuple(x.shape), round(float(t), 6)))
            return super().forward(observation, x, t)

    sampler = DiffusionSampler(WELL_Q, Counting(1, 1, num_cells=(8,)), action_spec=BOX1, alpha=1.0, num_steps=4,
                               num_loss_samples=3)
    sampler.loss(TensorDict(observation=torch.zeros(5, 2, 1), batch_size=[5, 2]))
    assert calls == [((3, 5, 2, 1), t) for t in (1.0, 0.75, 0.5, 0.25)]  # from the prior's end down


def test_noise_schedule_and_the_untrained_chain():
    gammas = cosine_noise_schedule(16)
    assert gammas.shape == (16,) and bool((gammas.diff() > 0).all())
    assert float(gammas[0]) < 0.02 and float(gammas[-1]) == pytest.approx(0.999)
    # Before training the network returns the prior's score: the chain keeps (nearly) its prior,
    # so a fresh sampler is broad, as a fresh Gaussian policy is.
    sampler = DiffusionSampler(WELL_Q, action_spec=BOX1, alpha=1.0, observation_dim=1, num_cells=(16,))
    td = TensorDict(observation=torch.zeros(1, 1), batch_size=[1])
    with torch.no_grad():
        actions, _ = sampler.sample(td, 20_000, generator=torch.Generator().manual_seed(0))
    u = sampler.unsquash(actions)
    assert abs(float(u.mean())) < 0.05 and 0.9 < float(u.std()) < 1.2
