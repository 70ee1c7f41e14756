"""SteinSampler (S2AC's policy) against exact ground truth.

- The closed-form Jacobian and trace of the Stein direction against autograd.
- The reported log-density against a brute-force change of variables: the Jacobian of the whole
  ``L``-step map by central finite differences, in 1-D and 2-D; the first-order estimate's error
  shrinking as ``ε²``; ``L = 0`` is the Gaussian's density.
- The density it reports at its own samples against the samples, through the unbiased cell-volume
  estimator ``mean 1{a ∈ C}/π̂(a) = |C|`` (1-D and 2-D), exact log-determinant and first-order.
- Acting: the action written is the flow's action point and its log-density the one reported
  (recomputed by hand from the same noise).
- The API, a TorchRL collector, SAC's composition (each loss term reaches only its own parameters,
  no host reads), and a trained sampler that fills every mode of the four-mode mixture.
"""

from __future__ import annotations

import pytest
import torch
from density_sampler_checks import (
    BOX,
    OBS,
    FixedGaussian,
    check_api,
    check_drives_a_collector,
    check_ownership,
    width_estimates,
)
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from test_samplers_continuous import BOX1, BOX2, MIX_Q, MIX_TD, WELL_ALPHA, WELL_Q, WELL_TD, check_mixture, mmd2
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components import SteinSampler
from maxent_components.functional import (
    median_bandwidth,
    normal_log_density,
    squared_distances,
    svgd_direction,
    svgd_direction_jacobian,
    svgd_direction_trace,
    svgd_step_log_det,
)
from maxent_components.modules import continuous_qvalue_network, tanh_normal_actor_network
from maxent_components.samplers import GaussianSampler

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def stein(q, spec, alpha, loc, scale, **kwargs) -> SteinSampler:
    """A SteinSampler in float64 whose ``q_0`` is ``N(loc, diag scale²)`` at every state."""
    return SteinSampler(q, FixedGaussian(loc, scale), action_spec=spec, alpha=alpha, **kwargs).double()


# -- the functional pieces --------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_closed_form_jacobian_and_trace_are_autograds(float64, dim):
    gen = torch.Generator().manual_seed(dim)
    centers, scores = torch.randn(2, 6, dim, generator=gen), torch.randn(2, 6, dim, generator=gen)
    points, h = torch.randn(2, 4, dim, generator=gen), torch.tensor([0.7, 1.9])
    jac = svgd_direction_jacobian(points, scores, centers, h)
    for b in range(2):
        for k in range(4):
            expected = torch.autograd.functional.jacobian(
                lambda x, b=b: svgd_direction(x.unsqueeze(0), scores[b], centers[b], h[b])[0], points[b, k]
            )
            torch.testing.assert_close(jac[b, k], expected)
    torch.testing.assert_close(svgd_direction_trace(points, scores, centers, h), jac.diagonal(dim1=-2, dim2=-1).sum(-1))
    eye = torch.eye(dim)
    exact = svgd_step_log_det(points, scores, centers, h, 0.05, method="exact")
    torch.testing.assert_close(exact, torch.logdet(eye + 0.05 * jac))
    with pytest.raises(ValueError, match="method"):
        svgd_step_log_det(points, scores, centers, h, 0.05, method="second_order")


# -- the change of variables against brute force -------------------------------------------------------
def _brute_force_log_q(sampler, td, particles, points, log_q0, delta=1e-5):
    """``log q_0(x⁰) − log|det ∂x^L/∂x⁰|`` with the Jacobian of the whole flow by central differences."""
    dim = points.shape[-1]
    columns = []
    for d in range(dim):
        step = torch.zeros(dim)
        step[d] = delta
        plus, _, _ = sampler.flow(td, particles, points + step, log_q0)
        minus, _, _ = sampler.flow(td, particles, points - step, log_q0)
        columns.append((plus - minus) / (2 * delta))
    jac = torch.stack(columns, -1)  # [n, *B, D, D]: column d is ∂x^L/∂x⁰_d
    return log_q0 - torch.linalg.slogdet(jac).logabsdet


