"""Exact Boltzmann sampling over a finite action set: ``π(a|s) = softmax_a(Q(s, a)/α)``.

With finitely many actions the maximum-entropy policy needs no approximation: by the Gibbs
variational principle the optimal policy of the soft Q-function is
``π(a|s) = exp((Q(s, a) − V(s))/α)`` with ``V(s) = α log Σ_a exp(Q(s, a)/α)`` (Haarnoja et al., 2017,
"Reinforcement Learning with Deep Energy-Based Policies", eq. 6; the discrete case is the Boltzmann
policy of soft Q-learning / soft DQN, Fox et al., 2016, "Taming the Noise in Reinforcement Learning
via Soft Updates"). The sampler evaluates ``Q(s, ·)`` once and draws from that categorical exactly.
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

from maxent_components.functional import boltzmann_log_prob, check_finite
from maxent_components.modules.params import swapped_parameters
from maxent_components.samplers.base import PolicySampler, check_positive_int
from maxent_components.temperature import Temperature

__all__ = ["BoltzmannSampler", "discrete_action_encoding", "encode_discrete_actions", "ensemble_action_values"]

ActionEncoding = Literal["one_hot", "categorical"]


def discrete_action_encoding(action_spec: TensorSpec) -> tuple[ActionEncoding, int, bool]:
    """Return ``(encoding, num_actions, trailing_singleton)`` of a discrete TorchRL action spec.

    ``OneHot`` specs (the ``GymEnv`` default) encode an action as a one-hot vector of length ``|A|``;
    ``Categorical`` specs as an integer index, of shape ``[*B]``, or ``[*B, 1]`` when the spec's
    last dimension is a singleton. Any other spec raises a ``ValueError`` naming ``action_spec``.
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


