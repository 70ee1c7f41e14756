"""Exact soft value over a finite action set."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.data import Categorical, MultiCategorical, MultiOneHot, OneHot, TensorSpec

from maxent_components.checks import check_finite, data_checks
from maxent_components.functional import soft_value
from maxent_components.modules.qfunction import QFunction
from maxent_components.soft_value.base import SoftValueEstimator
from maxent_components.temperature import Temperature

__all__ = ["ExactSoftValue"]


def _num_discrete_actions(action_spec: TensorSpec) -> int:
    if isinstance(action_spec, (MultiOneHot, MultiCategorical)):
        raise ValueError(
            f"action_spec must be a single discrete action (OneHot or Categorical), got "
            f"{type(action_spec).__name__}; a factorised action space has no single Q(s, ·) vector."
        )
    if isinstance(action_spec, (OneHot, Categorical)):
        return int(action_spec.space.n)
    raise ValueError(
        f"action_spec must be a discrete TorchRL spec (OneHot or Categorical) for ExactSoftValue, "
        f"got {type(action_spec).__name__}; continuous actions need UniformSoftValue, "
        f"ImportanceSoftValue or PolicySoftValue."
    )


class ExactSoftValue(SoftValueEstimator):
    """Exact soft value ``V(s) = α log Σ_a exp(Q(s, a)/α)`` over a discrete action set.

    The soft Bellman backup of soft Q-learning with finitely many actions (Haarnoja et al., 2017,
    "Reinforcement Learning with Deep Energy-Based Policies", eq. 7; the soft DQN target of Fox et
    al., 2016, "Taming the Noise in Reinforcement Learning via Soft Updates"), computed stably by
    :func:`~maxent_components.functional.soft_value`. ``α = 0`` gives the hard ``max_a Q(s, a)``
    of Q-learning. With ``use_action_mask`` the sum runs over the allowed actions only.

    Args:
        qvalue_network: a tensordict module reading the observation and writing
            ``"action_value"`` ``[*B, |A|]`` (e.g.
            :func:`~maxent_components.modules.qvalue.discrete_qvalue_network`); referenced, not owned.
            Omit it inside a ``SoftQLoss``, which evaluates the estimate with its target parameters.

    Keyword Args:
        alpha: the temperature ``α ≥ 0``, a float or a
            :class:`~maxent_components.temperature.Temperature` (referenced, not owned); omit it
            inside a ``SoftQLoss``, which binds its own.
        use_action_mask: read a boolean ``"action_mask"`` ``[*B, |A|]`` (True = allowed action).
        action_spec: optional discrete action spec (``OneHot`` or ``Categorical``); when given, the
            number of Q outputs is checked against it. Continuous specs raise a ``ValueError``.
        generator: accepted for interface parity with the sampled estimators (no randomness here).

    Reads ``"observation"`` (and ``"action_mask"``); writes ``"soft_value"`` ``[*B, 1]``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> qnet = TensorDictModule(lambda s: s, in_keys=["observation"], out_keys=["action_value"])
        >>> estimator = ExactSoftValue(qnet, alpha=1.0)
        >>> td = TensorDict({"observation": torch.zeros(2, 4)}, batch_size=[2])
        >>> estimator(td)["soft_value"]  # log 4
        tensor([[1.3863],
                [1.3863]])
    """

    @dataclass
    class _AcceptedKeys(SoftValueEstimator._AcceptedKeys):
        """Keys of :class:`ExactSoftValue`.

        Attributes:
            observation: the state read by the Q network.
            action_value: where the Q network writes ``Q(s, ·)`` ``[*B, |A|]``.
            action_mask: boolean mask of allowed actions, read when ``use_action_mask``.
            soft_value: where ``V(s)`` ``[*B, 1]`` is written.
        """

        action_value: NestedKey = "action_value"
        action_mask: NestedKey = "action_mask"

    default_keys = _AcceptedKeys
    action_spaces = ("discrete",)  # a sum over the actions

    def __init__(
        self,
        qvalue_network=None,
        *,
        alpha: float | Temperature | None = None,
        use_action_mask: bool = False,
        action_spec: TensorSpec | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.use_action_mask = bool(use_action_mask)
        self.num_actions = None if action_spec is None else _num_discrete_actions(action_spec)
        super().__init__(qvalue_network, alpha=alpha, allow_zero_alpha=True, generator=generator)

    def _refresh_keys(self) -> None:
        super()._refresh_keys()
        if self.use_action_mask:
            self.in_keys = [*self.in_keys, self.tensor_keys.action_mask]

    def estimate(
        self,
        tensordict: TensorDictBase,
        qvalue: QFunction,
        alpha: float | Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        keys = self.tensor_keys
        q = qvalue.action_values(tensordict, value_key=keys.action_value)  # [N, *B, |A|]
        if self.num_actions is not None and q.shape[-1] != self.num_actions:
            raise ValueError(
                f"qvalue_network wrote {keys.action_value!r} with {q.shape[-1]} actions, but "
                f"action_spec has {self.num_actions}."
            )
        mask = None
        if self.use_action_mask:
            mask = tensordict.get(keys.action_mask, None)
            if mask is None:
                raise KeyError(
                    f"ExactSoftValue: the input has no {keys.action_mask!r} entry (use_action_mask=True)."
                )
            if mask.dtype != torch.bool:
                raise TypeError(
                    f"{keys.action_mask!r} must be a boolean tensor (True = allowed), got {mask.dtype}."
                )
            try:
                mask = mask.expand_as(q)
            except RuntimeError as err:
                raise ValueError(
                    f"{keys.action_mask!r} of shape {tuple(mask.shape)} does not broadcast to the "
                    f"Q-values of shape {tuple(q.shape[1:])}."
                ) from err
        if data_checks():
            # Excluded actions may carry anything (TorchRL fills them with -inf).
            shown = q if mask is None else q.masked_fill(~mask, 0.0)
            check_finite(f"Q-values {keys.action_value!r}", shown)
        return {"soft_value": soft_value(q, alpha, dim=-1, mask=mask)}