def _setup(target: str, step_size: float, num_steps: int, log_det: str):
    if target == "well":  # 1-D, the two tilted states
        sampler = stein(WELL_Q, BOX1, WELL_ALPHA, [0.1], [0.8], num_particles=8, num_steps=num_steps,
                        step_size=step_size, log_det=log_det)
        td = WELL_TD.double()
    else:  # 2-D, the four-mode mixture
        sampler = stein(MIX_Q, BOX2, 1.0, [0.0, 0.1], [0.9, 0.7], num_particles=8, num_steps=num_steps,
                        step_size=step_size, log_det=log_det)
        td = MIX_TD.double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        loc, scale = sampler.distribution_params(td)
        particles = loc + scale * torch.randn(8, *loc.shape, generator=gen)
        points = loc + scale * torch.randn(50, *loc.shape, generator=gen)
        log_q0 = normal_log_density(points, loc, scale).sum(-1)
    return sampler, td, particles, points, log_q0


@pytest.mark.parametrize("target", ["well", "mixture"])
def test_log_density_is_the_brute_force_change_of_variables(float64, target):
    sampler, td, particles, points, log_q0 = _setup(target, 0.05, 4, "exact")
    with torch.no_grad():
        _, exact, h = sampler.flow(td, particles, points, log_q0)
        brute = _brute_force_log_q(sampler, td, particles, points, log_q0)
    assert bool((h > 0).all())
    torch.testing.assert_close(exact, brute, atol=1e-6, rtol=0)
    # The flow did change the density: the steps are not negligible.
    assert float((exact - log_q0).abs().mean()) > 0.05
    # S2AC's first-order estimate is off by O(ε²) per step: halving ε (and the distance, with twice
    # the steps) divides the error by about 2, halving ε alone by about 4.
    errors = []
    for eps in (0.02, 0.01):
        sampler, td, particles, points, log_q0 = _setup(target, eps, 4, "first_order")
        with torch.no_grad():
            _, first, _ = sampler.flow(td, particles, points, log_q0)
            errors.append(float((first - _brute_force_log_q(sampler, td, particles, points, log_q0)).abs().mean()))
    assert errors[1] > 0
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


