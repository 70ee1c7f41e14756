"""Pure pieces of the continuous samplers: RBF kernel, median bandwidths, SVGD direction, tanh map, Langevin/MALA."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from maxent_components.checks import set_data_checks
from maxent_components.functional import (
    langevin_proposal_log_prob,
    langevin_step,
    mala_log_acceptance,
    median_bandwidth,
    rbf_kernel,
    squared_distances,
    svgd_direction,
    tanh_log_abs_det_jacobian,
    tanh_squash,
    tanh_unsquash,
)

floats = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, width=32)


# -- kernel ----------------------------------------------------------------------------------------
def test_rbf_kernel_hand_values():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([[0.0, 2.0]])
    k = rbf_kernel(x, y, 2.0)
    assert k.shape == (2, 1)
    torch.testing.assert_close(k, torch.tensor([[math.exp(-4 / 2)], [math.exp(-5 / 2)]]))


def test_rbf_kernel_batched_bandwidth_per_set():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4, 2, generator=gen), torch.randn(3, 5, 2, generator=gen)
    h = torch.tensor([0.5, 1.0, 2.0])
    k = rbf_kernel(x, y, h)
    for b in range(3):
        torch.testing.assert_close(k[b], torch.exp(-torch.cdist(x[b], y[b]).square() / h[b]))


def test_squared_distances_zero_diagonal_and_shape_errors():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1)) * 1e3
    assert bool((squared_distances(x, x).diagonal() == 0).all())
    with pytest.raises(ValueError, match="same D"):
        squared_distances(torch.zeros(3, 2), torch.zeros(3, 3))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_rbf_kernel_rejects_bad_bandwidth(bad):
    # A Python float is an argument: always checked.
    with pytest.raises(ValueError, match="bandwidth"):
        rbf_kernel(torch.zeros(2, 1), torch.zeros(2, 1), bad)
    # A tensor is data: checked only under the data-check switch (reading it syncs the host).
    with set_data_checks(True), pytest.raises(ValueError, match="bandwidth"):
        rbf_kernel(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([bad]))
    rbf_kernel(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([bad]))  # no check, no error


# -- median bandwidth --------------------------------------------------------------------------------
def test_reference_bandwidth_hand_computed_odd_and_even():
    # Odd N = 9: the median (5th of 9) is 5; h = 5 / log 3.
    odd = torch.arange(1.0, 10.0).reshape(3, 3)
    torch.testing.assert_close(
        median_bandwidth(odd, formula="reference", num_particles=3), torch.tensor(5 / math.log(3))
    )
    # Even N = 6, values 1..6 shuffled: top_k(k = 4)[-1] is the 4th largest = 3, the lower middle.
    even = torch.tensor([[6.0, 1.0, 4.0], [2.0, 5.0, 3.0]])
    torch.testing.assert_close(
        median_bandwidth(even, formula="reference", num_particles=2), torch.tensor(3 / math.log(2))
    )


def test_paper_bandwidth_hand_computed_odd_and_even():
    # Distances 1..9 (squared 1, 4, ..., 81), odd: med = 5, h = 25 / log 4.
    odd = torch.arange(1.0, 10.0).square().reshape(3, 3)
    torch.testing.assert_close(
        median_bandwidth(odd, formula="paper", num_particles=4), torch.tensor(25 / math.log(4))
    )
    # Distances 1..6, even: med = (3 + 4)/2 = 3.5, h = 12.25 / log 5.
    even = torch.tensor([[36.0, 1.0, 16.0], [4.0, 25.0, 9.0]])
    torch.testing.assert_close(
        median_bandwidth(even, formula="paper", num_particles=5), torch.tensor(12.25 / math.log(5))
    )


def test_bandwidth_floor_batch_and_no_gradient():
    d2 = torch.zeros(2, 3, 3, requires_grad=True)
    with torch.no_grad():
        d2[1] = 4.0
    h = median_bandwidth(d2, formula="reference", num_particles=3, min_bandwidth=0.01)
    torch.testing.assert_close(h, torch.tensor([0.01, 4 / math.log(3)]))
    assert not h.requires_grad


def test_bandwidth_errors_name_the_argument():
    d2 = torch.ones(3, 3)
    with pytest.raises(ValueError, match="num_particles"):
        median_bandwidth(d2, formula="reference", num_particles=1)
    with pytest.raises(ValueError, match="formula"):
        median_bandwidth(d2, formula="pyro", num_particles=3)
    with pytest.raises(ValueError, match="min_bandwidth"):
        median_bandwidth(d2, formula="paper", num_particles=3, min_bandwidth=0.0)
    with set_data_checks(True), pytest.raises(ValueError, match="sq_dists contains NaN"):
        median_bandwidth(torch.full((3, 3), float("nan")), formula="paper", num_particles=3)
    with set_data_checks(True), pytest.raises(ValueError, match="sq_dists contains Inf"):
        median_bandwidth(torch.full((3, 3), float("inf")), formula="paper", num_particles=3)
    # Without the switch the values are not read: no error.
    median_bandwidth(torch.full((3, 3), float("nan")), formula="paper", num_particles=3)


# -- SVGD direction ----------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(a=st.lists(floats, min_size=2, max_size=2), s=st.lists(floats, min_size=2, max_size=2),
       h=st.floats(min_value=1e-3, max_value=10.0))
def test_direction_of_one_particle_is_the_score(a, s, h):
    a, s = torch.tensor([a]), torch.tensor([s])
    torch.testing.assert_close(svgd_direction(a, s, a, h), s)


def test_direction_matches_the_definition_by_autograd():
    gen = torch.Generator().manual_seed(3)
    fixed, updated = torch.randn(2, 5, 3, generator=gen), torch.randn(2, 4, 3, generator=gen)
    scores = torch.randn(2, 5, 3, generator=gen)
    h = torch.tensor([0.7, 1.9])
    expected = torch.zeros(2, 4, 3)
    for b in range(2):
        for i in range(4):
            for j in range(5):
                aj = fixed[b, j].clone().requires_grad_(True)
                kappa = torch.exp(-(aj - updated[b, i]).square().sum() / h[b])
                (grad_kappa,) = torch.autograd.grad(kappa, aj)
                expected[b, i] += (kappa.detach() * scores[b, j] + grad_kappa) / 5
    torch.testing.assert_close(svgd_direction(updated, scores, fixed, h), expected)


def test_stein_identity_direction_vanishes_under_the_target():
    # Stein's identity: E_{a_j ~ p}[κ(a_j, a) ∇log p(a_j) + ∇_{a_j} κ(a_j, a)] = 0 for every a.
    gen = torch.Generator().manual_seed(4)
    fixed = torch.randn(200_000, 2, generator=gen, dtype=torch.float64)
    scores = -fixed  # standard normal
    at = torch.tensor([[0.0, 0.0], [1.0, -0.5], [-2.0, 1.0]], dtype=torch.float64)
    direction = svgd_direction(at, scores, fixed, 1.0)
    assert direction.abs().max() < 0.01
    # Against a shifted target the same particles are pushed towards its mean.
    shifted = svgd_direction(at, -(fixed - 1.0), fixed, 1.0)
    assert bool((shifted > 0.05).all())


def test_direction_repels_particles():
    fixed = torch.tensor([[0.0]])
    direction = svgd_direction(torch.tensor([[0.5], [-0.5]]), torch.zeros(1, 1), fixed, 1.0)
    assert direction[0, 0] > 0 and direction[1, 0] < 0


def test_direction_rejects_nonfinite_scores():
    scores = torch.tensor([[float("nan")], [0.0]])
    with set_data_checks(True), pytest.raises(ValueError, match="scores contains NaN"):
        svgd_direction(torch.zeros(2, 1), scores, torch.zeros(2, 1), 1.0)
    with set_data_checks(True), pytest.raises(ValueError, match="scores contains Inf"):
        svgd_direction(torch.zeros(2, 1), torch.tensor([[float("inf")], [0.0]]), torch.zeros(2, 1), 1.0)
    svgd_direction(torch.zeros(2, 1), scores, torch.zeros(2, 1), 1.0)  # unchecked without the switch


# -- the tanh map onto the box -------------------------------------------------------------------------
def test_log_abs_det_jacobian_matches_autograd():
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([1.0, 0.5])
    u = torch.tensor([[-3.0, 0.2], [0.7, 4.0]], dtype=torch.float64)
    jac = tanh_log_abs_det_jacobian(u, low.double(), high.double())
    for r in range(2):
        for d in range(2):
            x = u[r, d].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(tanh_squash(x, low[d].double(), high[d].double()), x)
            torch.testing.assert_close(jac[r, d], g.log())


@settings(max_examples=50, deadline=None)
@given(u=st.floats(min_value=-80.0, max_value=80.0, width=32))
def test_log_abs_det_jacobian_finite_and_squash_in_box(u):
    u = torch.tensor([u])
    assert bool(torch.isfinite(tanh_log_abs_det_jacobian(u, -1.0, 1.0)).all())
    a = tanh_squash(u, torch.tensor([-1.0]), torch.tensor([2.0]))
    assert bool(((a >= -1.0) & (a <= 2.0)).all())


def test_unsquash_inverts_squash_and_keeps_boundary_finite():
    low, high = torch.tensor([-1.0, 2.0]), torch.tensor([3.0, 2.5])
    u = torch.tensor([[-2.0, 0.1], [1.5, -0.3]])
    torch.testing.assert_close(tanh_unsquash(tanh_squash(u, low, high), low, high), u, atol=1e-4, rtol=1e-4)
    edge = tanh_unsquash(torch.stack([low, high]), low, high)
    assert bool(torch.isfinite(edge).all())


# -- Langevin and MALA -----------------------------------------------------------------------------------
def test_langevin_step_and_proposal_density_match_a_gaussian():
    x, score, noise = torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 1.0]]), torch.tensor([[0.3, -0.1]])
    eps = 0.04
    new = langevin_step(x, score, eps, noise)
    torch.testing.assert_close(new, x + eps * score + math.sqrt(2 * eps) * noise)
    normal = torch.distributions.Normal(x + eps * score, math.sqrt(2 * eps))
    torch.testing.assert_close(
        langevin_proposal_log_prob(new, x, score, eps), normal.log_prob(new).sum(-1)
    )


def test_mala_acceptance_satisfies_detailed_balance():
    # For the Gaussian log p(x) = -x²/2: p(x) q(x'|x) A(x→x') = p(x') q(x|x') A(x'→x).
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(50, 2, generator=gen, dtype=torch.float64), torch.randn(50, 2, generator=gen, dtype=torch.float64)
    eps = 0.3
    log_p = lambda z: -0.5 * z.square().sum(-1)  # noqa: E731
    a_xy = mala_log_acceptance(log_p(x), log_p(y), x, y, -x, -y, eps)
    a_yx = mala_log_acceptance(log_p(y), log_p(x), y, x, -y, -x, eps)
    lhs = log_p(x) + langevin_proposal_log_prob(y, x, -x, eps) + a_xy
    rhs = log_p(y) + langevin_proposal_log_prob(x, y, -y, eps) + a_yx
    torch.testing.assert_close(lhs, rhs)
    assert bool((a_xy <= 0).all()) and bool(((a_xy == 0) | (a_yx == 0)).all())
