"""The algebra of maximum-entropy RL as pure tensor functions.

Everything here is tensor in / tensor out, with no tensordict and no state, so that the modules in
:mod:`maxent_components.soft_value`, :mod:`maxent_components.samplers` and
:mod:`maxent_components.objectives` stay thin and the identities can be tested in isolation.

The central fact is the Gibbs variational principle: for any ``f`` and ``λ > 0``

.. math:: \\max_q \\; E_q[f] + λ H(q) = λ \\log \\int \\exp(f / λ),

attained only at ``q ∝ exp(f / λ)``. With ``f = Q(s, ·)`` and ``λ = α`` this gives the soft value
``V(s) = α log Σ_a exp(Q(s, a) / α)`` and the Boltzmann policy ``π(a|s) = exp((Q(s, a) − V(s)) / α)``
(Haarnoja et al., 2017, "Reinforcement Learning with Deep Energy-Based Policies", eqs. 3–6).
"""

from maxent_components.functional.box import (
    clipped_normal_log_prob,
    normal_log_density,
    tanh_log_abs_det_jacobian,
    tanh_squash,
    tanh_unsquash,
)
from maxent_components.functional.langevin import (
    langevin_proposal_log_prob,
    langevin_step,
    mala_log_acceptance,
)
from maxent_components.functional.soft import (
    boltzmann_log_prob,
    check_alpha,
    composition_divergence,
    effective_sample_size,
    entropy,
    expected_soft_value,
    importance_log_weights,
    importance_sampled_soft_value,
    log_mean_exp,
    path_consistency,
    soft_value,
)
from maxent_components.functional.stein import (
    svgd_direction_jacobian,
    svgd_direction_trace,
    svgd_step_log_det,
)
from maxent_components.functional.svgd import (
    median_bandwidth,
    rbf_kernel,
    squared_distances,
    svgd_direction,
)

__all__ = [
    "check_alpha",
    "composition_divergence",
    "soft_value",
    "boltzmann_log_prob",
    "expected_soft_value",
    "entropy",
    "log_mean_exp",
    "importance_sampled_soft_value",
    "importance_log_weights",
    "effective_sample_size",
    "path_consistency",
    "squared_distances",
    "rbf_kernel",
    "median_bandwidth",
    "svgd_direction",
    "svgd_direction_trace",
    "svgd_direction_jacobian",
    "svgd_step_log_det",
    "tanh_squash",
    "clipped_normal_log_prob",
    "normal_log_density",
    "tanh_unsquash",
    "tanh_log_abs_det_jacobian",
    "langevin_step",
    "langevin_proposal_log_prob",
    "mala_log_acceptance",
]