def test_without_steps_the_density_is_the_gaussians(float64):
    torch.manual_seed(0)
    network = tanh_normal_actor_network(1, 2, num_cells=(8,)).double()
    spec = Bounded(-2.0, 1.0, shape=(2,))
    sampler = SteinSampler(MIX_Q, network, action_spec=spec, alpha=1.0, num_steps=0).double()
    gaussian = GaussianSampler(MIX_Q, network, action_spec=spec, alpha=1.0).double()
    td = TensorDict(observation=torch.randn(3, 1), batch_size=[3])
    actions, log_prob = sampler.sample(td, 64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(log_prob, gaussian.log_prob(td, actions))
    # L = 0 reads neither Q nor α: a sampler built without them acts.
    bare = SteinSampler(policy_network=network, action_spec=spec, num_steps=0).double()
    assert bare.sample(td, 2)[0].shape == (2, 3, 2)


# -- the density at its own samples --------------------------------------------------------------------
@pytest.mark.parametrize("target", ["well", "mixture"])
def test_reported_density_matches_its_samples(float64, target):
    """``mean 1{a ∈ C}/π̂(a)`` over the samples is every cell's volume: exactly with the exact
    log-determinant (up to Monte-Carlo error), and how far off the first-order estimate is."""
    n = 200_000
    if target == "well":
        td, edges = WELL_TD.double()[1:], torch.linspace(-0.9, 0.9, 10)
        kwargs = dict(q=WELL_Q, spec=BOX1, alpha=WELL_ALPHA, loc=[0.1], scale=[0.8])
    else:
        td, edges = MIX_TD.double(), torch.linspace(-0.9, 0.9, 5)
        kwargs = dict(q=MIX_Q, spec=BOX2, alpha=1.0, loc=[0.0, 0.1], scale=[0.9, 0.7])
    volume = float(edges[1] - edges[0]) ** (1 if target == "well" else 2)
    deviations = {}  # the largest |ratio − 1| over the cells, per method
    for log_det in ("exact", "first_order"):
        sampler = stein(**kwargs, num_particles=10, num_steps=3, step_size=0.1, log_det=log_det)
        # One call, one particle set: all n actions are draws of the same law, whose density is reported.
        with torch.no_grad():
            actions, log_prob = sampler.sample(td, n, generator=torch.Generator().manual_seed(2))
        widths, errors, counts = width_estimates(actions[:, 0], log_prob[:, 0], edges)
        used = counts > 2000
        assert int(used.sum()) >= (6 if target == "well" else 9)
        ratio = widths[used] / volume
        deviations[log_det] = float((ratio - 1).abs().max())
        if log_det == "exact":  # every cell within 4 standard errors of its volume
            assert bool(((ratio - 1).abs() < 4 * errors[used] / volume).all()), (ratio, errors[used] / volume)
    # The default S2AC estimate ignores the O(ε²) terms: a few per cent here (ε = 0.1, L = 3).
    assert deviations["first_order"] < 0.15, deviations
    assert deviations["exact"] < deviations["first_order"], deviations


def test_the_particles_themselves_do_not_have_the_density_of_the_change_of_variables(float64):
    """Why the action is a point carried by the particles' field rather than a particle: applied to the
    particles, the same formula (S2AC's, with every particle in the field) overstates their entropy."""
    gen = torch.Generator().manual_seed(3)
    groups, m, eps = 20_000, 10, 0.1
    u = torch.randn(groups, m, 1, generator=gen) * 0.8 + 0.1
    log_q = normal_log_density(u, torch.tensor(0.1), torch.tensor(0.8)).sum(-1)
    q = TensorDictModule(lambda s, a: -8.0 * (a.square() - 0.36).square(), in_keys=["observation", "action"],
                         out_keys=["state_action_value"])
    sampler = stein(q, BOX1, WELL_ALPHA, [0.0], [1.0])
    td = TensorDict(observation=torch.zeros(groups, 1), batch_size=[groups])
    for _ in range(3):
        score = sampler._scores(td, u.movedim(1, 0), torch.tensor(WELL_ALPHA), sampler._q()).movedim(0, 1)
        h = median_bandwidth(squared_distances(u, u), formula="paper", num_particles=m)
        log_q = log_q - svgd_step_log_det(u, score, u, h, eps, method="exact")
        u = u + eps * svgd_direction(u, score, u, h)
    reported = float(-(log_q - sampler.log_abs_det_jacobian(u)).mean())
    a = sampler.squash(u.reshape(-1, 1))[:, 0]
    p = torch.histc(a, 200, -1, 1) / len(a)
    histogram = float(-(p[p > 0] * (p[p > 0] / 0.01).log()).sum())
    assert reported - histogram > 0.1, (reported, histogram)


# -- acting ------------------------------------------------------------------------------------------
def test_the_action_written_is_the_action_point_with_its_reported_density(float64):
    """``forward`` draws ``M`` particles and one action point from ``q_0`` (in that order, one normal
    draw), carries the point by the particles' field and writes it with its log-density; redone here
    by hand, with the determinant of the composite map by autograd."""
    m, steps, eps = 6, 3, 0.08
    sampler = stein(MIX_Q, BOX2, 1.0, [0.1, -0.2], [0.6, 0.9], num_particles=m, num_steps=steps,
                    step_size=eps, log_det="exact")
    td = TensorDict(observation=torch.zeros(2, 1), batch_size=[2])
    torch.manual_seed(4)
    with set_exploration_type(ExplorationType.RANDOM):
        out = sampler(td.clone())
    torch.manual_seed(4)
    noise = torch.randn(m + 1, 2, 2)
    loc, scale = torch.tensor([0.1, -0.2]), torch.tensor([0.6, 0.9])
    particles, point = loc + scale * noise[:m], loc + scale * noise[m]
    fields = []
    for _ in range(steps):  # the particles' own SVGD steps, in the sampler's space u
        with torch.enable_grad():
            y = particles.detach().requires_grad_(True)
            log_p = MIX_Q.module(None, sampler.squash(y)).squeeze(-1) + sampler.log_abs_det_jacobian(y)
            score = torch.autograd.grad(log_p.sum(), y)[0]
        ys, ss = particles.movedim(0, 1), score.movedim(0, 1)
        h = median_bandwidth(squared_distances(ys, ys), formula="paper", num_particles=m)
        fields.append((ys, ss, h))
        particles = particles + eps * svgd_direction(ys, ss, ys, h).movedim(1, 0)

    def carry(x):  # one state's point through the frozen maps
        for ys, ss, h in fields:
            x = x + eps * svgd_direction(x.reshape(2, 1, 2), ss, ys, h).reshape(2, 2)
        return x

    final = carry(point)
    jac = torch.autograd.functional.jacobian(lambda x: carry(x).sum(0), point)  # [2, 2, 2]: D × states × D
    log_q = (normal_log_density(point, loc, scale).sum(-1)
             - torch.linalg.slogdet(jac.movedim(1, 0)).logabsdet - sampler.log_abs_det_jacobian(final))
    torch.testing.assert_close(out["action"], sampler.squash(final))
    torch.testing.assert_close(out["action_log_prob"], log_q)
    # sample(td, 1) under the same seed is the same draw
    torch.manual_seed(4)
    actions, log_prob = sampler.sample(td, 1)
    torch.testing.assert_close(actions[0], out["action"], rtol=0, atol=0)
    torch.testing.assert_close(log_prob[0], out["action_log_prob"], rtol=0, atol=0)


# -- API, collector, SAC's composition -------------------------------------------------------------------
def _actor(qnet=None, **kwargs):
    options = {"observation_dim": OBS, "num_cells": (16,), "num_particles": 4, "num_steps": 2, **kwargs}
    return SteinSampler(qnet, action_spec=BOX, **options)


def test_sampler_api():
    torch.manual_seed(5)
    q = continuous_qvalue_network(OBS, 2, num_cells=[16])
    sampler = _actor(q, alpha=0.5)
    check_api(sampler, TensorDict(observation=torch.randn(4, OBS), batch_size=[4]))
    check_api(sampler, TensorDict(observation=torch.randn(2, 3, OBS), batch_size=[2, 3]))
    loss = sampler.loss(TensorDict(observation=torch.randn(4, OBS), batch_size=[4]))
    assert set(loss.keys()) == {"loss_actor", "alpha", "entropy", "bandwidth"}
    assert loss["loss_actor"].requires_grad and not loss["entropy"].requires_grad
    assert float(loss["bandwidth"]) > 0
    loss["loss_actor"].backward()
    assert all(p.grad is None for p in q.parameters())
    assert all(p.grad is not None for p in sampler.policy_network.parameters())


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_particles": 1}, "num_particles"), ({"num_steps": -1}, "num_steps"), ({"step_size": 0.0}, "step_size"),
     ({"bandwidth": "mean"}, "bandwidth"), ({"bandwidth_scale": -1.0}, "bandwidth_scale"),
     ({"min_bandwidth": 0.0}, "min_bandwidth"), ({"log_det": "second_order"}, "log_det"),
     ({"num_loss_samples": 0}, "num_loss_samples")],
)
def test_bad_hyperparameters_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _actor(**kwargs)


