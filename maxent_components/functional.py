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

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from maxent_components.checks import (
    check_finite,
    check_positive_float,
    check_positive_int,
    data_checks,
    is_traced,
)

__all__ = [
    "check_alpha",
    "soft_value",
    "boltzmann_log_prob",
    "expected_soft_value",
    "entropy",
    "log_mean_exp",
    "importance_sampled_soft_value",
    "importance_log_weights",
    "effective_sample_size",
    "squared_distances",
    "rbf_kernel",
    "median_bandwidth",
    "svgd_direction",
    "tanh_squash",
    "tanh_unsquash",
    "tanh_log_abs_det_jacobian",
    "langevin_step",
    "langevin_proposal_log_prob",
    "mala_log_acceptance",
]


def check_alpha(alpha: float | Tensor, *, allow_zero: bool, name: str = "alpha") -> None:
    """Validate a temperature: ``α > 0`` (or ``α ≥ 0`` with ``allow_zero``) and finite.

    A Python number is always checked; a tensor only under :func:`~maxent_components.checks.data_checks`
    (reading it synchronises with the device).
    """
    if isinstance(alpha, Tensor):
        if is_traced(alpha) or not data_checks():
            return
        ok = bool(torch.isfinite(alpha).all()) and bool(
            ((alpha >= 0) if allow_zero else (alpha > 0)).all()
        )
    else:
        ok = math.isfinite(alpha) and (alpha >= 0 if allow_zero else alpha > 0)
    if not ok:
        shown = alpha.detach().flatten()[:4].tolist() if isinstance(alpha, Tensor) else alpha
        bound = "a finite value >= 0" if allow_zero else "a finite value > 0"
        raise ValueError(f"{name} must be {bound}, got {shown}.")


def _masked(q: Tensor, mask: Tensor | None, dim: int) -> Tensor:
    if mask is None:
        return q
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean tensor (True = allowed action), got {mask.dtype}.")
    try:
        mask = mask.expand_as(q)
    except RuntimeError as err:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to q of shape {tuple(q.shape)}."
        ) from err
    if data_checks() and not is_traced(mask) and not bool(mask.any(dim).all()):
        raise ValueError("mask excludes every action of some state; at least one must be allowed.")
    return q.masked_fill(~mask, -math.inf)


def soft_value(
    q: Tensor,
    alpha: float | Tensor,
    dim: int = -1,
    mask: Tensor | None = None,
    *,
    keepdim: bool = False,
) -> Tensor:
    """Soft value ``V = α log Σ_a exp(Q_a / α)`` over ``dim``; ``α = 0`` gives ``max_a Q_a``.

    Computed as ``m + α log Σ exp((Q − m)/α)`` with ``m = max Q``, so it is stable for ``|Q|`` up to
    1e6 and ``α`` from 1e-6 to 1e4 in float32. ``mask`` (boolean, True = allowed, as TorchRL's
    ``action_mask``) removes actions from the sum. ``alpha`` may be a tensor broadcastable to the
    reduced shape with ``keepdim=True``; zero entries select the hard max.

    Identities (tested): ``max Q ≤ V ≤ max Q + α log|A|``; ``V(Q + c) = V(Q) + c``;
    ``V_α(Q) = α V_1(Q/α)``; ``∂V/∂Q = π``.
    """
    if data_checks():
        check_finite("q", q)
    check_alpha(alpha, allow_zero=True)
    q = _masked(q, mask, dim)
    m = q.amax(dim=dim, keepdim=True)
    if isinstance(alpha, Tensor):
        positive = alpha > 0
        safe = torch.where(positive, alpha, torch.ones_like(alpha))
        lse = ((q - m) / safe).exp().sum(dim=dim, keepdim=True).log()
        v = m + torch.where(positive, safe * lse, torch.zeros_like(lse))
    elif alpha == 0:
        v = m
    else:
        v = m + alpha * ((q - m) / alpha).exp().sum(dim=dim, keepdim=True).log()
    return v if keepdim else v.squeeze(dim)