class BoltzmannSampler(PolicySampler):
    """Exact sampler of the Boltzmann policy ``π(a|s) = softmax_a(Q(s, a)/α)`` over discrete actions.

    ``log π(a|s) = (Q(s, a) − V(s))/α`` with ``V(s) = α log Σ_b exp(Q(s, b)/α)`` (Haarnoja et al.,
    2017, eq. 6; Fox et al., 2016). ``α = 0`` gives the greedy policy (uniform over ties). Paired with
    :class:`~maxent_components.soft_value.ExactSoftValue` inside
    :class:`~maxent_components.objectives.soft_q.SoftQLoss` this is soft DQN.

    Args:
        qvalue_network: a tensordict module reading the observation and writing
            ``"action_value"`` ``[*B, |A|]`` (e.g. :func:`~maxent_components.modules.qvalue.discrete_qvalue_network`).
            It is referenced, not owned.

    Keyword Args:
        action_spec: a TorchRL ``OneHot`` (the ``GymEnv`` default; actions are one-hot vectors) or
            ``Categorical`` spec (actions are integer indices). Anything else raises ``ValueError``.
        alpha: the temperature, a float or a :class:`~maxent_components.temperature.Temperature`.
        use_action_mask: read a boolean ``"action_mask"`` ``[*B, |A|]`` (True = allowed) and
            restrict the policy to the allowed actions.
        qvalue_params: optional stack ``[N, ...]`` of ensemble parameters of ``qvalue_network``;
            when given, the sampler acts on ``min_i Q_i(s, ·)`` (pass
            ``SoftQLoss.qvalue_network_params`` when the loss holds ``num_qvalue_nets > 1``, since
            the Q module itself then keeps its untrained initial parameters). Referenced, not owned.

    ``forward`` samples under ``ExplorationType.RANDOM`` (what collectors use) and takes the greedy
    action ``argmax_a Q(s, a)`` (among the allowed ones) under ``DETERMINISTIC``, ``MODE`` and
    ``MEAN`` (a categorical has no mean action; its mode is the natural point estimate); it also
    writes ``log π(a|s)`` of the written action at ``"action_log_prob"``.

    Examples:
        >>> from torchrl.data import OneHot
        >>> from tensordict import TensorDict
        >>> from maxent_components.modules.qvalue import discrete_qvalue_network
        >>> qnet = discrete_qvalue_network(3, 4, num_cells=[8])
        >>> sampler = BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=0.5)
        >>> td = TensorDict({"observation": torch.randn(5, 3)}, batch_size=[5])
        >>> actions, log_prob = sampler.sample(td, 7)
        >>> actions.shape, log_prob.shape
        (torch.Size([7, 5, 4]), torch.Size([7, 5]))
    """

    @dataclass
    class _AcceptedKeys(PolicySampler._AcceptedKeys):
        """Keys of :class:`BoltzmannSampler`; ``action_value`` is where the Q network writes ``Q(s, ·)``."""

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
        self.use_action_mask = bool(use_action_mask)
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.encoding, self.num_actions, _ = discrete_action_encoding(action_spec)
        self.__dict__["qvalue_params"] = None
        self.set_qvalue_params(qvalue_params)

    def set_qvalue_params(self, qvalue_params: TensorDictBase | None):
        """Act on ``min_i Q_i`` of an ensemble ``[N, ...]`` of Q parameters (``None``: the Q module as it is).

        For when the sampler is built before the loss that creates the ensemble, e.g.
        ``sampler.set_qvalue_params(loss.qvalue_network_params)`` after
        ``loss = SoftQLoss(qnet, PolicySoftValue(qnet, sampler), num_qvalue_nets=2)``. The
        parameters stay referenced, not owned.
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

    def _refresh_keys(self) -> None:
        super()._refresh_keys()
        if self.use_action_mask:
            self.in_keys = [*self.in_keys, self.tensor_keys.action_mask]

    # -- the policy ---------------------------------------------------------------------------
    def _mask(self, tensordict: TensorDictBase) -> Tensor | None:
        if not self.use_action_mask:
            return None
        mask = tensordict.get(self.tensor_keys.action_mask, None)
        if mask is None:
            raise KeyError(
                f"use_action_mask=True but the tensordict has no {self.tensor_keys.action_mask!r} entry."
            )
        return mask

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
        """``log π(·|s) = log softmax(Q(s, ·)/α)`` ``[*B, |A|]``; masked actions get ``−inf``."""
        q = self.action_values(tensordict)
        return boltzmann_log_prob(q, _alpha_argument(self.temperature()), mask=self._mask(tensordict))

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``num_samples`` exact samples per state: actions ``[n, *B, ...]``, log-probs ``[n, *B]``."""
        num_samples = check_positive_int("num_samples", num_samples)
        log_probs = self.log_probs(tensordict)
        index = _categorical_draw(log_probs, num_samples, generator)
        log_prob = log_probs.expand(num_samples, *log_probs.shape).gather(-1, index.unsqueeze(-1))
        return encode_discrete_actions(index, self.action_spec), log_prob.squeeze(-1)

    def greedy(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """The greedy action ``argmax_a Q(s, a)`` (allowed actions only) and its ``log π`` under the policy."""
        q = self.action_values(tensordict)
        mask = self._mask(tensordict)
        log_probs = boltzmann_log_prob(q, _alpha_argument(self.temperature()), mask=mask)
        masked_q = q if mask is None else q.masked_fill(~mask.expand_as(q), -torch.inf)
        index = masked_q.argmax(-1)
        log_prob = log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return encode_discrete_actions(index, self.action_spec), log_prob

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if exploration_type() in (
            ExplorationType.DETERMINISTIC,
            ExplorationType.MODE,
            ExplorationType.MEAN,
        ):
            with torch.no_grad():
                action, log_prob = self.greedy(tensordict)
            tensordict.set(self.tensor_keys.action, action)
            tensordict.set(self.tensor_keys.action_log_prob, log_prob)
            return tensordict
        with torch.no_grad():
            return super().forward(tensordict)


def _alpha_argument(alpha: Tensor) -> Tensor | float:
    """A zero temperature as the float 0.0: the functional layer reads it as the greedy limit."""
    if alpha.ndim == 0 and not alpha.requires_grad and float(alpha) == 0.0:
        return 0.0
    return alpha


def _categorical_draw(log_probs: Tensor, num_samples: int, generator: torch.Generator | None) -> Tensor:
    """``num_samples`` indices per row of ``log_probs [*B, |A|]``, returned as ``[n, *B]``."""
    batch_shape = log_probs.shape[:-1]
    probs = log_probs.detach().exp().reshape(-1, log_probs.shape[-1])
    index = torch.multinomial(probs, num_samples, replacement=True, generator=generator)
    return index.T.reshape(num_samples, *batch_shape)