def test_drives_a_torchrl_collector():
    check_drives_a_collector(lambda q, spec: SteinSampler(q, action_spec=spec, alpha=0.5, observation_dim=3,
                                                          num_cells=(16,), num_particles=4, num_steps=2))


@pytest.mark.parametrize("log_det", ["first_order", "exact"])
def test_in_sac_each_loss_term_reaches_only_its_own_parameters(log_det):
    check_ownership(lambda: _actor(log_det=log_det))


def test_q_is_evaluated_once_per_step_on_every_particle_of_every_state():
    calls = []

    def counting(obs, act):
        calls.append(tuple(act.shape))
        return -(act - 0.5).square().sum(-1, keepdim=True)

    q = TensorDictModule(counting, in_keys=["observation", "action"], out_keys=["state_action_value"])
    sampler = SteinSampler(q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(8,), num_particles=5,
                           num_steps=3, num_loss_samples=2)
    sampler.loss(TensorDict(observation=torch.zeros(3, 4, 1), batch_size=[3, 4]))
    assert calls == [(5, 3, 4, 2)] * 3 + [(2, 3, 4, 2)]  # three steps' particles, then the actions


# -- learning -----------------------------------------------------------------------------------------
SQUARE_MEANS = torch.tensor([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])


def _square(obs, act):
    """Four equal modes ``N(μ_k, 0.25² I)`` at the corners of the square ``(±0.5, ±0.5)``."""
    d2 = (act.unsqueeze(-2) - SQUARE_MEANS.to(act.dtype)).square().sum(-1)
    return torch.logsumexp(-d2 / (2 * 0.25**2), -1, keepdim=True)


