"""What every policy sampler shares: draw ``a ∼ π(a|s) ∝ exp(Q(s, a)/α)``.

A sampler is built as ``SomeSampler(qvalue_network, [policy_network,] *, action_spec, alpha, ...)``.
It *references* the Q network (held outside ``nn.Module`` registration, as TorchRL losses hold their
networks) and *owns* only what it trains: its policy network, if amortized, and its temperature.

- ``sample(td, num_samples)`` returns ``(actions, log_prob)`` with a leading sample dimension:
  actions ``[n, *B, *action_shape]`` in the action spec's encoding, log-probabilities ``[n, *B]``
  where tractable, else ``None``.
- ``forward(td)`` writes one action at ``"action"`` so that the sampler can drive a TorchRL
  collector, and ``log_prob`` at ``"action_log_prob"`` where tractable.
- Amortized samplers add ``loss(td)`` returning a ``TensorDict`` of ``loss_*`` terms and detached
  diagnostics (``alpha``, ``entropy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor

from maxent_components.temperature import Temperature, as_temperature

__all__ = ["PolicySampler", "check_positive_int"]


def check_positive_int(name: str, value: int) -> int:
    """Return ``value`` as an int, raising a ``ValueError`` naming ``name`` unless it is >= 1."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


class PolicySampler(TensorDictModuleBase):
    """Base of the policy samplers: key handling, the temperature, and ``forward`` from ``sample``.

    Subclasses implement :meth:`sample`. Keys are configurable with :meth:`set_keys`.
    """

    @dataclass
    class _AcceptedKeys:
        """Keys read and written by a sampler.

        Attributes:
            observation: the state read by the Q and policy networks.
            action: where ``forward`` writes the sampled action (and the Q network reads actions).
            action_log_prob: where ``forward`` writes the action's log-probability, if tractable.
            action_mask: optional boolean mask of allowed discrete actions (True = allowed).
        """

        observation: NestedKey = "observation"
        action: NestedKey = "action"
        action_log_prob: NestedKey = "action_log_prob"
        action_mask: NestedKey = "action_mask"

    default_keys = _AcceptedKeys
    #: whether ``sample`` returns log-probabilities
    has_log_prob: bool = True

    def __init__(self, qvalue_network, *, action_spec, alpha: float | Temperature) -> None:
        super().__init__()
        if action_spec is None:
            raise ValueError("action_spec is required: the sampler needs the action space.")
        # Referenced, not owned: the Q network's parameters belong to the loss that trains them.
        self.__dict__["qvalue_network"] = qvalue_network
        self.action_spec = action_spec
        self.temperature = as_temperature(alpha)
        self._tensor_keys = self._AcceptedKeys()
        self._refresh_keys()

    # -- keys ---------------------------------------------------------------------------------
    @property
    def tensor_keys(self) -> _AcceptedKeys:
        return self._tensor_keys

    def set_keys(self, **kwargs: NestedKey) -> PolicySampler:
        """Rename keys, e.g. ``sampler.set_keys(observation=("agent", "obs"))``."""
        valid = set(self._AcceptedKeys.__dataclass_fields__)
        for name, value in kwargs.items():
            if name not in valid:
                raise ValueError(f"{name!r} is not a key of {type(self).__name__}; valid: {sorted(valid)}.")
            setattr(self._tensor_keys, name, value)
        self._refresh_keys()
        return self

    def _refresh_keys(self) -> None:
        keys = self._tensor_keys
        self.in_keys = [keys.observation]
        self.out_keys = [keys.action] + ([keys.action_log_prob] if self.has_log_prob else [])

    # -- sampling -----------------------------------------------------------------------------
    @property
    def alpha(self) -> Tensor:
        """The current temperature (detached)."""
        return self.temperature.alpha

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor | None]:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions, log_prob = self.sample(tensordict, 1)
        tensordict.set(self.tensor_keys.action, actions[0])
        if log_prob is not None and self.has_log_prob:
            tensordict.set(self.tensor_keys.action_log_prob, log_prob[0])
        return tensordict
