"""The soft-value algebra: ``V = α logsumexp(Q/α)``, the Boltzmann policy, policy soft values,
importance-sampled log-mean-exp estimates and their effective sample size."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from maxent_components.checks import (
    check_finite,
    data_checks,
    is_traced,
)


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


def composition_divergence(log_probs: Tensor, weights: Tensor, dim: int = -1) -> Tensor:
    """``J_w(π_1, …, π_n) = −log Σ_a Π_i π_i(a)^{w_i}``: the price of composing soft Q-functions.

    ``log_probs`` stacks the ``n`` policies on the leading dimension (``[n, *B, A]``, actions along
    ``dim``); ``weights`` ``[n]`` lie on the simplex. Then ``J_w ≥ 0`` (Hölder's inequality), with
    equality iff the policies of positive weight agree; for two policies and ``w = (½, ½)`` it is
    half the Rényi divergence of order ½, ``−log Σ_a √(π_1 π_2)``.

    Why it matters: with ``V_i = α log Σ_a exp(Q_i/α)``, ``π_i ∝ exp(Q_i/α)`` and the composed
    ``V_w = α log Σ_a exp(Σ_i w_i Q_i / α)``, writing ``Q_i = V_i + α log π_i`` gives

    .. math:: \\sum_i w_i V_i − V_w = α J_w(π_1, …, π_n),

    the one-step loss of the composed soft value, from which Haarnoja et al. (2018), "Composable
    Deep Reinforcement Learning for Robotic Manipulation", section 4, bound the composed policy.
    Actions where some ``π_i = 0`` (``log π_i = −inf``, ``w_i > 0``) contribute nothing.
    """
    if dim == 0 or dim < -(log_probs.dim() - 1):
        raise ValueError(f"composition_divergence: dim={dim} must name an action axis after the policy axis 0.")
    if log_probs.shape[0] != weights.shape[0]:
        raise ValueError(f"composition_divergence: {log_probs.shape[0]} policies but {weights.shape[0]} weights.")
    w = weights.to(log_probs.dtype).reshape(-1, *([1] * (log_probs.dim() - 1)))
    weighted = torch.where(w == 0, torch.zeros_like(log_probs), w * log_probs)
    return -torch.logsumexp(weighted.sum(0), dim=dim if dim < 0 else dim - 1)


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


def path_consistency(
    values: Tensor,
    rewards: Tensor,
    log_probs: Tensor,
    alpha: float | Tensor,
    gamma: float,
    *,
    terminated: Tensor | None = None,
) -> Tensor:
    """Soft path consistencies of every suffix of a path (Nachum et al., 2017, "Bridging the Gap
    Between Value and Policy Based Reinforcement Learning", eq. 13):

    .. math:: C_j = −V(s_j) + γ^{L−j} V(s_L) + Σ_{k=j}^{L−1} γ^{k−j}\\big(r_k − α \\log π(a_k|s_k)\\big),
              \\quad j = 0, …, L − 1,

    with ``V(s_L) = 0`` when the path's last transition ``terminated``. At the optimal soft value
    ``V*`` and policy ``π* = exp((Q* − V*)/α)`` every ``C_j`` is zero for deterministic transitions
    (and zero in expectation otherwise); PCL minimises ``½ C²``.

    Args:
        values: ``V(s_0), …, V(s_L)``, shape ``[..., L + 1]``.
        rewards: ``r_0, …, r_{L−1}``, shape ``[..., L]``.
        log_probs: ``log π(a_k|s_k)``, shape ``[..., L]``.
        alpha: the temperature.
        gamma: the discount in ``(0, 1]``.

    Keyword Args:
        terminated: boolean ``[...]``: the last transition ended the episode (no bootstrap).

    Returns ``[..., L]``.

    Examples:
        >>> values = torch.tensor([1.0, 2.0, 3.0])
        >>> path_consistency(values, torch.tensor([0.5, 0.5]), torch.zeros(2), 1.0, 1.0)  # −V_j + V_2 + Σ r
        tensor([3.0000, 1.5000])
    """
    length = rewards.shape[-1]
    if values.shape[-1] != length + 1 or log_probs.shape != rewards.shape:
        raise ValueError(
            f"values must be [..., L + 1] and log_probs [..., L] for rewards [..., L]; got {tuple(values.shape)}, "
            f"{tuple(log_probs.shape)} and {tuple(rewards.shape)}."
        )
    steps = torch.arange(length, device=rewards.device)
    offsets = (steps.unsqueeze(0) - steps.unsqueeze(1)).to(rewards.dtype)  # k − j
    discount = torch.where(offsets >= 0, torch.as_tensor(gamma, dtype=rewards.dtype) ** offsets.clamp_min(0), 0.0)
    soft_rewards = rewards - alpha * log_probs
    sums = soft_rewards @ discount.transpose(0, 1)  # Σ_k γ^{k−j} x_k
    last = values[..., -1:]
    if terminated is not None:
        last = last.masked_fill(terminated.unsqueeze(-1).to(torch.bool), 0.0)
    tail = torch.as_tensor(gamma, dtype=rewards.dtype) ** (length - steps).to(rewards.dtype) * last
    return -values[..., :-1] + tail + sums