def boltzmann_log_prob(
    q: Tensor, alpha: float | Tensor, dim: int = -1, mask: Tensor | None = None
) -> Tensor:
    """Log-probabilities of the Boltzmann policy ``log π_a = (Q_a − V)/α`` along ``dim``.

    Masked actions get ``-inf``. At ``α = 0`` the policy is uniform over the maximisers of ``Q``.
    """
    if data_checks():
        check_finite("q", q)
    check_alpha(alpha, allow_zero=True)
    q = _masked(q, mask, dim)
    if isinstance(alpha, Tensor) or alpha > 0:
        if isinstance(alpha, Tensor) and data_checks() and not is_traced(alpha) and bool((alpha == 0).any()):
            raise ValueError("boltzmann_log_prob: a tensor alpha must be > 0 everywhere.")
        return torch.log_softmax(q / alpha, dim=dim)
    is_max = q == q.amax(dim=dim, keepdim=True)
    n_max = is_max.sum(dim=dim, keepdim=True).to(q.dtype)
    return torch.where(is_max, -n_max.log(), torch.full_like(q, -math.inf))


def entropy(log_probs: Tensor, dim: int = -1) -> Tensor:
    """Entropy ``H = −Σ π log π`` of a distribution given by its log-probabilities along ``dim``.

    Entries with ``log π = −inf`` contribute zero (``0 log 0 = 0``).
    """
    p = log_probs.exp()
    return -(p * log_probs.masked_fill(p == 0, 0.0)).sum(dim)


def expected_soft_value(
    q: Tensor, log_probs: Tensor, alpha: float | Tensor, dim: int = -1
) -> Tensor:
    """Exact policy soft value ``V^π = Σ_a π_a (Q_a − α log π_a)`` for a discrete ``π``.

    By the Gibbs variational principle ``V^π ≤ soft_value(q, alpha)`` with equality iff ``π`` is the
    Boltzmann policy. Actions with ``π_a = 0`` contribute nothing, whatever their ``Q``.
    """
    if data_checks():
        check_finite("q", q)
    check_alpha(alpha, allow_zero=True)
    p = log_probs.exp()
    zero = p == 0
    return (p * (q.masked_fill(zero, 0.0) - alpha * log_probs.masked_fill(zero, 0.0))).sum(dim)


def log_mean_exp(x: Tensor, dim: int = 0, *, keepdim: bool = False) -> Tensor:
    """``log((1/K) Σ_k exp(x_k))`` along ``dim``, computed stably."""
    return torch.logsumexp(x, dim=dim, keepdim=keepdim) - math.log(x.shape[dim])


def importance_log_weights(q: Tensor, log_proposal: Tensor, alpha: float | Tensor) -> Tensor:
    """Unnormalised log importance weights ``Q(a_k)/α − log q(a_k)`` of samples ``a_k ∼ q``."""
    return q / alpha - log_proposal


def importance_sampled_soft_value(
    q: Tensor,
    log_proposal: Tensor | float,
    alpha: float | Tensor,
    dim: int = 0,
    *,
    keepdim: bool = False,
) -> Tensor:
    """Importance-sampled soft value ``α [log Σ_k exp(Q(a_k)/α − log q(a_k)) − log K]``, ``a_k ∼ q``.

    The log-mean-exp of an unbiased estimate of ``∫ exp(Q/α) da`` is consistent and, by Jensen's
    inequality, biased low (Haarnoja et al., 2017, eq. 10). With a uniform proposal on a box,
    ``log q = −log vol(A)``; with a tractable policy it is the policy's log-density.
    """
    if data_checks():
        check_finite("q", q)
        if isinstance(log_proposal, Tensor):
            check_finite("log_proposal", log_proposal)
    check_alpha(alpha, allow_zero=False)
    return alpha * log_mean_exp(importance_log_weights(q, log_proposal, alpha), dim, keepdim=keepdim)


def effective_sample_size(log_weights: Tensor, dim: int = 0, *, keepdim: bool = False) -> Tensor:
    """Kish's effective sample size ``(Σ w)² / Σ w²`` from unnormalised log-weights along ``dim``.

    Lies in ``[1, K]``: ``K`` for equal weights, ``1`` when a single sample carries all the weight.
    """
    lse = torch.logsumexp(log_weights, dim=dim, keepdim=keepdim)
    lse2 = torch.logsumexp(2 * log_weights, dim=dim, keepdim=keepdim)
    return (2 * lse - lse2).exp()


