"""What every policy sampler shares: draw ``a ∼ π(a|s) ∝ exp(Q(s, a)/α)``.

A sampler is built as ``SomeSampler([qvalue_network,] [policy_network,] *, action_spec, alpha, ...)``
and *owns* only what it trains: its policy network, if amortized. The Q network it reads and the
temperature are set in one of two ways:

- **alone**: give ``qvalue_network`` and ``alpha``; the sampler acts with that network as it is;
- **inside a loss**: omit both; :class:`~maxent_components.objectives.SoftQLoss` binds the sampler to
  the Q parameters it trains (the ``min`` over its ensemble, detached) and to its one temperature.
  A sampler built on another Q network than the loss's is refused there.

- ``sample(td, num_samples)`` returns ``(actions, log_prob)`` with a leading sample dimension:
  actions ``[n, *B, *action_shape]`` in the action spec's encoding, log-probabilities ``[n, *B]``
  where tractable, else ``None``.
- ``forward(td)`` writes one action at ``"action"`` so that the sampler can drive a TorchRL
  collector, and ``log_prob`` at ``"action_log_prob"`` where tractable.
- Amortized samplers add ``loss(td, *, qvalue=None)`` returning a ``TensorDict`` with ``loss_actor``
  and detached diagnostics (``alpha``, and ``entropy`` where ``log π`` is tractable); ``qvalue`` is
  the :class:`~maxent_components.modules.qfunction.QFunction` to train against (the loss passes its
  online ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor

from maxent_components.checks import check_positive_int
from maxent_components.modules.qfunction import QFunction, ReadsQ
from maxent_components.temperature import Temperature, as_temperature

__all__ = ["PolicySampler", "check_positive_int"]


class PolicySampler(ReadsQ, TensorDictModuleBase):
    """Base of the policy samplers: keys, the referenced Q and temperature, ``forward`` from ``sample``.

    Subclasses implement :meth:`sample` (and :meth:`loss` when amortized). Keys are configurable
    with :meth:`set_keys`.
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
    #: the action spaces the sampler draws from (``"discrete"``: a finite set; ``"continuous"``: a box)
    action_spaces: tuple[str, ...] = ("discrete", "continuous")
    #: whether ``α = 0`` is meaningful (a greedy limit); samplers that use ``Q/α`` as a log-density need ``α > 0``
    zero_alpha: bool = True

    def __init__(
        self,
        qvalue_network=None,
        *,
        action_spec,
        alpha: float | Temperature | None = None,
    ) -> None:
        super().__init__()
        if action_spec is None:
            raise ValueError("action_spec is required: the sampler needs the action space.")
        # Referenced, not owned: Q parameters belong to the loss that trains them.
        self.__dict__["qvalue"] = None if qvalue_network is None else QFunction(qvalue_network)
        self.action_spec = action_spec
        self.temperature = None if alpha is None else as_temperature(alpha)
        self._tensor_keys = self._AcceptedKeys()
        self._refresh_keys()

    # -- what the sampler reads -----------------------------------------------------------------
    def bind(self, qvalue: QFunction, temperature: Temperature | None) -> PolicySampler:
        """Read ``qvalue`` and ``temperature`` from now on; so do the samplers this one draws from.

        Called by :class:`~maxent_components.objectives.SoftQLoss` at construction (after it has
        checked that the network is its own); not needed otherwise.
        """
        if not isinstance(qvalue, QFunction):
            raise TypeError(f"qvalue must be a QFunction, got {type(qvalue).__name__}.")
        self.__dict__["qvalue"] = qvalue
        if temperature is not None:
            self.temperature = temperature
        for child in self.subsamplers():
            child.bind(qvalue, temperature)
        return self

    def subsamplers(self) -> tuple[PolicySampler, ...]:
        """The samplers this one draws from (a warm start, mixture components); none by default."""
        return ()

    @property
    def alpha(self) -> Tensor:
        """The current temperature (detached)."""
        return self._temperature().alpha

    # -- keys (set_keys and tensor_keys: ReadsQ) -------------------------------------------------
    def _refresh_keys(self) -> None:
        keys = self._tensor_keys
        self.in_keys = [keys.observation]
        self.out_keys = [keys.action] + ([keys.action_log_prob] if self.has_log_prob else [])

    # -- sampling and training ------------------------------------------------------------------
    @property
    def has_loss(self) -> bool:
        """Whether the sampler has parameters trained by :meth:`loss` (amortized samplers)."""
        return type(self).loss is not PolicySampler.loss

    def loss(self, tensordict: TensorDictBase, *, qvalue: QFunction | None = None) -> TensorDictBase:
        raise NotImplementedError(f"{type(self).__name__} has nothing to train (has_loss is False).")

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError(
            f"{type(self).__name__} must define sample(tensordict, num_samples, *, generator) "
            f"returning (actions [n, *B, *A], log_prob [n, *B] or None)."
        )

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions, log_prob = self.sample(tensordict, 1)
        tensordict.set(self.tensor_keys.action, actions[0])
        if log_prob is not None and self.has_log_prob:
            tensordict.set(self.tensor_keys.action_log_prob, log_prob[0])
        return tensordict
