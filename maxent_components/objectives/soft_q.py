"""Soft Q-learning as one loss module that owns the Q ensemble, its targets, the actor and ``α``.

The soft Bellman operator ``(T Q)(s, a) = r + γ E_{s'}[V(s')]`` with
``V(s) = α log ∫ exp(Q(s, a)/α) da`` is a γ-contraction whose fixed point is the optimal soft
Q-function (Haarnoja et al., 2017, "Reinforcement Learning with Deep Energy-Based Policies",
theorem 2 and eq. 11). :class:`SoftQLoss` fits ``Q_θ`` to samples of that backup; *how* ``V(s')`` is
estimated is delegated to a soft-value estimator, and the policy that acts and is trained towards
``exp(Q/α)`` is the actor. The same loss therefore gives soft DQN, SQL, SAC and discrete SAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase, TensorDictParams, dispatch
from tensordict.utils import NestedKey
from torch import Tensor, nn
from torchrl.data import TensorSpec
from torchrl.objectives.common import LossModule
from torchrl.objectives.utils import (
    ValueEstimators,
    dispatch_value_estimator,
    distance_loss,
)

from maxent_components.checks import (
    check_choice,
    check_finite,
    check_positive_int,
    data_checks,
)
from maxent_components.modules.params import parameter_leaves
from maxent_components.modules.qfunction import ENSEMBLE_MODES, QFunction
from maxent_components.objectives.binding import (
    actor_spec,
    bind_parts,
    check_gamma,
    check_parts,
    parameter_groups,
)
from maxent_components.samplers.base import PolicySampler
from maxent_components.soft_value.base import SoftValueEstimator
from maxent_components.specs import discrete_action_encoding, gather_action_values
from maxent_components.temperature import Temperature
from maxent_components.validation import (
    FirstBatchCheck,
    check_network_inputs,
    check_transition_entries,
)

__all__ = ["SoftQLoss"]


class SoftQLoss(LossModule):
    """Soft Q-learning loss with a pluggable soft value, an optional actor and one temperature.

    .. math::

        L_Q(θ) = Σ_{i=1}^{N} E_{(s, a, r, s')}\\big[ℓ\\big(Q_{θ_i}(s, a) − y\\big)\\big], \\qquad
        y = r + γ (1 − d^{term}) \\; \\underset{i}{\\mathrm{red}} \\; V̂_{θ̄_i}(s'),

    where ``V̂`` is the plugged estimator of ``V(s') = α log ∫ exp(Q(s', a')/α) da'`` (Haarnoja et al.,
    2017, eq. 11, with their target network ``θ̄``) or of a policy's soft value ``V^π``, ``ℓ`` is the
    squared (``(Q − y)²``) or Huber loss, ``red`` is ``min`` or ``mean`` over the members' soft
    values and ``y`` is held fixed. With an actor, ``loss_actor`` is the actor's own objective
    against the online ensemble (``min_i Q_{θ_i}``, parameters detached); with a learned ``α``,
    ``loss_alpha`` drives the actor's entropy to its target. One optimiser on ``sum(loss_*)``
    trains every algorithm (soft DQN, discrete SAC, SQL, SAC and their variants: the table of
    compositions is in the guide's Concepts page).

    The loss owns the Q parameters (stacked ``[N, ...]`` for an ensemble), their targets and the
    temperature, and binds the estimator and the actor to them at construction: build those parts
    without a Q network and without ``α`` (a part built on another Q network, or a second
    temperature, is refused). Discounting and done-masking are TorchRL's value estimators' (TD(0) by
    default; only ``terminated`` stops bootstrapping); target updates are TorchRL's ``SoftUpdate`` /
    ``HardUpdate``. The forward pass reads no tensor value on the host (data checks only under
    :class:`~maxent_components.checks.set_data_checks`).

    Args:
        qvalue_network: discrete — reads the observation, writes ``"action_value"`` ``[*B, |A|]``
            (``Q(s, a)`` is gathered with the taken action, one-hot or index); continuous — reads
            the observation and ``"action"``, writes ``"state_action_value"`` ``[*B, 1]``.
        soft_value: a :class:`~maxent_components.soft_value.SoftValueEstimator` built without a Q
            network (``ExactSoftValue()``, ``UniformSoftValue(action_spec=...)``, ``PolicySoftValue()``
            whose policy is the actor, ``ImportanceSoftValue(proposal)``).

    Keyword Args:
        actor: the policy sampler that acts (``loss.actor`` drives a collector) and, when amortized,
            is trained by ``loss_actor``; its parameters are part of ``loss.parameters()``.
        alpha: the temperature: a float or a :class:`~maxent_components.temperature.Temperature`
            (``AutoTemperature`` adds ``loss_alpha``). Required unless a part was built with one.
        num_qvalue_nets: ensemble size ``N ≥ 1``.
        target_reduction: ``"min"`` (pessimistic, as clipped double-Q) or ``"mean"`` over the
            members' soft values ``V̂_{θ̄_i}(s')`` (each from its own target Q).
        loss_function: ``"l2"`` or ``"smooth_l1"``.
        action_spec: optional discrete action spec deciding the encoding of the taken action
            (``OneHot`` → one-hot, ``Categorical`` → index); without it the encoding is read off the
            action's shape.
        priority_key: where the per-sample ``|Q − y|`` (max over members, detached) is written for
            prioritised replay.
        ensemble_mode: ``"auto"`` (on the CPU ``"loop"`` on one thread and ``"bmm"`` on several,
            ``"vmap"`` on accelerators), ``"vmap"``
            (one ``torch.vmap`` over the members), ``"loop"`` (one call per member) or ``"bmm"``
            (an MLP's layers as one batched matrix multiply over the members).

    Returns (``forward``): a fresh ``TensorDict`` (batch size ``[]``) with ``loss_qvalue``,
    ``loss_actor`` (actor with a loss), ``loss_alpha`` (learned ``α``), ``loss_proposal`` (an
    amortized proposal of the estimator that is not the actor) and the detached diagnostics
    ``soft_value``, ``td_error``, ``alpha``, ``ess`` and the actor's (``entropy``, ``bandwidth``).

    Examples:
        >>> from torchrl.data import OneHot
        >>> from torchrl.objectives import SoftUpdate
        >>> from maxent_components.modules.qvalue import discrete_qvalue_network
        >>> from maxent_components.samplers import BoltzmannSampler
        >>> from maxent_components.soft_value import ExactSoftValue
        >>> qnet = discrete_qvalue_network(4, 2, num_cells=[16])
        >>> loss = SoftQLoss(qnet, ExactSoftValue(), actor=BoltzmannSampler(action_spec=OneHot(2)),
        ...                  alpha=0.1, num_qvalue_nets=2)
        >>> loss.make_value_estimator(gamma=0.9)  # doctest: +ELLIPSIS
        SoftQLoss(...)
        >>> target_updater = SoftUpdate(loss, tau=0.005)
        >>> td = TensorDict({
        ...     "observation": torch.randn(8, 4),
        ...     "action": torch.nn.functional.one_hot(torch.randint(2, (8,)), 2),
        ...     "next": {"observation": torch.randn(8, 4), "reward": torch.randn(8, 1),
        ...              "done": torch.zeros(8, 1, dtype=torch.bool),
        ...              "terminated": torch.zeros(8, 1, dtype=torch.bool)},
        ... }, batch_size=[8])
        >>> out = loss(td)
        >>> sum(out[k] for k in out.keys() if k.startswith("loss_")).backward()
        >>> sorted(out.keys())
        ['alpha', 'loss_qvalue', 'soft_value', 'td_error']
        >>> loss.actor(td.select("observation"))["action"].shape  # acts with min over the ensemble
        torch.Size([8, 2])
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable tensordict keys of :class:`SoftQLoss` (change them with ``set_keys``).

        Attributes:
            observation: the state (what is read is given by the Q network's ``in_keys``).
            action: the taken action.
            reward: the reward, read under ``"next"``.
            done: the done flag, read under ``"next"``.
            terminated: the termination flag, read under ``"next"``; only it stops bootstrapping.
            action_value: where a discrete Q network writes ``Q(s, ·)``.
            state_action_value: where a continuous Q network writes ``Q(s, a)``.
            priority: where the per-sample TD error is written for prioritised replay.
            priority_weight: optional importance weights of a prioritised sampler.
        """

        observation: NestedKey = "observation"
        action: NestedKey = "action"
        reward: NestedKey = "reward"
        done: NestedKey = "done"
        terminated: NestedKey = "terminated"
        action_value: NestedKey = "action_value"
        state_action_value: NestedKey = "state_action_value"
        priority: NestedKey = "td_error"
        priority_weight: NestedKey = "priority_weight"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    default_value_estimator = ValueEstimators.TD0
    SUPPORTED_VALUE_ESTIMATORS = (ValueEstimators.TD0, ValueEstimators.TD1, ValueEstimators.TDLambda)
    out_keys = ["loss_qvalue", "loss_actor", "loss_alpha", "loss_proposal", "soft_value", "td_error", "alpha"]

    qvalue_network: TensorDictModuleBase
    qvalue_network_params: TensorDictParams
    target_qvalue_network_params: TensorDictParams

    def __init__(
        self,
        qvalue_network: TensorDictModuleBase,
        soft_value: SoftValueEstimator,
        *,
        actor: PolicySampler | None = None,
        alpha: float | Temperature | None = None,
        num_qvalue_nets: int = 1,
        target_reduction: Literal["min", "mean"] = "min",
        loss_function: Literal["l2", "smooth_l1"] = "l2",
        action_spec: TensorSpec | None = None,
        priority_key: NestedKey = "td_error",
        ensemble_mode: Literal["auto", "vmap", "loop", "bmm"] = "auto",
    ) -> None:
        num_qvalue_nets = check_positive_int("num_qvalue_nets", num_qvalue_nets)
        check_choice("target_reduction", target_reduction, ("min", "mean"))
        check_choice("loss_function", loss_function, ("l2", "smooth_l1"))
        check_choice("ensemble_mode", ensemble_mode, ENSEMBLE_MODES)
        temperature = check_parts(qvalue_network, soft_value, actor, alpha)
        self._in_keys = None
        super().__init__()
        self.num_qvalue_nets = num_qvalue_nets
        self.target_reduction = target_reduction
        self.loss_function = loss_function
        self.ensemble_mode = ensemble_mode
        self.reduction = "mean"
        self._encoding = None if action_spec is None else discrete_action_encoding(action_spec)[0]
        self._first_batch = FirstBatchCheck("SoftQLoss", actor_spec(actor, soft_value) if action_spec is None else action_spec)
        self.convert_to_functional(
            qvalue_network,
            "qvalue_network",
            expand_dim=num_qvalue_nets if num_qvalue_nets > 1 else None,
            create_target_params=True,
        )
        self.temperature, self.soft_value, self.actor = temperature, soft_value, actor
        online = self._qfunction("qvalue_network_params", detach=True)
        self.proposals = nn.ModuleList(bind_parts(soft_value, actor, online, temperature, reduction=target_reduction))
        self.set_keys(priority=priority_key)
        self.make_value_estimator(ValueEstimators.TD0)

    # -- Q evaluation ---------------------------------------------------------------------------
    def _qfunction(self, params_name: str, *, detach: bool = False) -> QFunction:
        """The Q network under the loss's online or target parameters (looked up at each call, so
        a device move or a target update is always seen)."""
        return QFunction(self.qvalue_network, getattr(self, params_name), detach=detach, mode=self.ensemble_mode)

    def qfunction(self, *, target: bool = False) -> QFunction:
        """The online (or target) Q ensemble as a :class:`QFunction`, detached: for plots and diagnostics."""
        name = "target_qvalue_network_params" if target else "qvalue_network_params"
        return self._qfunction(name, detach=True)

    def parameter_groups(
        self, *, lr_qvalue: float | None = None, lr_actor: float | None = None, lr_alpha: float | None = None
    ) -> list[dict]:
        """Optimiser parameter groups ``qvalue``, ``actor`` (actor and trained proposals) and ``alpha``,
        each with its learning rate when given (else the optimiser's default); empty groups are left out.

        Example: ``torch.optim.Adam(loss.parameter_groups(lr_actor=1e-4), lr=3e-4)``.
        """
        return parameter_groups(self, lr_qvalue=lr_qvalue, lr_actor=lr_actor, lr_alpha=lr_alpha)

    # -- keys and estimators ------------------------------------------------------------------
    def _set_in_keys(self) -> None:
        keys = self.tensor_keys
        soft_value_in = getattr(self.soft_value, "in_keys", [keys.observation])
        in_keys = [
            keys.action,
            *[("next", *_as_tuple(key)) for key in (keys.reward, keys.done, keys.terminated)],
            *self.qvalue_network.in_keys,
            *[("next", *_as_tuple(key)) for key in soft_value_in],
        ]
        self._in_keys = list(dict.fromkeys(in_keys))

    @property
    def in_keys(self):
        if self._in_keys is None:
            self._set_in_keys()
        return self._in_keys

    @in_keys.setter
    def in_keys(self, values):
        self._in_keys = values

    def make_value_estimator(self, value_type: ValueEstimators | None = None, **hyperparams):
        """Build the TorchRL estimator that discounts and masks (TD0 by default, TD1, TDLambda)."""
        if "gamma" in hyperparams:
            hyperparams["gamma"] = check_gamma(hyperparams["gamma"])
        value_type, hp = self._prepare_value_estimator_kwargs(value_type, **hyperparams)
        if value_type is None:
            return self
        hp["gamma"] = self.gamma = check_gamma(hp["gamma"])
        tensor_keys = {name: getattr(self.tensor_keys, name) for name in ("reward", "done", "terminated")}
        dispatch_value_estimator(
            self, value_type, supported=self.SUPPORTED_VALUE_ESTIMATORS, tensor_keys=tensor_keys,
            value_network=None, **hp,
        )
        return self

    def _make_vmap(self) -> None:
        """Nothing to cache: the members are evaluated by :class:`QFunction`."""

    # -- the loss -----------------------------------------------------------------------------
    def _chosen_q(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor | None]:
        """``Q_{θ_i}(s, a)`` of every member at the taken action, shape ``[N, *B]``, and for a discrete
        Q network every member's ``Q_{θ_i}(s, ·)`` ``[N, *B, |A|]`` it was gathered from (else ``None``)."""
        keys = self.tensor_keys
        online = self._qfunction("qvalue_network_params")
        action = tensordict.get(keys.action)
        if online.reads(keys.action):  # continuous: Q(s, a) at the taken action
            return online.state_action_values(
                tensordict, action.unsqueeze(0), action_key=keys.action, value_key=keys.state_action_value
            ).squeeze(1), None
        q = online.action_values(tensordict, value_key=keys.action_value)
        if data_checks():
            check_finite(f"Q-values {keys.action_value!r}", q)
        return gather_action_values(q, action, tuple(tensordict.batch_size), encoding=self._encoding, key=keys.action), q

    def target_value(self, tensordict: TensorDictBase) -> tuple[Tensor, dict[str, Tensor]]:
        """The TD target ``y`` ``[*B]`` (no gradient) and per-sample ``soft_value`` (and ``ess``)."""
        batch = tuple(tensordict.batch_size)
        with torch.no_grad():
            estimate = self.soft_value.estimate(
                tensordict.get("next"),
                self._qfunction("target_qvalue_network_params"),
                self.soft_value.alpha_value(),
                generator=self.soft_value.generator,
            )
            members = estimate["soft_value"]
            if tuple(members.shape) != (self.num_qvalue_nets, *batch):
                raise ValueError(
                    f"{type(self.soft_value).__name__}.estimate returned shape {tuple(members.shape)}; "
                    f"expected [N, *B] = {[self.num_qvalue_nets, *batch]}."
                )
            next_value = members.amin(0) if self.target_reduction == "min" else members.mean(0)
            if data_checks():
                check_finite("soft value V(s') of the next state under the target Q", next_value)
            target = self.value_estimator.value_estimate(tensordict, next_value=next_value.unsqueeze(-1)).squeeze(-1)
        info = {"soft_value": next_value}
        if "ess" in estimate:
            info["ess"] = estimate["ess"].mean(0)
        return target, info

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """The losses of a batch (values checked on the first batch, see ``validation.FirstBatchCheck``)."""
        self._check_inputs(tensordict)
        return self._first_batch(tensordict, self.in_keys, self._loss)

    def _loss(self, tensordict: TensorDictBase) -> TensorDictBase:
        target, info = self.target_value(tensordict)
        q, action_values = self._chosen_q(tensordict)
        loss = distance_loss(q, target.expand_as(q), loss_function=self.loss_function).sum(0)
        weights = self._maybe_get_priority_weight(tensordict)
        loss = self._reduce_loss(loss, tensordict=tensordict, weights=weights)
        td_error = (q.detach() - target).abs().amax(0)
        tensordict.set(self.tensor_keys.priority, td_error)
        out = TensorDict(
            {
                "loss_qvalue": loss,
                "soft_value": info["soft_value"].mean(),
                "td_error": td_error.mean(),
                "alpha": torch.as_tensor(self.temperature.value(), dtype=loss.dtype),
            },
            batch_size=[],
        )
        if "ess" in info:
            out.set("ess", info["ess"].mean())
        online = self._qfunction("qvalue_network_params", detach=True)
        if action_values is not None:  # the actor's loss reuses the TD loss's Q(s, ·)
            online = online.knowing(tensordict, action_values, value_key=self.tensor_keys.action_value)
        if self.actor is not None and self.actor.has_loss:
            actor_out = self.actor.loss(tensordict, qvalue=online)
            for key, value in actor_out.items():
                if key != "alpha":
                    out.set(key, value)
            if self.temperature.learned:
                out.update(self.temperature.loss(actor_out["entropy"]))
        if len(self.proposals):
            out.set("loss_proposal", sum(p.loss(tensordict, qvalue=online)["loss_actor"] for p in self.proposals))
        return out

    def _check_inputs(self, tensordict: TensorDictBase) -> None:
        """Keys, shapes and dtypes on every call (free to read); values in :meth:`forward`."""
        keys = self.tensor_keys
        dtype = parameter_leaves(self.qvalue_network_params)[1][0].dtype
        check_network_inputs("SoftQLoss", tensordict, self.qvalue_network.in_keys, keys.action, dtype)
        reward, done, terminated = [("next", *_as_tuple(k)) for k in (keys.reward, keys.done, keys.terminated)]
        check_transition_entries("SoftQLoss", tensordict, reward, done, optional=terminated)


def _as_tuple(key: NestedKey) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(key)