# ---------------------------------------------------------------------------------------------
# Kernels and Stein variational gradient descent
# ---------------------------------------------------------------------------------------------


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances ``‖x_i − y_j‖²`` of ``x [..., Kx, D]`` and ``y [..., Ky, D]``.

    Returns ``[..., Kx, Ky]``. Computed from the differences, not from ``‖x‖² + ‖y‖² − 2 x·y``, so the
    diagonal of a set against itself is exactly zero (the median heuristics depend on it).
    """
    if x.dim() < 2 or y.dim() < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must be particle sets [..., K, D] with the same D, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}."
        )
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).square().sum(-1)


def rbf_kernel(x: Tensor, y: Tensor, bandwidth: float | Tensor) -> Tensor:
    """RBF kernel matrix ``κ_ij = exp(−‖x_i − y_j‖² / h)`` of ``x [..., Kx, D]`` and ``y [..., Ky, D]``.

    This is the parameterisation of Liu & Wang (2016) and of the soft Q-learning reference code
    (``h`` multiplies the *squared* distance, no factor 2). ``bandwidth`` is a positive float or a
    tensor broadcastable to the leading dimensions ``[...]`` (one ``h`` per particle set). Returns
    ``[..., Kx, Ky]``.
    """
    h = _check_bandwidth(bandwidth)
    if isinstance(h, Tensor):
        h = h.unsqueeze(-1).unsqueeze(-1)
    return torch.exp(-squared_distances(x, y) / h)


def _check_bandwidth(bandwidth: float | Tensor) -> float | Tensor:
    if isinstance(bandwidth, Tensor):
        if data_checks() and not is_traced(bandwidth) and not bool(
            (torch.isfinite(bandwidth) & (bandwidth > 0)).all()
        ):
            raise ValueError(f"bandwidth must be finite and > 0, got {bandwidth.flatten()[:4].tolist()}.")
        return bandwidth
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be finite and > 0, got {bandwidth}.")
    return float(bandwidth)


def median_bandwidth(
    sq_dists: Tensor,
    *,
    formula: Literal["paper", "reference"],
    num_particles: int,
    min_bandwidth: float = 1e-3,
) -> Tensor:
    """Median-heuristic bandwidth ``h`` of :func:`rbf_kernel` from squared distances ``[..., Kx, Ky]``.

    The median runs over all ``N = Kx·Ky`` entries of each matrix (for a particle set against
    itself the zero diagonal is included, as in both reference implementations). The result is
    floored at ``min_bandwidth`` and detached: the bandwidth is a heuristic, not a quantity to
    differentiate. Returns ``[...]``.

    - ``"paper"`` — Liu & Wang (2016), "Stein Variational Gradient Descent: A General Purpose
      Bayesian Inference Algorithm", section 5: ``h = med² / log n`` with ``med`` the median of the
      pairwise *distances* (the usual median: the mean of the two middle values when ``N`` is
      even), chosen so that ``Σ_j κ(x_i, x_j) ≈ n exp(−med²/h) = 1``. (The authors' released code
      differs slightly: it takes ``numpy.median`` of the *squared* distances and divides by
      ``log(n + 1)``, which also works for ``n = 1``; we follow the paper.)
    - ``"reference"`` — the soft Q-learning reference code (haarnoja/softqlearning,
      ``softqlearning/misc/kernel.py``, ``adaptive_isotropic_gaussian_kernel``): ``h = m / log Kx``
      where ``m`` is the ``(⌊N/2⌋ + 1)``-th *largest* squared distance (``tf.nn.top_k`` with
      ``k = N // 2 + 1``, last element) — the median for odd ``N`` and the *lower* of the two middle
      values for even ``N`` — between the fixed particles ``xs`` (``Kx`` of them) and the updated
      particles ``ys``.

    ``num_particles`` is the ``n`` (``Kx``) in the logarithm: the number of particles summed over in
    the SVGD expectation. It must be at least 2 (``log 1 = 0``).

    Examples:
        >>> d2 = torch.tensor([[0.0, 1.0], [4.0, 9.0]])
        >>> median_bandwidth(d2, formula="reference", num_particles=2)  # 1 / log 2
        tensor(1.4427)
        >>> median_bandwidth(d2, formula="paper", num_particles=2)  # ((1 + 2)/2)² / log 2
        tensor(3.2461)
    """
    if formula not in ("paper", "reference"):
        raise ValueError(f"formula must be 'paper' or 'reference', got {formula!r}.")
    if check_positive_int("num_particles", num_particles) < 2:
        raise ValueError(
            f"num_particles must be an integer >= 2 (the heuristic divides by log n), got {num_particles!r}."
        )
    check_positive_float("min_bandwidth", min_bandwidth)
    if sq_dists.dim() < 2:
        raise ValueError(f"sq_dists must have shape [..., Kx, Ky], got {tuple(sq_dists.shape)}.")
    if data_checks():
        check_finite("sq_dists", sq_dists)
    flat = sq_dists.detach().flatten(-2)
    n_entries = flat.shape[-1]
    # Order statistics by selection (kthvalue, 1-based), not a full sort: SVGD calls this every step.
    if formula == "reference":
        med_sq = flat.kthvalue(n_entries - n_entries // 2, dim=-1).values
    else:
        dists = flat.clamp_min(0).sqrt()
        lower = dists.kthvalue((n_entries - 1) // 2 + 1, dim=-1).values
        upper = dists.kthvalue(n_entries // 2 + 1, dim=-1).values if n_entries % 2 == 0 else lower
        med_sq = (0.5 * (lower + upper)).square()
    return (med_sq / math.log(num_particles)).clamp_min(min_bandwidth)


def svgd_direction(
    particles: Tensor, scores: Tensor, kernel_particles: Tensor, bandwidth: float | Tensor
) -> Tensor:
    """Stein variational direction ``Δ(a_i) = E_j[κ(a_j, a_i) ∇_{a_j} log p(a_j) + ∇_{a_j} κ(a_j, a_i)]``.

    Liu & Wang (2016), algorithm 1; Haarnoja et al. (2017), eq. 13. The expectation is the mean over
    the ``kernel_particles`` ``a_j`` (``[..., Kj, D]``, the "fixed" particles, with their scores
    ``∇ log p(a_j)`` in ``scores``); the direction is evaluated at ``particles`` ``a_i``
    (``[..., Ki, D]``, the "updated" particles). For the RBF kernel of :func:`rbf_kernel`,
    ``∇_{a_j} κ(a_j, a_i) = −2 (a_j − a_i) κ_ji / h``: the first term drives particles up the
    log-density, the second pushes them apart. With one particle ``Δ = ∇ log p``.

    Computed with two matrix products (no ``[Kj, Ki, D]`` intermediate). Returns ``[..., Ki, D]``.
    Gradients flow through all inputs; detach them if the direction is to be a constant.
    """
    if scores.shape != kernel_particles.shape:
        raise ValueError(
            f"scores must have the shape of kernel_particles {tuple(kernel_particles.shape)}, "
            f"got {tuple(scores.shape)}."
        )
    if data_checks():
        check_finite("scores", scores)
    kappa = rbf_kernel(kernel_particles, particles, bandwidth)  # [..., Kj, Ki]
    h = _check_bandwidth(bandwidth)
    if isinstance(h, Tensor):
        h = h.unsqueeze(-1).unsqueeze(-1)
    kappa_t = kappa.transpose(-1, -2)  # [..., Ki, Kj]
    drive = kappa_t @ scores
    repulsion = (2.0 / h) * (particles * kappa_t.sum(-1, keepdim=True) - kappa_t @ kernel_particles)
    return (drive + repulsion) / kernel_particles.shape[-2]


# ---------------------------------------------------------------------------------------------
# Bounded boxes through tanh, and Langevin dynamics
# ---------------------------------------------------------------------------------------------


def tanh_squash(u: Tensor, low: Tensor | float, high: Tensor | float) -> Tensor:
    """Map ``u ∈ R`` to the box: ``a = low + (high − low)(tanh(u) + 1)/2``, elementwise.

    The result is clamped to ``[low, high]``: once ``tanh u`` rounds to ±1 the affine map can
    overshoot a bound by one ulp.
    """
    a = low + (high - low) * (torch.tanh(u) + 1) / 2
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        low_t, high_t = torch.as_tensor(low, dtype=a.dtype), torch.as_tensor(high, dtype=a.dtype)
        return torch.minimum(torch.maximum(a, low_t), high_t)
    return a.clamp(low, high)


def tanh_unsquash(a: Tensor, low: Tensor | float, high: Tensor | float, *, eps: float = 1e-6) -> Tensor:
    """Inverse of :func:`tanh_squash`, with ``tanh u`` clamped to ``[−1 + eps, 1 − eps]``.

    The clamp keeps actions lying exactly on the boundary finite (``|u| ≤ atanh(1 − eps)``).
    """
    v = (2 * (a - low) / (high - low) - 1).clamp(-1 + eps, 1 - eps)
    return torch.atanh(v)


def tanh_log_abs_det_jacobian(u: Tensor, low: Tensor | float, high: Tensor | float) -> Tensor:
    """Elementwise ``log |da/du| = log((high − low)/2) + log(1 − tanh² u)`` of :func:`tanh_squash`.

    Uses ``log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u))``, finite for every finite ``u`` (the
    naive form is ``−inf`` once ``tanh u`` rounds to ±1, at ``|u| ≈ 9`` in float32). Sum over the
    event dimensions for the log-determinant.
    """
    half_width = (high - low) / 2
    log_half_width = half_width.log() if isinstance(half_width, Tensor) else math.log(half_width)
    return log_half_width + 2 * (math.log(2.0) - u - torch.nn.functional.softplus(-2 * u))


def langevin_step(x: Tensor, score: Tensor, step_size: float | Tensor, noise: Tensor) -> Tensor:
    """One Langevin proposal ``x' = x + ε ∇ log p(x) + √(2ε) ξ`` with ``ξ ∼ N(0, I)`` given as ``noise``.

    Euler–Maruyama discretisation of the Langevin diffusion ``dx = ∇ log p dt + √2 dW`` whose
    stationary law is ``p`` (Grenander & Miller, 1994; Roberts & Tweedie, 1996). Used alone it is
    the unadjusted Langevin algorithm (ULA, ``O(ε)`` bias); followed by the Metropolis–Hastings
    test of :func:`mala_log_acceptance` it is MALA, which leaves ``p`` exactly invariant.
    """
    return x + step_size * score + torch.sqrt(2 * torch.as_tensor(step_size, dtype=x.dtype)) * noise


def langevin_proposal_log_prob(
    x_new: Tensor, x: Tensor, score_x: Tensor, step_size: float | Tensor
) -> Tensor:
    """``log q(x'|x) = log N(x'; x + ε ∇ log p(x), 2ε I)``, summed over the last dimension."""
    eps = torch.as_tensor(step_size, dtype=x.dtype)
    mean = x + eps * score_x
    dim = x.shape[-1]
    return -(x_new - mean).square().sum(-1) / (4 * eps) - 0.5 * dim * torch.log(4 * math.pi * eps)


def mala_log_acceptance(
    log_p_x: Tensor,
    log_p_new: Tensor,
    x: Tensor,
    x_new: Tensor,
    score_x: Tensor,
    score_new: Tensor,
    step_size: float | Tensor,
) -> Tensor:
    """Log Metropolis–Hastings acceptance probability of a Langevin proposal (MALA).

    ``log A = min(0, log p(x') + log q(x|x') − log p(x) − log q(x'|x))`` with ``q`` the Gaussian of
    :func:`langevin_proposal_log_prob` (Roberts & Tweedie, 1996). Points are ``[..., D]``,
    log-densities ``[...]``; ``p`` may be unnormalised.
    """
    forward = langevin_proposal_log_prob(x_new, x, score_x, step_size)
    backward = langevin_proposal_log_prob(x, x_new, score_new, step_size)
    return (log_p_new + backward - log_p_x - forward).clamp(max=0.0)
