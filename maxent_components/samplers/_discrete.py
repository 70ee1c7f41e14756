"""What the discrete samplers share: the action encoding, the action mask, ``Q(s, ·)`` and the greedy action.

Both discrete samplers (:class:`~maxent_components.samplers.boltzmann.BoltzmannSampler`,
:class:`~maxent_components.samplers.categorical.CategoricalSampler`) define a categorical policy
``π(·|s)`` over a finite action set through its log-probabilities ``log π(·|s)`` ``[*B, |A|]``
(:meth:`DiscreteSampler.log_probs`). Given those, exact sampling, the log-probability of the drawn
action and the encoding of actions as the spec asks (one-hot vectors or integer indices) are the
same for both, and live here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.data import TensorSpec
from torchrl.envs.utils import ExplorationType, exploration_type

from maxent_components.checks import check_finite, check_positive_int, data_checks
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers.base import PolicySampler
from maxent_components.specs import discrete_action_encoding, encode_discrete_actions
from maxent_components.temperature import Temperature

__all__ = ["DiscreteSampler"]

_GREEDY = (ExplorationType.DETERMINISTIC, ExplorationType.MODE, ExplorationType.MEAN)


def _categorical_draw(log_probs: Tensor, num_samples: int, generator: torch.Generator | None) -> Tensor:
    """``num_samples`` indices per row of ``log_probs [*B, |A|]``, returned as ``[n, *B]``."""
    batch_shape = log_probs.shape[:-1]
    probs = log_probs.detach().exp().reshape(-1, log_probs.shape[-1])
    index = torch.multinomial(probs, num_samples, replacement=True, generator=generator)
    return index.T.reshape(num_samples, *batch_shape)


class DiscreteSampler(PolicySampler):
    """Base of the samplers over a finite action set: encoding, mask, ``Q(s, ·)``, sampling, greedy action.

    Subclasses implement :meth:`log_probs` (``log π(·|s)`` ``[*B, |A|]``, ``−inf`` at masked
    actions) and may override :meth:`greedy`. Not part of the public API.
    """

    @dataclass
    class _AcceptedKeys(PolicySampler._AcceptedKeys):
        """Keys read and written by a discrete sampler.

        Attributes:
            observation: the state read by the Q and policy networks.
            action: where ``forward`` writes the sampled action.
            action_log_prob: where ``forward`` writes the action's log-probability.
            action_mask: optional boolean mask of allowed actions (True = allowed).
            action_value: where the Q network writes ``Q(s, ·)``.
        """

        action_value: NestedKey = "action_value"

    default_keys = _AcceptedKeys
    action_spaces = ("discrete",)

    def __init__(
        self,
        qvalue_network: TensorDictModuleBase | None = None,
        *,
        action_spec: TensorSpec,
        alpha: float | Temperature | None = None,
        use_action_mask: bool = False,
    ) -> None:
        # Read by _refresh_keys, which the base constructor calls.
        self.use_action_mask = bool(use_action_mask)
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.encoding, self.num_actions, _ = discrete_action_encoding(action_spec)

    def _refresh_keys(self) -> None:
        super()._refresh_keys()
        if self.use_action_mask:
            self.in_keys = [*self.in_keys, self.tensor_keys.action_mask]

    def _mask(self, tensordict: TensorDictBase) -> Tensor | None:
        if not self.use_action_mask:
            return None
        mask = tensordict.get(self.tensor_keys.action_mask, None)
        if mask is None:
            raise KeyError(
                f"use_action_mask=True but the tensordict has no {self.tensor_keys.action_mask!r} entry."
            )
        if mask.dtype != torch.bool:
            raise TypeError(f"action_mask must be boolean (True = allowed), got {mask.dtype}.")
        if data_checks() and not bool(mask.any(-1).all()):
            raise ValueError("action_mask excludes every action of some state; at least one must be allowed.")
        return mask

    # -- the policy ---------------------------------------------------------------------------
    def action_values(self, tensordict: TensorDictBase, qvalue: QFunction | None = None) -> Tensor:
        """``min_i Q_i(s, ·)`` ``[*B, |A|]`` over the members of ``qvalue`` (default: the bound one)."""
        key = self.tensor_keys.action_value
        q = self._q(qvalue).action_values(tensordict, value_key=key).amin(0)
        if q.shape[-1] != self.num_actions:
            raise ValueError(
                f"the Q network wrote {key!r} with last dimension {q.shape[-1]}, but action_spec has "
                f"{self.num_actions} actions."
            )
        if data_checks():
            check_finite(f"Q-values {key!r}", q)
        return q

    def log_probs(self, tensordict: TensorDictBase) -> Tensor:
        """``log π(·|s)`` ``[*B, |A|]``; masked actions get ``−inf``."""
        raise NotImplementedError(f"{type(self).__name__} must define log_probs(tensordict) -> [*B, |A|].")

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``num_samples`` exact samples of ``π`` per state: actions ``[n, *B, ...]``, log-probs ``[n, *B]``."""
        num_samples = check_positive_int("num_samples", num_samples)
        log_probs = self.log_probs(tensordict)
        index = _categorical_draw(log_probs, num_samples, generator)
        log_prob = log_probs.expand(num_samples, *log_probs.shape).gather(-1, index.unsqueeze(-1))
        return encode_discrete_actions(index, self.action_spec), log_prob.squeeze(-1)

    def greedy(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """The most probable action ``argmax_a π(a|s)`` (allowed actions only) and its ``log π``."""
        log_probs = self.log_probs(tensordict)
        index = log_probs.argmax(-1)
        log_prob = log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return encode_discrete_actions(index, self.action_spec), log_prob

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Write a sampled action (under ``RANDOM``) or :meth:`greedy`'s (otherwise), and its ``log π``.

        A categorical has no mean action; its mode is the natural point estimate under ``MEAN``.
        """
        if exploration_type() in _GREEDY:
            with torch.no_grad():
                action, log_prob = self.greedy(tensordict)
            tensordict.set(self.tensor_keys.action, action)
            tensordict.set(self.tensor_keys.action_log_prob, log_prob)
            return tensordict
        with torch.no_grad():
            return super().forward(tensordict)
