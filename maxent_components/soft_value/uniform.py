"""Uniform Monte-Carlo soft value on a bounded action box (the estimator of soft Q-learning)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.data import Bounded

from maxent_components.checks import check_positive_int
from maxent_components.functional import importance_sampled_soft_value
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers.uniform import sample_uniform_box
from maxent_components.soft_value.base import SoftValueEstimator
from maxent_components.specs import box_bounds, box_log_volume
from maxent_components.temperature import Temperature

__all__ = ["UniformSoftValue"]


class UniformSoftValue(SoftValueEstimator):
    """Uniform importance-sampled soft value on a box ``A = [low, high]``.

    .. math::

        \\hat V(s) = α \\Big[\\log \\sum_{k=1}^K \\exp(Q(s, a_k)/α) − \\log K + \\log \\mathrm{vol}(A)\\Big],
        \\qquad a_k \\sim U(A) \\text{ i.i.d., fresh for every state},

    with ``log vol(A) = Σ_i log(high_i − low_i)``: the estimate of ``V(s) = α log ∫_A exp(Q/α) da``
    used by soft Q-learning with a uniform proposal (Haarnoja et al., 2017, "Reinforcement Learning
    with Deep Energy-Based Policies", eq. 10 and section 3.2; the reference code uses 16 samples).
    It is the log of an unbiased estimate of ``∫ exp(Q/α)``, hence consistent as ``K → ∞`` and,
    by Jensen's inequality, biased low for finite ``K``. Without the ``log vol(A)`` term (as in
    the reference code, on ``[−1, 1]^d``) the estimate is shifted by the constant ``α d log 2``;
    here it is included so that a constant ``Q ≡ c`` gives exactly ``c + α log vol(A)``.

    Args:
        qvalue_network: a tensordict module reading the observation and ``"action"`` and writing
            ``"state_action_value"`` ``[*, 1]`` (e.g.
            :func:`~maxent_components.modules.qvalue.continuous_qvalue_network`); referenced. Omit
            it inside a ``SoftQLoss``, which evaluates the estimate with its target parameters.

    Keyword Args:
        action_spec: a ``torchrl.data.Bounded`` spec with finite bounds (one action's shape; pass
            the unbatched spec of a batched environment). Discrete or unbounded specs raise a
            ``ValueError`` naming ``action_spec``.
        alpha: the temperature ``α > 0``, a float or a Temperature (referenced); omit it inside a
            ``SoftQLoss``.
        num_samples: ``K``, the number of uniform actions per state.
        generator: default ``torch.Generator`` for the uniform draws.

    Reads ``"observation"``; writes ``"soft_value"`` ``[*B, 1]``. The Q network is called once
    on the ``K·N`` state-action pairs; the input tensordict only gains ``"soft_value"``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> from maxent_components.modules.qvalue import continuous_qvalue_network
        >>> qnet = continuous_qvalue_network(3, 2, num_cells=[16])
        >>> estimator = UniformSoftValue(
        ...     qnet, action_spec=Bounded(-1.0, 1.0, shape=(2,)), alpha=0.5, num_samples=16
        ... )
        >>> td = TensorDict({"observation": torch.randn(8, 3)}, batch_size=[8])
        >>> estimator(td, generator=torch.Generator().manual_seed(0))["soft_value"].shape
        torch.Size([8, 1])
    """

    @dataclass
    class _AcceptedKeys(SoftValueEstimator._AcceptedKeys):
        """Keys of :class:`UniformSoftValue`.

        Attributes:
            observation: the state read by the Q network.
            action: where the Q network reads the action.
            state_action_value: where the Q network writes ``Q(s, a)``.
            soft_value: where ``V(s)`` ``[*B, 1]`` is written.
        """

        action: NestedKey = "action"
        state_action_value: NestedKey = "state_action_value"

    default_keys = _AcceptedKeys
    action_spaces = ("continuous",)  # samples of the action box

    def __init__(
        self,
        qvalue_network=None,
        *,
        action_spec: Bounded,
        alpha: float | Temperature | None = None,
        num_samples: int = 16,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(qvalue_network, alpha=alpha, allow_zero_alpha=False, generator=generator)
        low, high = box_bounds(action_spec)
        self.num_samples = check_positive_int("num_samples", num_samples)
        # Non-persistent: derived from the spec, so not checkpoint state, but device-following.
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)
        self.register_buffer("log_volume", box_log_volume(low, high), persistent=False)

    def estimate(
        self,
        tensordict: TensorDictBase,
        qvalue: QFunction,
        alpha: float | Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        actions = sample_uniform_box(
            self.low, self.high, self.num_samples, tensordict.batch_size, generator=generator
        )
        q = self._q_at_actions(tensordict, qvalue, actions)  # [N, K, *B]
        # Importance sampling with log q = −log vol(A): the formula of ImportanceSoftValue, so that
        # it and a UniformSampler proposal agree bit for bit on equal samples.
        return {"soft_value": importance_sampled_soft_value(q, -self.log_volume, alpha, dim=1)}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_samples={self.num_samples}"
