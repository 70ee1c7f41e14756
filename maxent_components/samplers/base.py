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

from maxent_components.modules.params import swapped_parameters
from maxent_components.temperature import Temperature, as_temperature

__all__ = ["PolicySampler", "check_positive_int", "ensemble_action_values"]


def check_positive_int(name: str, value: int) -> int:
    """Return ``value`` as an int, raising a ``ValueError`` naming ``name`` unless it is >= 1."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def ensemble_action_values(
    qvalue_network, tensordict: TensorDictBase, qvalue_params: TensorDictBase | None, key: NestedKey
) -> Tensor:
    """``Q(s, ·)`` from the Q network as it is, or the minimum over an ensemble of parameters.

    ``qvalue_params`` is a stack ``[N, ...]`` of parameters of ``qvalue_network`` (such as
    ``SoftQLoss.qvalue_network_params`` with ``num_qvalue_nets = N``); the members are evaluated
    with ``torch.vmap`` and the pessimistic ``min_i Q_i(s, ·)`` is returned, as in discrete SAC
    (Christodoulou, 2019). The parameters are used detached: a sampler never trains its Q.
    """
    td = tensordict.select(*qvalue_network.in_keys, strict=False)
    if qvalue_params is None:
        return qvalue_network(td).get(key)

    def member(params: TensorDictBase) -> Tensor:
        with swapped_parameters(qvalue_network, params):
            return qvalue_network(td.copy()).get(key)

    return torch.vmap(member, (0,), randomness="same")(qvalue_params.detach()).amin(0)


class PolicySampler(TensorDictModuleBase):
    """Base of the policy samplers: key handling, the temperature, the referenced Q, ``forward`` from ``sample``.

    Subclasses implement :meth:`sample`. Keys are configurable with :meth:`set_keys`. The Q network
    and an optional ensemble of its parameters (``qvalue_params``, see :meth:`set_qvalue_params`)
    are referenced, not owned; :func:`ensemble_action_values` evaluates them.
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

    def __init__(
        self,
        qvalue_network,
        *,
        action_spec,
        alpha: float | Temperature,
        qvalue_params: TensorDictBase | None = None,
    ) -> None:
        super().__init__()
        if action_spec is None:
            raise ValueError("action_spec is required: the sampler needs the action space.")
        # Referenced, not owned: the Q network's parameters belong to the loss that trains them.
        self.__dict__["qvalue_network"] = qvalue_network
        self.__dict__["qvalue_params"] = None
        self.action_spec = action_spec
        self.temperature = as_temperature(alpha)
        self._tensor_keys = self._AcceptedKeys()
        self._refresh_keys()
        self.set_qvalue_params(qvalue_params)

    def set_qvalue_params(self, qvalue_params: TensorDictBase | None) -> PolicySampler:
        """Act on ``min_i Q_i`` of an ensemble ``[N, ...]`` of Q parameters (``None``: the Q module as it is).

        Pass ``SoftQLoss.qvalue_network_params`` when the loss holds ``num_qvalue_nets > 1``: the Q
        module itself then keeps its untrained initial parameters. This also serves when the
        sampler is built before the loss that creates the ensemble, e.g.
        ``sampler.set_qvalue_params(loss.qvalue_network_params)`` after
        ``loss = SoftQLoss(qnet, PolicySoftValue(qnet, sampler), num_qvalue_nets=2)``. The members
        are evaluated with ``torch.vmap`` on detached parameters (see
        :func:`ensemble_action_values`); they stay referenced, not owned.
        """
        if qvalue_params is not None and (
            not isinstance(qvalue_params, TensorDictBase) or qvalue_params.batch_dims < 1
        ):
            raise ValueError(
                "qvalue_params must be a stack [N, ...] of Q-network parameters, such as "
                f"SoftQLoss.qvalue_network_params with num_qvalue_nets > 1; got {type(qvalue_params).__name__}."
            )
        self.__dict__["qvalue_params"] = qvalue_params
        return self

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
