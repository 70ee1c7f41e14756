"""Continuous samplers against exact targets ``π(a|s) ∝ exp(Q(s, a)/α)`` on a box.

The Q "networks" here are analytic TensorDict modules with closed forms, so the target is known
exactly: mode shares by quadrature, exact samples by drawing grid cells with their exact
probabilities. Two targets:

- a 1-D tilted double well on ``[−1, 1]``: ``Q(s, a) = −8 (a² − 0.36)² + (s/10)·a`` at ``α = 0.5``
  (modes at ``±0.6``, a barrier of about 2 nats; the observation ``s`` tilts the well, so the two
  states of the batch differ: shares ``0.5/0.5`` at ``s = 0`` and ``0.35/0.65`` at ``s = 3``);
- a 2-D four-mode Gaussian mixture in ``[−1, 1]²``: ``exp(Q(a)) ∝ Σ_k w_k N(a; μ_k, 0.25² I)``
  with ``μ_k = (±0.5, ±0.5)`` and ``w = (0.4, 0.3, 0.2, 0.1)`` (truncated by the box; the exact
  quadrant shares come from quadrature).

Each sampler must match every mode's share within ``4`` binomial standard deviations (plus a
stated slack for the samplers that are approximate by construction: ULA's ``O(ε)`` bias, finite
particle SVGD, amortization), and the squared MMD (RBF kernel) between its samples and exact
samples must be a small fraction of the MMD between uniform samples and exact samples.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Categorical, OneHot, Unbounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components.checks import set_data_checks
from maxent_components.modules.qfunction import QFunction
from maxent_components.modules.qvalue import continuous_qvalue_network
from maxent_components.objectives import SoftQLoss
from maxent_components.samplers.gaussian import GaussianSampler
from maxent_components.samplers.langevin import LangevinSampler
from maxent_components.samplers.svgd import SVGDSampler
from maxent_components.samplers.uniform import UniformSampler
from maxent_components.soft_value import PolicySoftValue, UniformSoftValue
from maxent_components.temperature import AnnealedTemperature, AutoTemperature, scheduled_temperatures

pytestmark = pytest.mark.usefixtures("one_thread")


# -- exact targets --------------------------------------------------------------------------------
WELL_ALPHA = 0.5
TILTS = (0.0, 0.3)
MEANS = torch.tensor([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
WEIGHTS = torch.tensor([0.4, 0.3, 0.2, 0.1])
SIGMA = 0.25
NUM = 2000  # samples per state for the share and MMD checks


def _well(obs, act):
    # The tilt is obs / 10: observations 0 and 3 differ enough for an MLP to tell the states apart.
    return -8.0 * (act.square() - 0.36).square() + 0.1 * obs[..., :1] * act


def _mixture(obs, act):
    d2 = (act.unsqueeze(-2) - MEANS.to(act.dtype)).square().sum(-1)
    return torch.logsumexp(WEIGHTS.to(act.dtype).log() - d2 / (2 * SIGMA**2), -1, keepdim=True)


def analytic_q(fn) -> TensorDictModule:
    return TensorDictModule(fn, in_keys=["observation", "action"], out_keys=["state_action_value"])


WELL_Q, MIX_Q = analytic_q(_well), analytic_q(_mixture)
BOX1, BOX2 = Bounded(-1, 1, shape=(1,)), Bounded(-1, 1, shape=(2,))
WELL_TD = TensorDict(observation=torch.tensor([[10 * t] for t in TILTS]), batch_size=[2])
MIX_TD = TensorDict(observation=torch.zeros(1, 1), batch_size=[1])


def well_grid(tilt: float, alpha: float = WELL_ALPHA, n: int = 40_000):
    """Cell midpoints of ``[−1, 1]`` and their exact probabilities (midpoint rule)."""
    a = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 - 1
    log_p = _well(torch.tensor([[10 * tilt]], dtype=torch.float64), a.unsqueeze(-1)).squeeze(-1) / alpha
    p = (log_p - log_p.max()).exp()
    return a, p / p.sum()


def mixture_grid(n: int = 401):
    g = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2 - 1
    cells = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    log_p = _mixture(None, cells).squeeze(-1)
    p = (log_p - log_p.max()).exp()
    return cells, p / p.sum(), 2.0 / n


def quadrant(a: torch.Tensor) -> torch.Tensor:
    """Index of the mixture component whose quadrant holds ``a`` (the order of ``MEANS``)."""
    right, up = a[..., 0] > 0, a[..., 1] > 0
    return torch.where(right, torch.where(up, 0, 3), torch.where(up, 1, 2))


def exact_well_samples(tilt: float, n: int, gen: torch.Generator) -> torch.Tensor:
    a, p = well_grid(tilt)
    idx = torch.multinomial(p, n, replacement=True, generator=gen)
    jitter = (torch.rand(n, generator=gen, dtype=torch.float64) - 0.5) * (2 / len(a))
    return (a[idx] + jitter).float().unsqueeze(-1)


def exact_mixture_samples(n: int, gen: torch.Generator) -> torch.Tensor:
    cells, p, width = mixture_grid()
    idx = torch.multinomial(p, n, replacement=True, generator=gen)
    jitter = (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * width
    return (cells[idx] + jitter).float()


def well_share(tilt: float) -> float:
    a, p = well_grid(tilt)
    return float(p[a > 0].sum())


def mixture_shares() -> torch.Tensor:
    cells, p, _ = mixture_grid()
    q = quadrant(cells)
    return torch.stack([p[q == k].sum() for k in range(4)]).float()


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    """Unbiased squared MMD with the kernel ``exp(−‖x − y‖² / (2 bandwidth²))``."""

    def k(a, b):
        return torch.exp(-torch.cdist(a, b).square() / (2 * bandwidth**2))

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float(
        (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )


def binomial_tol(p: float, n: int, slack: float) -> float:
    return 4 * math.sqrt(p * (1 - p) / n) + slack


def check_well(actions: torch.Tensor, *, slack: float, mmd_ratio: float, seed: int) -> None:
    """``actions [n, 2, 1]`` for the two tilted states of ``WELL_TD``."""
    gen = torch.Generator().manual_seed(seed)
    assert bool(((actions >= -1) & (actions <= 1)).all())
    for b, tilt in enumerate(TILTS):
        a = actions[:, b]
        exact_p = well_share(tilt)
        share = float((a > 0).float().mean())
        assert abs(share - exact_p) < binomial_tol(exact_p, len(a), slack), (tilt, share, exact_p)
        exact = exact_well_samples(tilt, NUM, gen)
        uniform = torch.rand(NUM, 1, generator=gen) * 2 - 1
        ours, base = mmd2(a, exact, 0.1), mmd2(uniform, exact, 0.1)
        assert ours < mmd_ratio * base, (tilt, ours, base)


def check_mixture(actions: torch.Tensor, *, slack: float, mmd_ratio: float, seed: int) -> None:
    """``actions [n, 1, 2]`` for the single state of ``MIX_TD``."""
    gen = torch.Generator().manual_seed(seed)
    a = actions[:, 0]
    assert bool(((a >= -1) & (a <= 1)).all())
    exact_shares = mixture_shares()
    q = quadrant(a)
    for k in range(4):
        share = float((q == k).float().mean())
        p = float(exact_shares[k])
        assert abs(share - p) < binomial_tol(p, len(a), slack), (k, share, p)
    exact = exact_mixture_samples(NUM, gen)
    uniform = torch.rand(NUM, 2, generator=gen) * 2 - 1
    ours, base = mmd2(a, exact, 0.2), mmd2(uniform, exact, 0.2)
    assert ours < mmd_ratio * base, (ours, base)


def test_exact_targets_are_what_the_docstring_says():
    assert abs(well_share(0.0) - 0.5) < 1e-6
    assert 0.62 < well_share(0.3) < 0.68
    shares = mixture_shares()
    assert abs(float(shares.sum()) - 1) < 1e-6
    assert bool((shares.diff() < 0).all())  # ordered as the weights
    # The checks have power: uniform actions fail them.
    with pytest.raises(AssertionError):
        check_well(torch.rand(NUM, 2, 1, generator=torch.Generator().manual_seed(0)) * 2 - 1,
                   slack=0.0, mmd_ratio=0.5, seed=0)
    with pytest.raises(AssertionError):
        check_mixture(torch.rand(NUM, 1, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1,
                      slack=0.0, mmd_ratio=0.5, seed=0)


# -- construction errors ------------------------------------------------------------------------------
def _build(cls, q, spec, **kwargs):
    if cls is LangevinSampler:
        return cls(q, action_spec=spec, **kwargs)
    return cls(q, action_spec=spec, observation_dim=1, num_cells=(8,), **kwargs)


@pytest.mark.parametrize("cls", [GaussianSampler, SVGDSampler, LangevinSampler])
@pytest.mark.parametrize("spec", [Categorical(4), OneHot(3)])
def test_discrete_spec_rejected(cls, spec):
    with pytest.raises(ValueError, match="action_spec"):
        _build(cls, WELL_Q, spec)


@pytest.mark.parametrize("cls", [GaussianSampler, SVGDSampler, LangevinSampler])
def test_unbounded_box_rejected(cls):
    with pytest.raises(ValueError, match="bounded"):
        _build(cls, WELL_Q, Unbounded(shape=(2,)))
    with pytest.raises(ValueError, match="bounded"):
        _build(cls, WELL_Q, Bounded(-float("inf"), 1.0, shape=(2,)))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": -0.1}, "step_size"),
        ({"step_size": float("nan")}, "step_size"),
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": -3}, "num_steps"),
        ({"init": "gaussian"}, "init"),
    ],
)
def test_langevin_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LangevinSampler(WELL_Q, action_spec=BOX1, **kwargs)


def test_svgd_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="fixed"):
        SVGDSampler(WELL_Q, action_spec=BOX1, observation_dim=1, num_particles=3, fixed_fraction=0.2)
    with pytest.raises(ValueError, match="bandwidth"):
        SVGDSampler(WELL_Q, action_spec=BOX1, observation_dim=1, bandwidth="silverman")
    with pytest.raises(ValueError, match="alpha"):
        SVGDSampler(WELL_Q, action_spec=BOX1, observation_dim=1, alpha=AutoTemperature(-1.0))
    with pytest.raises(ValueError, match="observation_dim"):
        SVGDSampler(WELL_Q, action_spec=BOX1)
    sampler = SVGDSampler(WELL_Q, action_spec=BOX1, observation_dim=1, num_cells=(8,))
    with pytest.raises(ValueError, match="step_size"):
        sampler.refine(WELL_TD, torch.zeros(4, 2, 1), num_steps=2, step_size=0.0)
    with pytest.raises(ValueError, match="num_steps"):
        sampler.refine(WELL_TD, torch.zeros(4, 2, 1), num_steps=0, step_size=0.1)
    with pytest.raises(ValueError, match="particles"):
        sampler.refine(WELL_TD, torch.zeros(4, 3, 1), num_steps=1, step_size=0.1)


@pytest.mark.parametrize("cls", [GaussianSampler, SVGDSampler, LangevinSampler])
def test_nonfinite_q_raises_naming_the_qvalue_network(cls):
    # The error names the Q network's output (its key) at the sampled actions, and what is wrong.
    bad_q = analytic_q(lambda obs, act: act.sum(-1, keepdim=True) / 0.0 * 0.0)
    sampler = _build(cls, bad_q, BOX1, alpha=1.0)

    def call():
        if cls is LangevinSampler:
            sampler.sample(WELL_TD, 2)
        else:
            sampler.loss(WELL_TD)

    with set_data_checks(True), pytest.raises(
        ValueError, match="Q-values 'state_action_value' at the sampled actions contains NaN values"
    ):
        call()
    call()  # a data check: without the switch the values are never read, so nothing is raised


def test_nonfinite_q_gradient_raises_naming_the_qvalue_network():
    # sqrt has an infinite derivative at 0: finite Q, non-finite score at a = 0.
    kink = analytic_q(lambda obs, act: act.abs().sqrt().sum(-1, keepdim=True))
    sampler = LangevinSampler(kink, action_spec=BOX1, alpha=1.0, num_steps=1)
    with set_data_checks(True), pytest.raises(
        ValueError, match="the gradient of Q with respect to the sampled actions contains (NaN|Inf) values"
    ):
        sampler.refine(WELL_TD, torch.zeros(3, 2, 1))
    sampler.refine(WELL_TD, torch.zeros(3, 2, 1))  # unchecked without the switch


def test_gaussian_nonpositive_scale_is_a_data_error():
    class _ZeroScale(torch.nn.Module):
        def forward(self, obs):
            return torch.zeros(*obs.shape[:-1], 1), torch.zeros(*obs.shape[:-1], 1)

    sampler = GaussianSampler(WELL_Q, _ZeroScale(), action_spec=BOX1, alpha=1.0)
    with set_data_checks(True), pytest.raises(ValueError, match="non-positive scale"):
        sampler.sample(WELL_TD, 2)
    sampler.sample(WELL_TD, 2)  # unchecked without the switch


@pytest.mark.parametrize("cls", [GaussianSampler, SVGDSampler, LangevinSampler])
def test_a_sampler_used_alone_needs_a_temperature(cls):
    sampler = _build(cls, WELL_Q, BOX1)
    assert sampler.temperature is None
    with pytest.raises(RuntimeError, match="has no temperature: pass alpha="):
        if cls is LangevinSampler:
            sampler.sample(WELL_TD, 2)
        else:
            sampler.loss(WELL_TD)


# -- Langevin: ULA and MALA -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "metropolis, step_size, slack", [(False, 0.01, 0.02), (True, 0.05, 0.0)], ids=["ula", "mala"]
)
def test_langevin_double_well(metropolis, step_size, slack):
    sampler = LangevinSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, num_steps=400,
                              step_size=step_size, metropolis=metropolis)
    actions, info = sampler.sample_with_info(WELL_TD, NUM, generator=torch.Generator().manual_seed(0))
    assert actions.shape == (NUM, 2, 1)
    check_well(actions, slack=slack, mmd_ratio=0.03, seed=1)
    rate = info["acceptance_rate"]
    if metropolis:
        assert bool(((rate > 0.5) & (rate < 1.0)).all())
    else:
        assert bool((rate == 1).all())


@pytest.mark.parametrize(
    "metropolis, step_size, slack", [(False, 0.01, 0.02), (True, 0.05, 0.0)], ids=["ula", "mala"]
)
def test_langevin_four_mode_mixture(metropolis, step_size, slack):
    sampler = LangevinSampler(MIX_Q, action_spec=BOX2, alpha=1.0, num_steps=300,
                              step_size=step_size, metropolis=metropolis)
    actions, _ = sampler.sample(MIX_TD, NUM, generator=torch.Generator().manual_seed(2))
    check_mixture(actions, slack=slack, mmd_ratio=0.05, seed=3)


def test_mala_leaves_the_exact_target_invariant():
    gen = torch.Generator().manual_seed(4)
    start = torch.stack([exact_well_samples(t, NUM, gen) for t in TILTS], dim=1)  # [n, 2, 1]
    # A large step makes ULA visibly wrong; MALA corrects it exactly.
    mala = LangevinSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, num_steps=40, step_size=0.3,
                           metropolis=True)
    moved, info = mala.refine(WELL_TD, start, generator=gen)
    assert bool((info["acceptance_rate"] < 0.9).all()) and bool((info["acceptance_rate"] > 0.1).all())
    assert (moved - start).abs().mean() > 0.1  # the chains did move
    check_well(moved, slack=0.0, mmd_ratio=0.03, seed=5)
    ula = LangevinSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, num_steps=40, step_size=0.3)
    biased, _ = ula.refine(WELL_TD, start, generator=gen)
    exact = exact_well_samples(TILTS[1], NUM, gen)
    assert mmd2(biased[:, 1], exact, 0.1) > 5 * max(mmd2(moved[:, 1], exact, 0.1), 1e-4)


@settings(max_examples=15, deadline=None)
@given(step_size=st.floats(min_value=1e-4, max_value=50.0), metropolis=st.booleans(),
       low=st.floats(min_value=-3.0, max_value=0.5), width=st.floats(min_value=1e-2, max_value=4.0))
def test_langevin_samples_never_leave_the_box(step_size, metropolis, low, width):
    spec = Bounded(low, low + width, shape=(2,))
    sampler = LangevinSampler(MIX_Q, action_spec=spec, alpha=0.05, num_steps=5, step_size=step_size,
                              metropolis=metropolis)
    actions, _ = sampler.sample(MIX_TD, 64, generator=torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(actions).all())
    assert bool(((actions >= spec.space.low) & (actions <= spec.space.high)).all())


def test_langevin_warm_start_and_deterministic_forward():
    init = GaussianSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, observation_dim=1, num_cells=(8,))
    sampler = LangevinSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, num_steps=3, init=init)
    # The warm-start policy is owned (a registered submodule); Q's parameters are not.
    assert sampler.init is init and sampler.subsamplers() == (init,)
    assert [id(p) for p in sampler.parameters()] == [id(p) for p in init.parameters()]
    assert len(list(init.policy_network.parameters())) > 0
    assert {f"init.{k}" for k in init.state_dict()} <= set(sampler.state_dict())
    actions, log_prob = sampler.sample(WELL_TD, 5)
    assert actions.shape == (5, 2, 1) and log_prob is None
    td = sampler(WELL_TD.clone())
    assert td["action"].shape == (2, 1) and "action_log_prob" not in td.keys()
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        first = sampler(WELL_TD.clone())["action"]
        second = sampler(WELL_TD.clone())["action"]
        from_centre = LangevinSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, num_steps=200,
                                      step_size=0.01)(WELL_TD.clone())["action"]
    torch.testing.assert_close(first, second)
    # Noise-free ascent from the centre of the box: the symmetric state stays at the barrier top
    # a = 0 (a stationary point), the tilted one climbs to its dominant mode near a = 0.6.
    assert abs(float(from_centre[0])) < 1e-4
    assert 0.5 < float(from_centre[1]) < 0.7


# -- SVGD -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bandwidth", ["reference", "paper"])
def test_svgd_refine_double_well(bandwidth):
    sampler = SVGDSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, observation_dim=1, num_cells=(8,),
                          bandwidth=bandwidth)
    start = torch.rand(200, 2, 1, generator=torch.Generator().manual_seed(6)) * 2 - 1
    actions = sampler.refine(WELL_TD, start, num_steps=300, step_size=0.1)
    check_well(actions, slack=0.03, mmd_ratio=0.05, seed=7)


def test_svgd_refine_four_mode_mixture():
    sampler = SVGDSampler(MIX_Q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(8,))
    start = torch.rand(200, 1, 2, generator=torch.Generator().manual_seed(8)) * 2 - 1
    actions = sampler.refine(MIX_TD, start, num_steps=300, step_size=0.1)
    check_mixture(actions, slack=0.03, mmd_ratio=0.1, seed=9)


def _train(sampler, td, steps, lr, seed, *, anneal=True):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    optim = torch.optim.Adam(sampler.policy_network.parameters(), lr=lr)
    # A cosine decay of the step size lets the final iterate settle instead of jittering.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps, eta_min=lr / 20 if anneal else lr)
    for _ in range(steps):
        loss = sampler.loss(td, generator=gen)
        optim.zero_grad()
        loss["loss_actor"].backward()
        optim.step()
        schedule.step()
    return sampler


@pytest.fixture(scope="module")
def trained_svgd_well():
    torch.manual_seed(10)
    sampler = SVGDSampler(WELL_Q, action_spec=BOX1, alpha=WELL_ALPHA, observation_dim=1,
                          num_cells=(64, 64), num_particles=64)
    return _train(sampler, WELL_TD, 600, 3e-3, 10)


@pytest.fixture(scope="module")
def trained_svgd_mixture():
    torch.manual_seed(11)
    sampler = SVGDSampler(MIX_Q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(64, 64),
                          num_particles=64)
    return _train(sampler, MIX_TD, 600, 3e-3, 11)


def test_amortized_svgd_double_well(trained_svgd_well):
    with torch.no_grad():
        actions, log_prob = trained_svgd_well.sample(WELL_TD, NUM, generator=torch.Generator().manual_seed(12))
    assert log_prob is None
    check_well(actions, slack=0.06, mmd_ratio=0.15, seed=13)


def test_amortized_svgd_four_mode_mixture(trained_svgd_mixture):
    with torch.no_grad():
        actions, _ = trained_svgd_mixture.sample(MIX_TD, NUM, generator=torch.Generator().manual_seed(14))
    check_mixture(actions, slack=0.06, mmd_ratio=0.25, seed=15)


def test_amortized_svgd_trained_on_an_annealed_temperature_keeps_every_mode_of_a_6d_mixture():
    # Trained at α = 1 throughout, the amortized map collapses onto the closest two of these four
    # modes (benchmarks/RESULTS.md); annealing α from 100 to 1 over the first half of training
    # (annealed SVGD, D'Angelo & Fortuin 2021) lets the repulsion spread the image first. Exact shares
    # (equal weights, box-truncated) are ≈ 0.18–0.23; seven of eight seeds keep every mode above 0.11.
    # benchmarks/sampler_quality.py's mixture_6d: the closest pair of centres 0.59 apart, the others 1.0–1.75
    means = torch.tensor(np.random.default_rng(0).uniform(-0.6, 0.6, size=(4, 6)), dtype=torch.float32)

    def mixture(obs, act):
        return torch.logsumexp(-(act.unsqueeze(-2) - means).square().sum(-1) / (2 * 0.15**2), -1, keepdim=True)

    steps, td = 3000, TensorDict(observation=torch.zeros(32, 1), batch_size=[32])
    torch.manual_seed(0)
    alpha = AnnealedTemperature(alpha_init=100.0, alpha_final=1.0, num_steps=steps // 2)
    sampler = SVGDSampler(analytic_q(mixture), action_spec=Bounded(-1, 1, shape=(6,)), alpha=alpha,
                          observation_dim=1, num_cells=(128, 128))
    optim, gen = torch.optim.Adam(sampler.parameters(), lr=1e-3), torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss = sampler.loss(td, generator=gen)["loss_actor"]
        optim.zero_grad()
        loss.backward()
        optim.step()
        alpha.step()
    assert float(alpha()) == 1.0
    with torch.no_grad():
        actions = sampler.sample(td[:1], NUM, generator=gen)[0][:, 0]
    nearest = (actions.unsqueeze(-2) - means).norm(dim=-1).argmin(-1)
    shares = torch.stack([(nearest == k).float().mean() for k in range(4)])
    assert bool((shares > 0.08).all()), shares


@settings(max_examples=10, deadline=None)
@given(step_size=st.floats(min_value=1e-4, max_value=50.0))
def test_svgd_refine_never_leaves_the_box(step_size):
    spec = Bounded(torch.tensor([-2.0, 0.0]), torch.tensor([0.5, 0.1]), shape=(2,))
    sampler = SVGDSampler(MIX_Q, action_spec=spec, alpha=0.05, observation_dim=1, num_cells=(8,))
    start = spec.rand((16, 1))
    actions = sampler.refine(MIX_TD, start, num_steps=3, step_size=step_size)
    assert bool(torch.isfinite(actions).all())
    assert bool(((actions >= spec.space.low) & (actions <= spec.space.high)).all())


# -- tanh-Gaussian ------------------------------------------------------------------------------------
UNI_MEAN, UNI_STD = torch.tensor([0.3, -0.2]), 0.2
UNI_Q = analytic_q(lambda obs, act: -(act - UNI_MEAN).square().sum(-1, keepdim=True) / (2 * UNI_STD**2))


@pytest.fixture(scope="module")
def trained_gaussian_unimodal():
    torch.manual_seed(16)
    sampler = GaussianSampler(UNI_Q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(64, 64),
                              num_loss_samples=16)
    return _train(sampler, MIX_TD, 400, 3e-3, 16)


def test_gaussian_matches_a_unimodal_target(trained_gaussian_unimodal):
    gen = torch.Generator().manual_seed(17)
    with torch.no_grad():
        actions, _ = trained_gaussian_unimodal.sample(MIX_TD, NUM, generator=gen)
    a = actions[:, 0]
    # Exact: N(μ, 0.2² I) truncated to the box (rejection sampling).
    exact = UNI_MEAN + UNI_STD * torch.randn(3 * NUM, 2, generator=gen)
    exact = exact[(exact.abs() < 1).all(-1)][:NUM]
    uniform = torch.rand(NUM, 2, generator=gen) * 2 - 1
    torch.testing.assert_close(a.mean(0), exact.mean(0), atol=0.03, rtol=0)
    torch.testing.assert_close(a.std(0), exact.std(0), atol=0.03, rtol=0)
    assert mmd2(a, exact, 0.1) < 0.05 * mmd2(uniform, exact, 0.1)


def test_gaussian_on_a_bimodal_target_covers_one_mode():
    # The documented limitation: minimising the reverse KL, a unimodal policy settles on the dominant
    # mode of a clearly bimodal target (a 10-nat barrier at α = 0.1) instead of splitting its mass.
    alpha = 0.1
    td = TensorDict(observation=torch.tensor([[0.9]]), batch_size=[1])
    a, p = well_grid(0.09, alpha)
    exact_share = float(p[a > 0].sum())
    assert 0.7 < exact_share < 0.8
    sampler = GaussianSampler(WELL_Q, action_spec=BOX1, alpha=alpha, observation_dim=1, num_cells=(32, 32),
                              num_loss_samples=16)
    _train(sampler, td, 400, 3e-3, 18, anneal=False)
    with torch.no_grad():
        actions, _ = sampler.sample(td, NUM, generator=torch.Generator().manual_seed(19))
    assert float((actions > 0).float().mean()) > 0.95


def _torch_tanh_normal(loc, scale, low, high):
    base = torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)
    transforms = [
        torch.distributions.TanhTransform(),
        torch.distributions.AffineTransform((low + high) / 2, (high - low) / 2),
    ]
    return torch.distributions.TransformedDistribution(base, transforms)


def test_gaussian_log_prob_is_the_tanh_normal_change_of_variables():
    spec = Bounded(torch.tensor([-2.0, 0.0]), torch.tensor([1.0, 0.5]), shape=(2,))
    torch.manual_seed(20)
    sampler = GaussianSampler(UNI_Q, action_spec=spec, observation_dim=3, num_cells=(16,))
    td = TensorDict(observation=torch.randn(4, 3), batch_size=[4])
    actions, log_prob = sampler.sample(td, 7, generator=torch.Generator().manual_seed(21))
    assert actions.shape == (7, 4, 2) and log_prob.shape == (7, 4)
    loc, scale = sampler.distribution_params(td)
    reference = _torch_tanh_normal(loc.double(), scale.double(), spec.space.low.double(), spec.space.high.double())
    torch.testing.assert_close(log_prob.double(), reference.log_prob(actions.double()), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(sampler.log_prob(td, actions), log_prob, atol=1e-3, rtol=1e-4)


def test_gaussian_log_prob_integrates_to_one_over_the_box():
    torch.manual_seed(22)
    spec = Bounded(-2.0, 1.0, shape=(1,))
    sampler = GaussianSampler(WELL_Q, action_spec=spec, observation_dim=1, num_cells=(16,))
    td = TensorDict(observation=torch.tensor([[-1.0], [0.0], [2.0]]), batch_size=[3])
    # Midpoint rule on a fine grid, in float64 through the same code path.
    sampler.double()
    n = 200_000
    grid = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 3 - 2
    log_p = sampler.log_prob(td.double(), grid.reshape(n, 1, 1).expand(n, 3, 1))
    integral = log_p.exp().sum(0) * (3 / n)
    torch.testing.assert_close(integral, torch.ones(3, dtype=torch.float64), atol=2e-3, rtol=0)
    # 2-D: a product grid.
    spec2 = Bounded(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.5]), shape=(2,))
    sampler2 = GaussianSampler(UNI_Q, action_spec=spec2, observation_dim=1, num_cells=(16,)).double()
    m = 600
    gx = (torch.arange(m, dtype=torch.float64) + 0.5) / m * 2 - 1
    gy = (torch.arange(m, dtype=torch.float64) + 0.5) / m * 0.5
    cells = torch.stack(torch.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 1, 2)
    log_p2 = sampler2.log_prob(MIX_TD.double(), cells)
    torch.testing.assert_close(log_p2.exp().sum() * (2 / m) * (0.5 / m), torch.tensor(1.0, dtype=torch.float64),
                               atol=5e-3, rtol=0)


def test_gaussian_sample_is_reparameterised_and_forward_respects_exploration_type():
    sampler = GaussianSampler(UNI_Q, action_spec=BOX2, observation_dim=1, num_cells=(8,))
    actions, log_prob = sampler.sample(MIX_TD, 3)
    (actions.sum() + log_prob.sum()).backward()
    assert all(p.grad is not None for p in sampler.policy_network.parameters())
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        td = sampler(MIX_TD.clone())
    loc, _ = sampler.distribution_params(MIX_TD)
    torch.testing.assert_close(td["action"], torch.tanh(loc))
    with set_exploration_type(ExplorationType.RANDOM):
        td = sampler(MIX_TD.clone())
    assert td["action"].shape == (1, 2) and td["action_log_prob"].shape == (1,)
    assert not torch.allclose(td["action"], torch.tanh(loc))


# -- ownership, losses, batching ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [GaussianSampler, SVGDSampler])
def test_amortized_sampler_owns_only_its_parameters(cls):
    torch.manual_seed(23)
    q = continuous_qvalue_network(3, 2, num_cells=(16,))
    sampler = cls(q, action_spec=BOX2, alpha=1.0, observation_dim=3, num_cells=(16,))
    q_ids = {id(p) for p in q.parameters()}
    assert q_ids.isdisjoint(id(p) for p in sampler.parameters())
    assert set(sampler.state_dict()).isdisjoint(f"qvalue_network.{k}" for k in q.state_dict())
    td = TensorDict(observation=torch.randn(5, 3), batch_size=[5])
    loss = sampler.loss(td)
    loss["loss_actor"].backward()
    assert all(p.grad is None for p in q.parameters())
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in sampler.policy_network.parameters())


@pytest.mark.filterwarnings("ignore:No target network updater")
def test_gaussian_loss_terms_with_fixed_and_learned_temperature():
    td = TensorDict(observation=torch.zeros(6, 1), batch_size=[6])
    fixed = GaussianSampler(UNI_Q, action_spec=BOX2, alpha=0.3, observation_dim=1, num_cells=(8,)).loss(td)
    assert set(fixed.keys()) == {"loss_actor", "alpha", "entropy"}
    assert all(bool(torch.isfinite(v)) for v in fixed.values())
    assert not fixed["alpha"].requires_grad and not fixed["entropy"].requires_grad
    temperature = AutoTemperature(-2.0, alpha_init=0.3)
    learned = GaussianSampler(UNI_Q, action_spec=BOX2, alpha=temperature, observation_dim=1, num_cells=(8,))
    assert any(p is temperature.log_alpha for p in learned.parameters())  # the sampler owns its α
    loss = learned.loss(td)
    # The sampler reports its entropy; the temperature's loss is the temperature's own.
    assert set(loss.keys()) == {"loss_actor", "alpha", "entropy"}
    torch.testing.assert_close(loss["alpha"], torch.tensor(0.3))
    assert not loss["alpha"].requires_grad and not loss["entropy"].requires_grad
    alpha_loss = temperature.loss(loss["entropy"])
    assert set(alpha_loss.keys()) == {"loss_alpha"}
    # J(α) = log α · (H − H̄), H̄ = −2: its gradient in log α is H − H̄.
    torch.testing.assert_close(alpha_loss["loss_alpha"], math.log(0.3) * (loss["entropy"] + 2.0))
    alpha_loss["loss_alpha"].backward()
    torch.testing.assert_close(temperature.log_alpha.grad, loss["entropy"] + 2.0)
    # Inside a SoftQLoss with an AutoTemperature the loss adds loss_alpha from the actor's entropy.
    torch.manual_seed(26)
    auto = AutoTemperature(-2.0, alpha_init=0.3)
    sac = SoftQLoss(
        continuous_qvalue_network(1, 2, num_cells=(8,)),
        PolicySoftValue(),
        actor=GaussianSampler(action_spec=BOX2, observation_dim=1, num_cells=(8,)),
        alpha=auto,
        num_qvalue_nets=2,
    )
    batch = TensorDict(
        observation=torch.zeros(6, 1),
        action=BOX2.rand((6,)),
        next=TensorDict(observation=torch.ones(6, 1), reward=torch.zeros(6, 1),
                        done=torch.zeros(6, 1, dtype=torch.bool), terminated=torch.zeros(6, 1, dtype=torch.bool),
                        batch_size=[6]),
        batch_size=[6],
    )
    out = sac(batch)
    assert {"loss_qvalue", "loss_actor", "loss_alpha", "alpha", "entropy"} <= set(out.keys())
    torch.testing.assert_close(out["loss_alpha"], math.log(0.3) * (out["entropy"] + 2.0))
    out["loss_alpha"].backward()
    torch.testing.assert_close(auto.log_alpha.grad, out["entropy"] + 2.0)


def test_svgd_loss_terms():
    sampler = SVGDSampler(MIX_Q, action_spec=BOX2, alpha=0.5, observation_dim=1, num_cells=(8,),
                          num_particles=8)
    loss = sampler.loss(TensorDict(observation=torch.zeros(3, 1), batch_size=[3]))
    assert set(loss.keys()) == {"loss_actor", "alpha", "bandwidth"}
    assert all(bool(torch.isfinite(v)) for v in loss.values())
    assert loss["loss_actor"].requires_grad and not loss["bandwidth"].requires_grad



def test_svgd_bandwidth_scale_multiplies_the_median_rule_and_keeps_the_floor():
    # The same particles (same generator seed) under each scale: h = max(scale · rule, floor).
    td = TensorDict(observation=torch.zeros(3, 1), batch_size=[3])
    base = SVGDSampler(MIX_Q, action_spec=BOX2, alpha=0.5, observation_dim=1, num_cells=(8,), num_particles=8)

    def loss_with(**options):
        sampler = copy.deepcopy(base)
        for name, value in options.items():
            setattr(sampler, name, value)
        return sampler.loss(td, generator=torch.Generator().manual_seed(0))

    rule = loss_with()
    assert float(rule["bandwidth"]) > 1e-2  # the floor below does not bind at scale 1
    torch.testing.assert_close(loss_with(bandwidth_scale=0.1)["bandwidth"], 0.1 * rule["bandwidth"])
    torch.testing.assert_close(loss_with(bandwidth_scale=3.0)["bandwidth"], 3.0 * rule["bandwidth"])
    floored = loss_with(bandwidth_scale=1e-6, min_bandwidth=1e-2)["bandwidth"]
    torch.testing.assert_close(floored, torch.tensor(1e-2))
    # Scale 1 is the rule as published: the default, and the same loss.
    assert base.bandwidth_scale == 1.0
    torch.testing.assert_close(loss_with(bandwidth_scale=1.0)["loss_actor"], rule["loss_actor"])
    with pytest.raises(ValueError, match="bandwidth_scale"):
        SVGDSampler(MIX_Q, action_spec=BOX2, observation_dim=1, bandwidth_scale=0.0)

def test_svgd_with_several_bandwidth_scales_uses_the_mean_of_their_kernels():
    # Multiple-kernel SVGD with equal weights: κ = mean_c κ_{h_c}, h_c = max(c · rule, floor). The
    # direction is linear in κ, so with the same particles (same generator seed) the loss, its
    # gradient and a refine step are the means of those at each scale, the floor applied per scale.
    td = TensorDict(observation=torch.zeros(3, 1), batch_size=[3])
    base = SVGDSampler(MIX_Q, action_spec=BOX2, alpha=0.5, observation_dim=1, num_cells=(8,), num_particles=8,
                       min_bandwidth=1e-2)

    def with_scale(scale):
        sampler = copy.deepcopy(base)
        sampler.bandwidth_scale = scale
        loss = sampler.loss(td, generator=torch.Generator().manual_seed(0))
        grads = torch.autograd.grad(loss["loss_actor"], list(sampler.parameters()))
        start = torch.tensor([[0.3, -0.2], [-0.5, 0.4], [0.1, 0.6], [-0.7, -0.1]]).unsqueeze(1).expand(4, 3, 2)
        moved = sampler.unsquash(sampler.refine(td, start, num_steps=1, step_size=0.05)) - sampler.unsquash(start)
        return loss, grads, moved

    for scales in ((1.0, 0.1), (1e-6, 1.0)):  # 1e-6: that kernel's bandwidth is the floor
        both, grads, moved = with_scale(scales)
        (first, grads_a, moved_a), (second, grads_b, moved_b) = with_scale(scales[0]), with_scale(scales[1])
        torch.testing.assert_close(both["loss_actor"], (first["loss_actor"] + second["loss_actor"]) / 2)
        for g, a, b in zip(grads, grads_a, grads_b, strict=True):
            torch.testing.assert_close(g, (a + b) / 2)
        torch.testing.assert_close(moved, (moved_a + moved_b) / 2, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(both["bandwidth"], first["bandwidth"])  # the first scale's
    assert float(with_scale((1e-6, 1.0))[0]["bandwidth"]) == pytest.approx(1e-2)
    # A sequence of one is that factor; the constructor names the offending entry.
    assert SVGDSampler(MIX_Q, action_spec=BOX2, observation_dim=1, bandwidth_scale=[1, 0.1]).bandwidth_scale == (1.0, 0.1)
    assert SVGDSampler(MIX_Q, action_spec=BOX2, observation_dim=1, bandwidth_scale=[0.3]).bandwidth_scale == 0.3
    with pytest.raises(ValueError, match=r"bandwidth_scale\[1\] must be a finite number > 0"):
        SVGDSampler(MIX_Q, action_spec=BOX2, observation_dim=1, bandwidth_scale=[1.0, 0.0])
    with pytest.raises(ValueError, match="bandwidth_scale must be a positive factor or a non-empty sequence"):
        SVGDSampler(MIX_Q, action_spec=BOX2, observation_dim=1, bandwidth_scale=[])
    with pytest.raises(ValueError, match="bandwidth_scale must be a number"):
        SVGDSampler(MIX_Q, action_spec=BOX2, observation_dim=1, bandwidth_scale="wide")


def test_annealed_svgd_trains_at_the_temperature_times_a_log_linear_factor_then_at_the_temperature():
    # anneal_from=A over T updates: the loss after t loop steps is the loss of the same network trained
    # at α · A^(1 − t/T) (exactly, same particles), and at α from t = T on.
    td = TensorDict(observation=torch.zeros(3, 1), batch_size=[3])
    alpha, factor, steps = 0.5, 100.0, 4
    annealed = SVGDSampler(MIX_Q, action_spec=BOX2, alpha=alpha, observation_dim=1, num_cells=(8,), num_particles=8,
                           anneal_from=factor, anneal_steps=steps)

    def loss_at(sampler):
        return sampler.loss(td, generator=torch.Generator().manual_seed(0))

    def plain_at(temperature):
        plain = SVGDSampler(MIX_Q, action_spec=BOX2, alpha=temperature, observation_dim=1, num_cells=(8,), num_particles=8)
        plain.policy_network.load_state_dict(annealed.policy_network.state_dict())
        return loss_at(plain)

    for t in range(steps + 2):
        expected = plain_at(alpha * factor ** (1 - min(t, steps) / steps))
        got = loss_at(annealed)
        torch.testing.assert_close(got["loss_actor"], expected["loss_actor"])
        torch.testing.assert_close(got["alpha"], expected["alpha"])
        annealed.anneal.step()
    # the factor is a schedule the training loop finds and steps, next to an annealed α, each once
    loss = SoftQLoss(continuous_qvalue_network(1, 2, num_cells=(8,)), UniformSoftValue(action_spec=BOX2, num_samples=4),
                     actor=SVGDSampler(action_spec=BOX2, observation_dim=1, num_cells=(8,), num_particles=8,
                                       anneal_from=10.0, anneal_steps=5),
                     alpha=AnnealedTemperature(alpha_init=1.0, alpha_final=0.1, num_steps=5))
    assert scheduled_temperatures(loss) == [loss.temperature, loss.actor.anneal]
    assert scheduled_temperatures(SoftQLoss(continuous_qvalue_network(1, 2, num_cells=(8,)),
                                            UniformSoftValue(action_spec=BOX2, num_samples=4), alpha=1.0)) == []
    # no annealing by default; bad schedules are refused, naming the argument
    assert SVGDSampler(action_spec=BOX2, observation_dim=1).anneal is None
    for options, match in (({"anneal_from": 0.5, "anneal_steps": 5}, "anneal_from"),
                           ({"anneal_from": 10.0}, "anneal_steps"), ({"anneal_steps": -1}, "anneal_steps")):
        with pytest.raises(ValueError, match=match):
            SVGDSampler(action_spec=BOX2, observation_dim=1, **options)


class _CountingQ(TensorDictModule):
    """The analytic mixture Q, recording the batch size of every call."""

    def __init__(self):
        super().__init__(_mixture, in_keys=["observation", "action"], out_keys=["state_action_value"])
        self.calls = []

    def forward(self, tensordict, *args, **kwargs):
        self.calls.append(tuple(tensordict.batch_size))
        return super().forward(tensordict, *args, **kwargs)


def test_q_is_evaluated_once_per_batch_of_particles():
    td = TensorDict(observation=torch.zeros(3, 4, 1), batch_size=[3, 4])
    q = _CountingQ()
    SVGDSampler(q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(8,), num_particles=10).loss(td)
    assert q.calls == [(5, 3, 4)]  # the 5 fixed particles of every state, in one call
    q.calls.clear()
    LangevinSampler(q, action_spec=BOX2, alpha=1.0, num_steps=4).sample(td, 7)
    assert q.calls == [(7, 3, 4)] * 5
    q.calls.clear()
    GaussianSampler(q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(8,), num_loss_samples=2).loss(td)
    assert q.calls == [(2, 3, 4)]


def test_custom_keys():
    q = TensorDictModule(lambda obs, act: -(act - 0.5).square().sum(-1, keepdim=True) + obs[..., :1],
                         in_keys=["obs", "act"], out_keys=["q"])
    td = TensorDict(obs=torch.zeros(2, 1), batch_size=[2])
    for sampler in (
        GaussianSampler(q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(8,)),
        SVGDSampler(q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(8,), num_particles=4),
        LangevinSampler(q, action_spec=BOX2, alpha=1.0, num_steps=2),
    ):
        sampler.set_keys(observation="obs", action="act", action_log_prob="lp", state_action_value="q")
        out = sampler(td.clone())
        assert out["act"].shape == (2, 2)
        assert sampler.has_loss == (not isinstance(sampler, LangevinSampler))
        if sampler.has_loss:
            assert bool(torch.isfinite(sampler.loss(td)["loss_actor"]))


def test_target_score_in_u_space_is_the_closed_form():
    # ∇_u [Q(s, a(u))/α + log(1 − tanh² u)] = Q'(a) a'(u)/α − 2 tanh u, with a'(u) = (1 − tanh² u)(high − low)/2.
    spec = Bounded(-2.0, 1.0, shape=(1,))
    sampler = LangevinSampler(WELL_Q, action_spec=spec, alpha=0.7)
    u = torch.linspace(-3, 3, 13).reshape(13, 1, 1).expand(13, 2, 1)
    log_p, score = sampler._log_target(WELL_TD, u, torch.tensor(0.7), with_score=True)
    a = sampler.squash(u)
    tilt = WELL_TD["observation"] / 10
    dq_da = -32 * a * (a.square() - 0.36) + tilt
    da_du = (1 - torch.tanh(u).square()) * 1.5
    torch.testing.assert_close(score, dq_da * da_du / 0.7 - 2 * torch.tanh(u), atol=1e-4, rtol=1e-4)
    expected = _well(WELL_TD["observation"], a).squeeze(-1) / 0.7 + (da_du.squeeze(-1)).log()
    torch.testing.assert_close(log_p, expected, atol=1e-4, rtol=1e-4)


def test_svgd_deterministic_forward_uses_zero_noise():
    sampler = SVGDSampler(WELL_Q, action_spec=BOX1, observation_dim=1, num_cells=(8,))
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        first = sampler(WELL_TD.clone())["action"]
        second = sampler(WELL_TD.clone())["action"]
    torch.testing.assert_close(first, second)
    obs = WELL_TD["observation"]
    torch.testing.assert_close(first, torch.tanh(sampler.policy_network(obs, torch.zeros(2, 1))))
    with set_exploration_type(ExplorationType.RANDOM):
        assert not torch.allclose(sampler(WELL_TD.clone())["action"], first)


def _member_q(net, params, td, actions):
    """``Q`` of one ensemble member by hand: ``net`` called with ``params`` (``torch.func.functional_call``)."""
    named = {k: v.detach() for k, v in params.flatten_keys(".").items()}
    inputs = td.expand(actions.shape[0], *td.batch_size).clone().set("action", actions)
    return torch.func.functional_call(net, named, (inputs,))["state_action_value"].squeeze(-1)


@pytest.mark.parametrize("cls", [GaussianSampler, SVGDSampler, LangevinSampler])
def test_ensemble_parameters_give_the_pessimistic_q(cls):
    torch.manual_seed(24)
    qnet = continuous_qvalue_network(1, 2, num_cells=(16,))
    sampler = _build(cls, None, BOX2)  # built without Q and α: the loss binds its own
    loss = SoftQLoss(qnet, UniformSoftValue(action_spec=BOX2), actor=sampler, alpha=0.5, num_qvalue_nets=2)
    assert loss.actor is sampler and sampler.qvalue_network is qnet
    assert sampler.temperature is loss.temperature and float(sampler.alpha) == 0.5
    params = loss.qvalue_network_params
    assert tuple(params.batch_size) == (2,)
    td = TensorDict(observation=torch.randn(3, 1), batch_size=[3])
    actions = BOX2.rand((4, 3))
    reference = continuous_qvalue_network(1, 2, num_cells=(16,))  # same architecture, own weights unused
    members = [_member_q(reference, params[i], td, actions) for i in range(2)]
    assert not torch.allclose(members[0], members[1])  # independently initialised members
    torch.testing.assert_close(sampler._qvalue(td, actions), torch.minimum(*members))
    # The sampler references the loss's parameters: an in-place step is seen at once. Shifting the
    # output bias of member 0 to equalise the means makes each member the minimum somewhere.
    out_bias = [k for k in params.keys(True, True) if k[-1] == "bias"][-1]
    with torch.no_grad():
        params[out_bias][0] += (members[1] - members[0]).mean()
    members = [_member_q(reference, params[i], td, actions) for i in range(2)]
    expected = torch.minimum(*members)
    assert not torch.equal(expected, members[0]) and not torch.equal(expected, members[1])
    torch.testing.assert_close(sampler._qvalue(td, actions), expected)
    if cls is not LangevinSampler:
        sampler.loss(td)["loss_actor"].backward()
        assert all(p.grad is None for p in params.values(True, True))
        assert any(p.grad is not None for p in sampler.policy_network.parameters())
    # What replaced qvalue_params: the loss refuses a part built on another Q network, or with
    # another temperature.
    with pytest.raises(ValueError, match="another Q network"):
        SoftQLoss(qnet, UniformSoftValue(action_spec=BOX2), alpha=0.5, num_qvalue_nets=2,
                  actor=_build(cls, continuous_qvalue_network(1, 2, num_cells=(16,)), BOX2))
    with pytest.raises(ValueError, match="two temperatures"):
        SoftQLoss(qnet, UniformSoftValue(action_spec=BOX2), alpha=0.5, num_qvalue_nets=2,
                  actor=_build(cls, None, BOX2, alpha=0.3))


@pytest.mark.parametrize("cls", [GaussianSampler, SVGDSampler, LangevinSampler])
def test_bound_to_a_stacked_qfunction_the_sampler_takes_the_min(cls):
    # The low-level binding a loss performs: QFunction(net, stacked [N, ...] params).
    torch.manual_seed(27)
    q = continuous_qvalue_network(1, 2, num_cells=(16,))
    members = [continuous_qvalue_network(1, 2, num_cells=(16,)) for _ in range(2)]
    stacked = TensorDict.stack([TensorDict.from_module(m) for m in members]).detach().requires_grad_(True)
    sampler = _build(cls, q, BOX2, alpha=1.0).bind(QFunction(q, stacked, detach=True), None)
    assert sampler.qvalue.num_members == 2 and float(sampler.alpha) == 1.0  # bind(..., None) keeps α
    td = TensorDict(observation=torch.randn(3, 1), batch_size=[3])
    actions = BOX2.rand((4, 3))
    values = sampler._qvalue(td, actions)
    expected = torch.minimum(*[m(td.expand(4, 3).clone().set("action", actions))["state_action_value"]
                               for m in members]).squeeze(-1)
    torch.testing.assert_close(values, expected)
    if cls is not LangevinSampler:
        sampler.loss(td)["loss_actor"].backward()
        assert all(p.grad is None for p in stacked.values(True, True))


def test_langevin_warm_started_by_an_amortized_sampler_trains_it():
    torch.manual_seed(25)
    gaussian = GaussianSampler(UNI_Q, action_spec=BOX2, alpha=0.3, observation_dim=1, num_cells=(8,),
                               num_loss_samples=4)
    sampler = LangevinSampler(UNI_Q, action_spec=BOX2, alpha=0.3, num_steps=2, init=gaussian)
    assert gaussian.has_loss and sampler.has_loss
    td = TensorDict(observation=torch.randn(5, 1), batch_size=[5])
    ours = sampler.loss(td, generator=torch.Generator().manual_seed(26))
    theirs = gaussian.loss(td, generator=torch.Generator().manual_seed(26))
    assert set(ours.keys()) == set(theirs.keys()) == {"loss_actor", "alpha", "entropy"}
    for key in sorted(theirs.keys()):
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)
    ours["loss_actor"].backward()
    assert all(p.grad is not None for p in gaussian.policy_network.parameters())
    # Nothing to train without an amortized warm start.
    for plain in (LangevinSampler(UNI_Q, action_spec=BOX2, alpha=0.3),
                  LangevinSampler(UNI_Q, action_spec=BOX2, alpha=0.3, init=UniformSampler(action_spec=BOX2))):
        assert not plain.has_loss
        with pytest.raises(NotImplementedError, match="trains nothing"):
            plain.loss(td)
    assert SVGDSampler(UNI_Q, action_spec=BOX2, alpha=0.3, observation_dim=1, num_cells=(8,)).has_loss