def _square_samples(n: int, gen: torch.Generator, cells: int = 401) -> torch.Tensor:
    """Exact samples of ``exp(_square)`` on ``[−1, 1]²``: grid cells drawn with their probabilities, jittered."""
    g = (torch.arange(cells, dtype=torch.float64) + 0.5) / cells * 2 - 1
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    index = torch.multinomial(_square(None, grid).squeeze(-1).softmax(0), n, replacement=True, generator=gen)
    return (grid[index] + (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * (2 / cells)).float()


def _train(sampler, steps: int, gen: torch.Generator):
    optim = torch.optim.Adam(sampler.parameters(), lr=3e-3)
    td = TensorDict(observation=torch.zeros(8, 1), batch_size=[8])
    for _ in range(steps):
        loss = sampler.loss(td, generator=gen)["loss_actor"]
        optim.zero_grad()
        loss.backward()
        optim.step()
    # Each state draws its own particles: 400 states × 5 actions are draws of the policy's marginal law.
    with torch.no_grad():
        actions, log_prob = sampler.sample(TensorDict(observation=torch.zeros(400, 1), batch_size=[400]), 5,
                                           generator=gen)
    return actions.reshape(-1, 2), log_prob.reshape(-1)


def test_trained_sampler_gives_every_mode_of_the_four_mode_mixture_its_share():
    """Trained on its own loss (SAC's actor loss with its density, α = 1), the sampler gives each mode of
    ``MIX_Q`` (weights 0.4, 0.3, 0.2, 0.1, width 0.25) its share, and its samples are near exact ones
    (the checks and tolerances of the amortized SVGD sampler's test, with a looser MMD bar)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    sampler = SteinSampler(MIX_Q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(64, 64), num_particles=32,
                           num_steps=10, step_size=0.05, log_det="exact", num_loss_samples=16)
    actions, log_prob = _train(sampler, 400, gen)
    check_mixture(actions.unsqueeze(1), slack=0.06, mmd_ratio=0.35, seed=1)
    assert bool(torch.isfinite(log_prob).all())


def test_trained_sampler_is_nearer_the_four_mode_square_than_sacs_gaussian():
    """On four equal modes the sampler puts a quarter of its actions in each quadrant, and its samples are
    nearer exact ones than those of SAC's Gaussian trained alike (which covers the square with one
    broad bump: it has the shares too, not the modes)."""
    torch.manual_seed(2)
    gen = torch.Generator().manual_seed(2)
    q = TensorDictModule(_square, in_keys=["observation", "action"], out_keys=["state_action_value"])
    sampler = SteinSampler(q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(64, 64), num_particles=32,
                           num_steps=10, step_size=0.05, log_det="exact", num_loss_samples=16)
    actions, _ = _train(sampler, 400, gen)
    right, up = actions[:, 0] > 0, actions[:, 1] > 0
    shares = [float(s.float().mean()) for s in (right & up, ~right & up, ~right & ~up, right & ~up)]
    assert all(abs(s - 0.25) < 0.04 for s in shares), shares
    gaussian, _ = _train(GaussianSampler(q, action_spec=BOX2, alpha=1.0, observation_dim=1, num_cells=(64, 64),
                                         num_loss_samples=16), 400, gen)
    exact = _square_samples(2000, gen)
    ours, theirs = mmd2(actions, exact, 0.2), mmd2(gaussian, exact, 0.2)
    assert ours < 0.8 * theirs, (ours, theirs)
