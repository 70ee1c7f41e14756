"""Amortized Stein variational gradient descent (the sampling network of soft Q-learning)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn
from torchrl.envs.utils import exploration_type

from maxent_components.checks import (
    check_choice,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_probability,
)
from maxent_components.functional import (
    median_bandwidth,
    squared_distances,
    svgd_direction,
)
from maxent_components.modules.policies import noise_input_policy_network
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers._continuous import _DETERMINISTIC, ContinuousSampler
from maxent_components.temperature import AnnealedTemperature, Temperature
from maxent_components.validation import check_nonempty

__all__ = ["SVGDSampler"]


def _check_scales(value) -> float | tuple[float, ...]:
    """``bandwidth_scale`` as a float, or as a tuple of floats when a sequence of several is given."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return check_positive_float("bandwidth_scale", value)
    scales = tuple(check_positive_float(f"bandwidth_scale[{i}]", c) for i, c in enumerate(value))
    if not scales:
        raise ValueError("bandwidth_scale must be a positive factor or a non-empty sequence of them, got [].")
    return scales[0] if len(scales) == 1 else scales


class SVGDSampler(ContinuousSampler):
    r"""Amortized SVGD sampler ``a = tanh-map(f_φ(ξ; s))``, ``ξ ∼ N(0, I)``, of ``π(a|s) ∝ exp(Q(s, a)/α)``.

    Soft Q-learning's sampling network (Haarnoja et al., 2017, "Reinforcement Learning with Deep
    Energy-Based Policies", section 3.2 and appendix C): amortized SVGD (Wang & Liu, 2016) on SVGD
    (Liu & Wang, 2016). Per state, ``K`` noise draws give particles ``u``, split into fixed ``u_j``
    and updated ``u_i``; the updated ones should move along the Stein direction (eq. 13)

    .. math:: Δ(u_i) = E_j\big[κ(u_j, u_i) ∇_{u_j} \log p_u(u_j) + ∇_{u_j} κ(u_j, u_i)\big],

    and :meth:`loss` returns the surrogate ``loss_actor = −mean(Δ(u_i)·u_i)`` (``Δ`` detached; eq. 14)
    whose gradient moves the network along it. Particles, RBF kernel and target all live in the
    unconstrained space ``u`` (``log p_u = Q(s, a(u))/α + Σ log(1 − tanh² u)``), where Stein's
    identity holds; the reference code mixes the two spaces, this class does not. :meth:`refine` is
    plain (non-amortized) SVGD on a given particle set. ``log π`` is intractable: :meth:`sample`
    returns ``None`` log-probabilities, and a learned temperature is refused. The derivation, the
    kernels and the annealing are explained in the guide's "Samplers in depth" page.

    Args:
        qvalue_network: a TensorDict module reading ``"observation"`` and ``"action"`` and writing
            ``"state_action_value"`` ``[*B, 1]`` (referenced, not owned).
        policy_network: a module ``(observation, noise) ↦ u`` (pre-tanh, ``[*B, D]``), e.g.
            :func:`~maxent_components.modules.policies.noise_input_policy_network`; an MLP built
            from ``observation_dim`` and ``num_cells`` when omitted.

    Keyword Args:
        action_spec: a bounded continuous box (``torchrl.data.Bounded``).
        alpha: the temperature ``α`` (float, fixed or annealed temperature).
        num_particles: ``K``, particles per state in :meth:`loss` (>= 3: two fixed, one updated).
        fixed_fraction: share of the ``K`` particles that are fixed (reference: 0.5).
        bandwidth: ``"reference"`` (soft Q-learning code) or ``"paper"`` (Liu & Wang, 2016).
        bandwidth_scale: a factor on the median rule's bandwidth (1: as published), or several: the
            mean of RBF kernels at those multiples (Ai et al., 2021). Measured in ``docs/sampler_study``.
        min_bandwidth: floor of each (scaled) bandwidth.
        anneal_from, anneal_steps: annealed SVGD (D'Angelo & Fortuin, 2021): train towards
            ``exp(Q/(c_t α))``, ``c_t`` from ``anneal_from`` down to 1 over ``anneal_steps`` updates
            (1.0 and 0: none); the loop steps the schedule.
        noise_dim: size of ``ξ`` (default: the action dimension).
        observation_dim: input size of the default network (needed without ``policy_network``).
        num_cells: hidden sizes of the default network.

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> from torchrl.data import Bounded
        >>> q = TensorDictModule(lambda s, a: -(a - 0.5).square().sum(-1, keepdim=True),
        ...                      in_keys=["observation", "action"], out_keys=["state_action_value"])
        >>> sampler = SVGDSampler(q, action_spec=Bounded(-1, 1, shape=(2,)), alpha=0.1,
        ...                       observation_dim=3, num_cells=(32,), num_particles=8)
        >>> td = TensorDict(observation=torch.zeros(4, 3), batch_size=[4])
        >>> actions, log_prob = sampler.sample(td, num_samples=5)
        >>> actions.shape, log_prob
        (torch.Size([5, 4, 2]), None)
        >>> sorted(sampler.loss(td).keys())
        ['alpha', 'bandwidth', 'loss_actor']
    """

    has_log_prob = False
    zero_alpha = False  # Q/α is the log-density it follows

    def __init__(
        self,
        qvalue_network=None,
        policy_network: nn.Module | None = None,
        *,
        action_spec,
        alpha: float | Temperature | None = None,
        num_particles: int = 32,
        fixed_fraction: float = 0.5,
        bandwidth: Literal["paper", "reference"] = "reference",
        bandwidth_scale: float | Sequence[float] = 1.0,
        min_bandwidth: float = 1e-3,
        noise_dim: int | None = None,
        anneal_from: float = 1.0,
        anneal_steps: int = 0,
        observation_dim: int | None = None,
        num_cells: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        if self.temperature is not None and self.temperature.learned:
            raise ValueError(
                "alpha: SVGDSampler has no tractable entropy to drive a learned temperature; use a "
                "fixed or annealed temperature."
            )
        self.num_particles = check_positive_int("num_particles", num_particles)
        fixed_fraction = check_probability("fixed_fraction", fixed_fraction, open_low=True, open_high=True)
        self.num_fixed = int(round(self.num_particles * float(fixed_fraction)))
        if self.num_fixed < 2 or self.num_particles - self.num_fixed < 1:
            raise ValueError(
                f"num_particles={num_particles} with fixed_fraction={fixed_fraction} gives "
                f"{self.num_fixed} fixed and {self.num_particles - self.num_fixed} updated particles; "
                f"need at least 2 fixed (the bandwidth divides by log K_f) and 1 updated."
            )
        self.bandwidth = check_choice("bandwidth", bandwidth, ("paper", "reference"))
        self.bandwidth_scale = _check_scales(bandwidth_scale)
        self.min_bandwidth = check_positive_float("min_bandwidth", min_bandwidth)
        anneal_steps = check_nonnegative_int("anneal_steps", anneal_steps)
        if check_positive_float("anneal_from", anneal_from) < 1.0:
            raise ValueError(f"anneal_from must be a factor >= 1 on the temperature (1: no annealing), got {anneal_from}.")
        if anneal_from != 1.0 and anneal_steps == 0:
            raise ValueError(f"anneal_from={anneal_from} needs anneal_steps >= 1 to come down to the temperature.")
        self.anneal = (
            AnnealedTemperature(alpha_init=anneal_from, alpha_final=1.0, num_steps=anneal_steps)
            if anneal_from != 1.0 else None
        )
        self.noise_dim = (
            self.action_dim if noise_dim is None else check_positive_int("noise_dim", noise_dim)
        )
        self.policy_network = self._policy_or_default(
            policy_network,
            observation_dim,
            lambda obs_dim: noise_input_policy_network(
                obs_dim, self.action_dim, noise_dim=self.noise_dim, num_cells=num_cells
            ),
        )

    # -- sampling ---------------------------------------------------------------------------------
    def _particles_u(
        self, tensordict: TensorDictBase, num_samples: int, noise: Tensor | None, generator
    ) -> Tensor:
        obs = tensordict.get(self.tensor_keys.observation)
        batch = tuple(tensordict.batch_size)
        if noise is None:
            noise = torch.randn(
                (num_samples, *batch, self.noise_dim), generator=generator, dtype=obs.dtype, device=obs.device
            )
        u = self.policy_network(obs.expand(num_samples, *obs.shape), noise)
        if u.shape != (num_samples, *batch, self.action_dim):
            raise ValueError(
                f"policy_network must return pre-tanh actions of shape {(num_samples, *batch, self.action_dim)}, "
                f"got {tuple(u.shape)}."
            )
        return u

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, None]:
        """``num_samples`` actions per state ``[n, *B, *action_shape]`` (differentiable in ``φ``), ``None``."""
        num_samples = check_positive_int("num_samples", num_samples)
        return self.squash(self._particles_u(tensordict, num_samples, None, generator)), None

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if exploration_type() in _DETERMINISTIC:
            obs = tensordict.get(self.tensor_keys.observation)
            zeros = obs.new_zeros((1, *tensordict.batch_size, self.noise_dim))
            actions = self.squash(self._particles_u(tensordict, 1, zeros, None))
        else:
            actions, _ = self.sample(tensordict, 1)
        tensordict.set(self.tensor_keys.action, actions[0])
        return tensordict

    def _direction(
        self,
        state: TensorDictBase,
        fixed: Tensor,
        updated: Tensor,
        alpha: float | Tensor,
        qvalue: QFunction | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Stein direction at ``updated`` ``[Ku, *B, D]`` from ``fixed`` ``[Kf, *B, D]``; and ``h [*B]``."""
        _, score = self._log_target(state, fixed, alpha, with_score=True, qvalue=qvalue)
        # The functional pieces take particle sets as [..., K, D] with the batch in front.
        fixed_b, score_b, updated_b = (x.movedim(0, -2) for x in (fixed, score, updated))
        scales = self.bandwidth_scale if isinstance(self.bandwidth_scale, tuple) else (self.bandwidth_scale,)
        # h_c = max(c · rule, floor) for each scale c: the rule floored at floor / max(c), then scaled;
        # only the smaller scales need the floor again. One scale (the default) costs one product.
        top = max(scales)
        rule = median_bandwidth(
            squared_distances(fixed_b, updated_b),
            formula=self.bandwidth,
            num_particles=fixed.shape[0],
            min_bandwidth=self.min_bandwidth / top,
        )
        hs = [c * rule if c == top else (c * rule).clamp_min(self.min_bandwidth) for c in scales]
        direction = svgd_direction(updated_b, score_b, fixed_b, hs[0])
        if len(hs) > 1:  # the mean of the kernels: the mean of their directions
            direction = (direction + sum(svgd_direction(updated_b, score_b, fixed_b, h) for h in hs[1:])) / len(hs)
        return direction.movedim(-2, 0), hs[0]

    # -- training ---------------------------------------------------------------------------------
    def loss(
        self,
        tensordict: TensorDictBase,
        *,
        qvalue: QFunction | None = None,
        generator: torch.Generator | None = None,
    ) -> TensorDict:
        """The amortized SVGD surrogate ``loss_actor`` and the detached ``alpha`` (annealed, if the
        sampler anneals: the temperature it trains at) and mean ``bandwidth`` (the first scale's).

        ``qvalue``: the Q function whose ``exp(min_i Q_i/α)`` is the target (default: the bound one).
        """
        check_nonempty(type(self).__name__, tensordict)
        # The fixed particles take no gradient: drawing them without a graph halves the backward pass.
        with torch.no_grad():
            fixed = self._particles_u(tensordict, self.num_fixed, None, generator)
        updated = self._particles_u(tensordict, self.num_particles - self.num_fixed, None, generator)
        alpha = self._temperature().value()
        if self.anneal is not None:
            alpha = alpha * self.anneal.value()
        direction, h = self._direction(tensordict, fixed, updated.detach(), alpha, self._q(qvalue))
        loss_actor = -(direction.detach() * updated).sum(-1).mean()
        return TensorDict(
            {
                "loss_actor": loss_actor,
                "alpha": torch.as_tensor(alpha, dtype=loss_actor.dtype),
                "bandwidth": h.mean(),
            },
            batch_size=[],
        )

    @torch.no_grad()
    def refine(
        self,
        tensordict: TensorDictBase,
        particles: Tensor,
        *,
        num_steps: int,
        step_size: float,
    ) -> Tensor:
        """Non-amortized SVGD: move ``particles`` ``[n, *B, *action_shape]`` by ``num_steps`` steps.

        ``u ← u + ε Δ(u)`` with ``Δ`` computed from the whole set (every particle is both fixed and
        updated, Liu & Wang 2016, algorithm 1), in ``u``-space; returns actions in the box.
        Needs ``n >= 2``.
        """
        num_steps = check_positive_int("num_steps", num_steps)
        step_size = check_positive_float("step_size", step_size)
        if particles.dim() < 1 or particles.shape[0] < 2:
            raise ValueError("particles must hold at least 2 particles per state ([n, *B, *action_shape]).")
        self._check_actions("particles", particles, (particles.shape[0], *tensordict.batch_size))
        alpha = self._temperature().value()
        u = self.unsquash(particles)
        for _ in range(num_steps):
            direction, _ = self._direction(tensordict, u, u, alpha)
            u = u + step_size * direction
        return self.squash(u)
