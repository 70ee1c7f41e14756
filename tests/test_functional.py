"""Unit tests of maxent_components.functional: exact values, masks, and bad input.

The algebraic identities are property-tested in test_identities.py.
"""

import math

import pytest
import torch

from maxent_components import functional as F
from maxent_components.checks import check_finite, is_traced, set_data_checks


def test_soft_value_matches_brute_force_and_hard_max():
    q = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], dtype=torch.float64)
    for alpha in (0.1, 1.0, 7.0):
        brute = alpha * torch.log(torch.exp(q / alpha).sum(-1))
        torch.testing.assert_close(F.soft_value(q, alpha), brute)
    torch.testing.assert_close(F.soft_value(q, 0.0), q.max(-1).values)
    assert F.soft_value(q, 1.0, keepdim=True).shape == (2, 1)
    assert F.soft_value(q, 1.0, dim=0).shape == (3,)


def test_soft_value_tensor_alpha_mixes_hard_and_soft_rows():
    q = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    alpha = torch.tensor([[0.0], [1.0]])
    v = F.soft_value(q, alpha, keepdim=True)
    assert v[0, 0].item() == pytest.approx(2.0)
    assert v[1, 0].item() == pytest.approx(math.log(math.e + math.e**2))


def test_mask_removes_actions():
    q = torch.tensor([[1.0, 10.0, 3.0]])
    mask = torch.tensor([[True, False, True]])
    assert F.soft_value(q, 1.0, mask=mask).item() == pytest.approx(math.log(math.e + math.e**3))
    log_pi = F.boltzmann_log_prob(q, 1.0, mask=mask)
    assert log_pi[0, 1].item() == -math.inf
    assert log_pi.exp().sum().item() == pytest.approx(1.0)


def test_zero_temperature_policy_splits_ties():
    log_pi = F.boltzmann_log_prob(torch.tensor([2.0, 2.0, 1.0]), 0.0)
    torch.testing.assert_close(log_pi.exp(), torch.tensor([0.5, 0.5, 0.0]))


def test_bad_input_names_the_argument():
    # Argument checks (Python-number alpha, mask dtype and shape) always run.
    q = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="alpha"):
        F.soft_value(q, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        F.importance_sampled_soft_value(q, 0.0, 0.0)
    with pytest.raises(TypeError, match="mask must be a boolean"):
        F.soft_value(q, 1.0, mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.soft_value(q, 1.0, mask=torch.ones(4, dtype=torch.bool))


def test_bad_data_raises_only_under_data_checks():
    # Checks that read the data (a host sync) run only under set_data_checks(True).
    q = torch.zeros(2, 3)
    nan_q = torch.tensor([0.0, float("nan")])
    inf_q = torch.tensor([0.0, float("inf")])
    empty_mask = torch.tensor([[True, False, False], [False, False, False]])
    bad_alphas = (torch.tensor([[1.0], [-1.0]]), torch.tensor([[1.0], [float("nan")]]))
    with set_data_checks(True):
        with pytest.raises(ValueError, match="q contains NaN values; expected finite values"):
            F.soft_value(nan_q, 1.0)
        with pytest.raises(ValueError, match="q contains Inf values; expected finite values"):
            F.boltzmann_log_prob(inf_q, 1.0)
        with pytest.raises(ValueError, match="q contains NaN"):
            F.expected_soft_value(nan_q, torch.log(torch.tensor([0.5, 0.5])), 1.0)
        with pytest.raises(ValueError, match="log_proposal contains NaN"):
            F.importance_sampled_soft_value(torch.zeros(2), torch.tensor([0.0, float("nan")]), 1.0)
        with pytest.raises(ValueError, match="mask excludes every action"):
            F.soft_value(q, 1.0, mask=empty_mask)
        for alpha in bad_alphas:
            with pytest.raises(ValueError, match="alpha"):
                F.soft_value(q, alpha, keepdim=True)
        with pytest.raises(ValueError, match="alpha"):
            F.importance_sampled_soft_value(q, 0.0, torch.tensor(0.0))
    # Off by default: no error, the bad values propagate.
    assert F.soft_value(nan_q, 1.0).isnan()
    assert F.boltzmann_log_prob(inf_q, 1.0).isnan().any()
    assert F.expected_soft_value(nan_q, torch.log(torch.tensor([0.5, 0.5])), 1.0).isnan()
    assert F.importance_sampled_soft_value(torch.zeros(2), torch.tensor([0.0, float("nan")]), 1.0).isnan()
    F.soft_value(q, 1.0, mask=empty_mask)
    for alpha in bad_alphas:
        F.soft_value(q, alpha, keepdim=True)
    F.importance_sampled_soft_value(q, 0.0, torch.tensor(0.0))


def test_check_finite_and_is_traced():
    check_finite("x", torch.zeros(3))
    with pytest.raises(ValueError, match="^x contains NaN values; expected finite values.$"):
        check_finite("x", torch.tensor([0.0, float("nan"), float("inf")]))
    with pytest.raises(ValueError, match="^x contains Inf values; expected finite values.$"):
        check_finite("x", torch.tensor([0.0, -float("inf")]))
    assert not is_traced(torch.zeros(2))
    # Under vmap data cannot be read: the check is skipped rather than failing.
    assert torch.vmap(lambda x: torch.tensor(is_traced(x)))(torch.zeros(3)).all()
    torch.vmap(lambda x: (check_finite("x", x), x)[1])(torch.tensor([float("nan")]))


def test_expected_soft_value_ignores_zero_probability_actions():
    q = torch.tensor([1.0, 2.0, 1000.0])
    log_pi = torch.tensor([math.log(0.25), math.log(0.75), -math.inf])
    expected = 0.25 * (1.0 - 0.5 * math.log(0.25)) + 0.75 * (2.0 - 0.5 * math.log(0.75))
    assert F.expected_soft_value(q, log_pi, 0.5).item() == pytest.approx(expected)
    assert F.entropy(log_pi).item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_importance_sampled_soft_value_and_effective_sample_size():
    q = torch.tensor([[0.0], [math.log(3.0)]])  # K = 2 samples, one state
    log_q = torch.full_like(q, math.log(0.5))
    # α log((1/K) Σ exp(Q)/q) = log(mean([2, 6])) = log 4
    assert F.importance_sampled_soft_value(q, log_q, 1.0).item() == pytest.approx(math.log(4.0))
    log_w = F.importance_log_weights(q, log_q, 1.0)
    assert F.effective_sample_size(log_w).item() == pytest.approx((2 + 6) ** 2 / (4 + 36))
    assert F.effective_sample_size(torch.zeros(5, 3)).tolist() == pytest.approx([5.0] * 3)
    assert F.log_mean_exp(torch.zeros(4, 2)).tolist() == pytest.approx([0.0, 0.0])
