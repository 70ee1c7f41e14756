"""What the continuous samplers share: the bounded box, the tanh map onto it, and Q on K actions.

All three continuous samplers (:class:`~maxent_components.samplers.gaussian.GaussianSampler`,
:class:`~maxent_components.samplers.svgd.SVGDSampler`,
:class:`~maxent_components.samplers.langevin.LangevinSampler`) draw from
``π(a|s) ∝ exp(Q(s, a)/α)`` on a bounded box ``[low, high]``. They all work in one unconstrained
space ``u ∈ R^D`` with ``a = low + (high − low)(tanh(u) + 1)/2``; the density of ``u`` whose image
is the target is ``p_u(u) ∝ exp(Q(s, a(u))/α) · Π_d |da_d/du_d|`` (change of variables), and its
log is :meth:`ContinuousSampler._log_target`. Its support is all of ``R^D`` and it vanishes at
infinity, so Langevin dynamics and Stein's identity (which needs the boundary terms to vanish) hold
without reflections or clipping, and actions can never leave the box.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torch import Tensor, nn
from torchrl.envs.utils import ExplorationType

from maxent_components.checks import check_finite, check_positive_int, data_checks
from maxent_components.functional import (
    tanh_log_abs_det_jacobian,
    tanh_squash,
    tanh_unsquash,
)
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers.base import PolicySampler
from maxent_components.specs import box_bounds
from maxent_components.temperature import Temperature

__all__ = ["ContinuousSampler"]

#: exploration types under which ``forward`` writes a deterministic action instead of a sample
_DETERMINISTIC = (
    ExplorationType.DETERMINISTIC,
    ExplorationType.MODE,
    ExplorationType.MEAN,
    ExplorationType.MEDIAN,
)


class ContinuousSampler(PolicySampler):
    """Base of the box samplers: the tanh map, evaluation of ``Q`` on ``K`` actions and ``∇_u log p_u``.

    Subclasses implement :meth:`sample`. Not part of the public API.
    """

    @dataclass
    class _AcceptedKeys(PolicySampler._AcceptedKeys):
        """Keys read and written by a continuous sampler.

        Attributes:
            observation: the state read by the Q and policy networks.
            action: where ``forward`` writes the sampled action (and the Q network reads actions).
            action_log_prob: where ``forward`` writes the action's log-probability, if tractable.
            action_mask: unused for continuous actions.
            state_action_value: where the Q network writes ``Q(s, a)`` (``[*B, 1]``).
        """

        state_action_value: NestedKey = "state_action_value"

    default_keys = _AcceptedKeys
    action_spaces = ("continuous",)

    def __init__(
        self,
        qvalue_network=None,
        *,
        action_spec,
        alpha: float | Temperature | None = None,
    ) -> None:
        low, high = box_bounds(action_spec)
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.action_shape = tuple(low.shape)
        self.action_dim = int(math.prod(self.action_shape)) if self.action_shape else 1

    def _policy_or_default(
        self,
        policy_network: nn.Module | None,
        observation_dim: int | None,
        build: Callable[[int], nn.Module],
    ) -> nn.Module:
        """``policy_network``, or ``build(observation_dim)`` (the default MLP) when it is ``None``."""
        if policy_network is not None:
            return policy_network
        if observation_dim is None:
            raise ValueError(
                "observation_dim is required when policy_network is not given (it sizes the "
                "default MLP)."
            )
        return build(check_positive_int("observation_dim", observation_dim))

    # -- the box ------------------------------------------------------------------------------
    def _flat_bounds(self) -> tuple[Tensor, Tensor]:
        return self.low.reshape(-1), self.high.reshape(-1)

    def squash(self, u: Tensor) -> Tensor:
        """Flat ``u [..., D]`` to actions ``[..., *action_shape]`` in the box."""
        low, high = self._flat_bounds()
        return tanh_squash(u, low, high).reshape(*u.shape[:-1], *self.action_shape)

    def unsquash(self, actions: Tensor) -> Tensor:
        """Actions ``[..., *action_shape]`` to flat ``u [..., D]`` (boundary points clamped inside)."""
        low, high = self._flat_bounds()
        flat = actions.reshape(*actions.shape[: actions.dim() - len(self.action_shape)], -1)
        return tanh_unsquash(flat, low, high)

    def log_abs_det_jacobian(self, u: Tensor) -> Tensor:
        """``log |det da/du|`` of the tanh map at flat ``u [..., D]``; returns ``[...]``."""
        low, high = self._flat_bounds()
        return tanh_log_abs_det_jacobian(u, low, high).sum(-1)

    def _check_actions(self, name: str, actions: Tensor, leading: tuple[int, ...]) -> None:
        expected = (*leading, *self.action_shape)
        if tuple(actions.shape) != expected:
            raise ValueError(f"{name} must have shape {expected}, got {tuple(actions.shape)}.")

    # -- Q on K actions per state ---------------------------------------------------------------
    def _qvalue(self, state: TensorDictBase, actions: Tensor, qvalue: QFunction | None = None) -> Tensor:
        """``min_i Q_i(s, a_k)`` over the members of ``qvalue`` (default: the bound one) for actions
        ``[K, *B, *action_shape]``, in one batched call; returns ``[K, *B]``. ``state`` is any
        tensordict of batch ``[*B]`` holding what the Q network reads besides the action."""
        keys = self.tensor_keys
        q = self._q(qvalue).state_action_values(
            state, actions, action_key=keys.action, value_key=keys.state_action_value
        ).amin(0)
        if data_checks():
            check_finite(f"Q-values {keys.state_action_value!r} at the sampled actions", q)
        return q

    def _log_target(
        self,
        state: TensorDictBase,
        u: Tensor,
        alpha: float | Tensor,
        *,
        with_score: bool,
        qvalue: QFunction | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``log p_u(u) = Q(s, a(u))/α + log|det da/du|`` (up to a constant) and its score ``∇_u``.

        ``u`` is flat ``[K, *B, D]``; returns ``([K, *B], [K, *B, D] or None)``. The score is taken
        with ``torch.func.grad`` with respect to ``u`` alone (nothing accumulates in the Q network's
        ``.grad``, the result carries no graph, and it composes with ``torch.vmap``).
        """

        def log_p_of(x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
            q = self._qvalue(state, self.squash(x), qvalue)
            log_p = q / alpha + self.log_abs_det_jacobian(x)
            return log_p.sum(), (log_p, q)

        u = u.detach()
        if not with_score:
            return log_p_of(u)[1][0].detach(), None
        score, (log_p, q) = torch.func.grad(log_p_of, has_aux=True)(u)
        if data_checks():  # Q's own check is skipped inside the transform: read its values here
            check_finite(f"Q-values {self.tensor_keys.state_action_value!r} at the sampled actions", q)
            check_finite("the gradient of Q with respect to the sampled actions", score)
        return log_p.detach(), score

    def _uniform_u(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        """``u`` whose image ``a(u)`` is uniform on the box, of shape ``[*shape, D]``."""
        r = torch.rand(
            (*shape, self.action_dim), generator=generator, dtype=self.low.dtype, device=self.low.device
        )
        return torch.atanh((2 * r - 1).clamp(-1 + 1e-6, 1 - 1e-6))
