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
from typing import Literal

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.data import Categorical, OneHot, TensorSpec
from torchrl.envs.utils import ExplorationType, exploration_type

from maxent_components.functional import check_finite
from maxent_components.samplers.base import (
    PolicySampler,
    check_positive_int,
    ensemble_action_values,
)
from maxent_components.temperature import Temperature

__all__ = ["DiscreteSampler", "discrete_action_encoding", "encode_discrete_actions"]

ActionEncoding = Literal["one_hot", "categorical"]

_GREEDY = (ExplorationType.DETERMINISTIC, ExplorationType.MODE, ExplorationType.MEAN)


def discrete_action_encoding(action_spec: TensorSpec) -> tuple[ActionEncoding, int, bool]:
    """Return ``(encoding, num_actions, trailing_singleton)`` of a discrete TorchRL action spec.

    ``OneHot`` specs (the ``GymEnv`` default) encode an action as a one-hot vector of length ``|A|``;
    ``Categorical`` specs as an integer index, of shape ``[*B]``, or ``[*B, 1]`` when the spec's
    last dimension is a singleton. Any other spec raises a ``ValueError`` naming ``action_spec``.

    Examples:
        >>> from torchrl.data import Categorical, OneHot
        >>> discrete_action_encoding(OneHot(4))
        ('one_hot', 4, False)
        >>> discrete_action_encoding(Categorical(3, shape=(1,)))
        ('categorical', 3, True)
    """
    if isinstance(action_spec, OneHot):
        return "one_hot", int(action_spec.space.n), False
    if isinstance(action_spec, Categorical):
        shape = action_spec.shape
        return "categorical", int(action_spec.space.n), len(shape) > 0 and shape[-1] == 1
    raise ValueError(
        f"action_spec must be a discrete TorchRL spec (OneHot or Categorical), got "
        f"{type(action_spec).__name__}; continuous actions need a continuous sampler "
        f"(e.g. GaussianSampler or SVGDSampler)."
    )


def encode_discrete_actions(index: Tensor, action_spec: TensorSpec) -> Tensor:
    """Write integer action indices in the encoding of ``action_spec`` (one-hot or index)."""
    encoding, num_actions, trailing = discrete_action_encoding(action_spec)
    if encoding == "one_hot":
        return torch.nn.functional.one_hot(index, num_actions).to(action_spec.dtype)
    index = index.to(action_spec.dtype)
    return index.unsqueeze(-1) if trailing else index


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

    def __init__(
        self,
        qvalue_network: TensorDictModuleBase,
        *,
        action_spec: TensorSpec,
        alpha: float | Temperature = 1.0,
        use_action_mask: bool = False,
        qvalue_params: TensorDictBase | None = None,
    ) -> None:
        # Read by _refresh_keys, which the base constructor calls.
        self.use_action_mask = bool(use_action_mask)
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha, qvalue_params=qvalue_params)
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
        return mask

    # -- the policy ---------------------------------------------------------------------------
    def action_values(self, tensordict: TensorDictBase) -> Tensor:
        """``Q(s, ·)`` ``[*B, |A|]`` (the ensemble minimum when ``qvalue_params`` is set)."""
        q = ensemble_action_values(
            self.qvalue_network, tensordict, self.qvalue_params, self.tensor_keys.action_value
        )
        if q.shape[-1] != self.num_actions:
            raise ValueError(
                f"the Q network wrote {self.tensor_keys.action_value!r} with last dimension "
                f"{q.shape[-1]}, but action_spec has {self.num_actions} actions."
            )
        check_finite(f"Q-values {self.tensor_keys.action_value!r}", q)
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
