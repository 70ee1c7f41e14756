"""Amortized categorical policy trained towards the Boltzmann policy: the discrete-SAC actor.

The actor ``π_φ(·|s)`` minimises the KL divergence to the Boltzmann policy of the critic,
``KL(π_φ(·|s) ‖ exp((Q(s, ·) − V(s))/α)) = (1/α) Σ_a π_φ(a|s)(α log π_φ(a|s) − Q(s, a)) + V(s)/α``;
dropping the ``φ``-free ``V(s)`` and the factor ``1/α`` gives the discrete-SAC actor objective
``J_π(φ) = E_s[Σ_a π_φ(a|s)(α log π_φ(a|s) − Q(s, a))]`` (Christodoulou, 2019, "Soft Actor-Critic
for Discrete Action Settings", eq. 12). With a finite action set the expectation over ``a`` is an exact
sum, so no reparameterisation is needed. Its minimiser for fixed ``Q`` is ``softmax(Q/α)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor, nn
from torchrl.data import TensorSpec
from torchrl.envs.utils import ExplorationType, exploration_type
from torchrl.modules import MLP

from maxent_components.functional import check_finite, entropy
from maxent_components.samplers.base import PolicySampler, check_positive_int
from maxent_components.samplers.boltzmann import (
    _categorical_draw,
    discrete_action_encoding,
    encode_discrete_actions,
    ensemble_action_values,
)
from maxent_components.temperature import Temperature

__all__ = ["CategoricalSampler", "categorical_policy_network"]


def categorical_policy_network(
    observation_dim: int,
    num_actions: int,
    *,
    num_cells: Sequence[int] = (256, 256),
    activation_class: type[nn.Module] = nn.ReLU,
    observation_key: NestedKey = "observation",
    logits_key: NestedKey = "logits",
) -> TensorDictModule:
    """An MLP ``s ↦ logits(·|s) ∈ R^{|A|}`` reading ``"observation"`` and writing ``"logits"``.

    The layout :class:`CategoricalSampler` expects: unnormalised log-probabilities ``[*B, |A|]``.
    """
    mlp = MLP(
        in_features=observation_dim,
        out_features=num_actions,
        num_cells=list(num_cells),
        activation_class=activation_class,
    )
    return TensorDictModule(mlp, in_keys=[observation_key], out_keys=[logits_key])


class CategoricalSampler(PolicySampler):
    """A learned categorical policy ``π_φ(a|s) = softmax(logits_φ(s))_a`` (the discrete-SAC actor).

    Trained by :meth:`loss`,
    ``J_π(φ) = E_s[Σ_a π_φ(a|s)(α log π_φ(a|s) − Q(s, a))]`` (Christodoulou, 2019, eq. 12), whose
    minimiser for a fixed ``Q`` is the Boltzmann policy ``softmax(Q(s, ·)/α)``. ``Q`` enters without
    gradient (only ``φ`` is trained by this loss) and ``α`` is detached (the temperature is trained by
    its own term, ``temperature.loss(entropy)``). With a
    :class:`~maxent_components.soft_value.PolicySoftValue` on top it is discrete SAC.

    Args:
        qvalue_network: a tensordict module reading the observation and writing ``"action_value"``
            ``[*B, |A|]``; referenced, not owned.
        policy_network: a tensordict module reading the observation and writing unnormalised
            ``"logits"`` ``[*B, |A|]`` (see :func:`categorical_policy_network`); owned and trained
            by :meth:`loss`.

    Keyword Args:
        action_spec: a TorchRL ``OneHot`` (actions are one-hot vectors) or ``Categorical`` spec
            (actions are integer indices). Anything else raises ``ValueError``.
        alpha: the temperature, a float or a :class:`~maxent_components.temperature.Temperature`
            (``AutoTemperature`` adds ``loss_alpha`` to :meth:`loss`). Owned by the sampler.
        use_action_mask: read a boolean ``"action_mask"`` ``[*B, |A|]`` (True = allowed); masked
            actions get probability zero and contribute nothing to the loss.
        qvalue_params: optional stack ``[N, ...]`` of ensemble parameters of ``qvalue_network``
            (e.g. ``SoftQLoss.qvalue_network_params``). The actor then uses the pessimistic
            ``min_i Q_i(s, ·)``, as TorchRL's and the paper's discrete SAC do. Without it the actor
            uses the Q module as it is. Referenced, not owned.

    ``forward`` samples under ``ExplorationType.RANDOM`` and takes the most probable action
    ``argmax_a π_φ(a|s)`` under ``DETERMINISTIC``, ``MODE`` and ``MEAN``.

    Examples:
        >>> from torchrl.data import OneHot
        >>> from tensordict import TensorDict
        >>> from maxent_components.modules.qvalue import discrete_qvalue_network
        >>> qnet = discrete_qvalue_network(3, 4, num_cells=[8])
        >>> policy = categorical_policy_network(3, 4, num_cells=[8])
        >>> sampler = CategoricalSampler(qnet, policy, action_spec=OneHot(4), alpha=0.5)
        >>> td = TensorDict({"observation": torch.randn(5, 3)}, batch_size=[5])
        >>> losses = sampler.loss(td)
        >>> losses["loss_actor"].backward()
        >>> sorted(losses.keys())
        ['alpha', 'entropy', 'loss_actor']
    """

    @dataclass
    class _AcceptedKeys(PolicySampler._AcceptedKeys):
        """Keys of :class:`CategoricalSampler`.

        Attributes:
            action_value: where the Q network writes ``Q(s, ·)``.
            logits: where the policy network writes its logits.
        """

        action_value: NestedKey = "action_value"
        logits: NestedKey = "logits"

    default_keys = _AcceptedKeys

    def __init__(
        self,
        qvalue_network: TensorDictModuleBase,
        policy_network: TensorDictModuleBase,
        *,
        action_spec: TensorSpec,
        alpha: float | Temperature = 1.0,
        use_action_mask: bool = False,
        qvalue_params: TensorDictBase | None = None,
    ) -> None:
        self.use_action_mask = bool(use_action_mask)
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.encoding, self.num_actions, _ = discrete_action_encoding(action_spec)
        if not isinstance(policy_network, nn.Module):
            raise TypeError(
                f"policy_network must be a tensordict module writing logits, got "
                f"{type(policy_network).__name__}."
            )
        self.policy_network = policy_network
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
    def log_probs(self, tensordict: TensorDictBase) -> Tensor:
        """``log π_φ(·|s)`` ``[*B, |A|]`` (differentiable in ``φ``); masked actions get ``−inf``."""
        td = tensordict.select(*self.policy_network.in_keys, strict=False)
        logits = self.policy_network(td).get(self.tensor_keys.logits)
        if logits.shape[-1] != self.num_actions:
            raise ValueError(
                f"the policy network wrote {self.tensor_keys.logits!r} with last dimension "
                f"{logits.shape[-1]}, but action_spec has {self.num_actions} actions."
            )
        check_finite(f"policy logits {self.tensor_keys.logits!r}", logits)
        mask = self._mask(tensordict)
        if mask is not None:
            mask = mask.expand_as(logits)
            if not bool(mask.any(-1).all()):
                raise ValueError("action_mask excludes every action of some state; at least one must be allowed.")
            logits = logits.masked_fill(~mask, -torch.inf)
        return torch.log_softmax(logits, dim=-1)

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``num_samples`` actions per state from ``π_φ``: actions ``[n, *B, ...]``, log-probs ``[n, *B]``."""
        num_samples = check_positive_int("num_samples", num_samples)
        log_probs = self.log_probs(tensordict)
        index = _categorical_draw(log_probs, num_samples, generator)
        log_prob = log_probs.expand(num_samples, *log_probs.shape).gather(-1, index.unsqueeze(-1))
        return encode_discrete_actions(index, self.action_spec), log_prob.squeeze(-1)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if exploration_type() in (
            ExplorationType.DETERMINISTIC,
            ExplorationType.MODE,
            ExplorationType.MEAN,
        ):
            with torch.no_grad():
                log_probs = self.log_probs(tensordict)
                index = log_probs.argmax(-1)
                log_prob = log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)
            tensordict.set(self.tensor_keys.action, encode_discrete_actions(index, self.action_spec))
            tensordict.set(self.tensor_keys.action_log_prob, log_prob)
            return tensordict
        with torch.no_grad():
            return super().forward(tensordict)

    # -- training -----------------------------------------------------------------------------
    def action_values(self, tensordict: TensorDictBase) -> Tensor:
        """``Q(s, ·)`` without gradient (the ensemble minimum when ``qvalue_params`` is set)."""
        with torch.no_grad():
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

    def loss(self, tensordict: TensorDictBase) -> TensorDict:
        """Discrete-SAC actor loss and the temperature's own terms.

        ``loss_actor = mean_s Σ_a π_φ(a|s)(α log π_φ(a|s) − Q(s, a))`` (Christodoulou, 2019,
        eq. 12), plus ``temperature.loss(H)`` with the per-state entropies
        ``H(s) = −Σ_a π_φ(a|s) log π_φ(a|s)`` (``loss_alpha`` for an ``AutoTemperature``), plus
        detached diagnostics ``alpha`` and ``entropy`` (the batch mean).
        """
        log_pi = self.log_probs(tensordict)
        q = self.action_values(tensordict)
        alpha = self.temperature().detach()
        allowed = torch.isfinite(log_pi)
        # Zero-probability actions must contribute 0, not 0·(−inf) = NaN, in value and gradient.
        safe_log_pi = log_pi.masked_fill(~allowed, 0.0)
        pi = log_pi.exp()
        per_state = (pi * (alpha * safe_log_pi - q.masked_fill(~allowed, 0.0))).sum(-1)
        state_entropy = entropy(log_pi)
        out = TensorDict({"loss_actor": per_state.mean()}, batch_size=[])
        out.update(self.temperature.loss(state_entropy))
        out.set("alpha", alpha)
        out.set("entropy", state_entropy.detach().mean())
        return out
