"""Path consistency learning (PCL) and its unified variant, on trajectory slices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.objectives.common import LossModule

from maxent_components.checks import check_finite, data_checks
from maxent_components.functional import path_consistency
from maxent_components.modules.qfunction import QFunction
from maxent_components.objectives.binding import check_gamma
from maxent_components.samplers.base import PolicySampler
from maxent_components.soft_value.base import SoftValueEstimator
from maxent_components.specs import gather_action_values
from maxent_components.temperature import Temperature, as_temperature
from maxent_components.validation import FirstBatchCheck, check_network_inputs, check_transition_entries

__all__ = ["PathConsistencyLoss"]


class PathConsistencyLoss(LossModule):
    """Path consistency learning (Nachum et al., 2017, "Bridging the Gap Between Value and Policy
    Based Reinforcement Learning"): minimise ``½ C²`` of the soft path consistency of every suffix
    of trajectory slices,

    .. math:: C = −V(s_t) + γ^{d} V(s_{t+d}) + Σ_{j<d} γ^j \\big(r_{t+j} − α \\log π(a_{t+j}|s_{t+j})\\big)

    (:func:`~maxent_components.functional.path_consistency`; ``V(s_{t+d}) = 0`` after a termination,
    a time-limit truncation still bootstraps). It vanishes at the optimal soft value and policy.

    Two parametrisations:

    - **PCL** (``value_network`` given): a value network ``V_φ(s)`` and the actor's own ``log π_θ``.
      ``loss_value`` carries the gradient to ``φ`` (``log π`` detached) and ``loss_actor`` to ``θ``
      (``V`` detached): their sum has the gradient of ``½ C²`` in both, and one optimiser with a
      parameter group each (``parameter_groups``) gives them their own learning rates.
    - **Unified PCL** (``qvalue_network`` and ``soft_value`` given, section 5 of the paper): one soft
      Q function gives both, ``V(s) = α log ∫ exp(Q(s, a)/α) da`` (any soft-value estimator:
      exact for discrete actions) and ``log π(a|s) = (Q(s, a) − V(s))/α``; ``loss_qvalue`` trains Q.
      The actor (e.g. a ``BoltzmannSampler``) is bound to the Q network and acts with it.

    The input is a batch of slices ``[num_slices, L]`` (TorchRL's ``SliceSampler`` replay, reshaped)
    holding the observation, the action and under ``"next"`` the reward, ``terminated`` and the next
    observation. Slices lie inside one episode.

    Args:
        actor: the policy sampler that acts; with a value network it must give ``log π`` of taken
            actions (``CategoricalSampler``, ``GaussianSampler``).
        value_network: ``V_φ``, a tensordict module reading the observation and writing ``"state_value"``.

    Keyword Args:
        qvalue_network, soft_value: the unified parametrisation (instead of ``value_network``).
        alpha: the temperature (a float or a ``Temperature``).
        gamma: the discount in ``(0, 1]``.
    """

    @dataclass
    class _AcceptedKeys:
        """Keys of :class:`PathConsistencyLoss`.

        Attributes:
            observation: the state.
            action: the taken action.
            reward: the reward, under ``"next"``.
            terminated: the termination flag, under ``"next"``.
            value: where the value network writes ``V(s)``.
        """

        observation: NestedKey = "observation"
        action: NestedKey = "action"
        reward: NestedKey = "reward"
        terminated: NestedKey = "terminated"
        value: NestedKey = "state_value"

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys
    out_keys = ["loss_value", "loss_actor", "loss_qvalue", "consistency", "alpha", "entropy"]

    def __init__(
        self,
        actor: PolicySampler,
        value_network: TensorDictModuleBase | None = None,
        *,
        qvalue_network: TensorDictModuleBase | None = None,
        soft_value: SoftValueEstimator | None = None,
        alpha: float | Temperature,
        gamma: float = 0.99,
    ) -> None:
        if not isinstance(actor, PolicySampler):
            raise TypeError(f"actor must be a policy sampler, got {type(actor).__name__}.")
        unified = qvalue_network is not None or soft_value is not None
        if unified == (value_network is not None) or (unified and (qvalue_network is None or soft_value is None)):
            raise ValueError(
                "give either value_network (PCL) or both qvalue_network and soft_value (unified PCL)."
            )
        if not unified and not actor.has_log_prob:
            raise ValueError(f"actor ({type(actor).__name__}) has no tractable log-probability; PCL needs log π(a|s).")
        super().__init__()
        self._first_batch = FirstBatchCheck("PathConsistencyLoss", actor.action_spec)
        self.gamma = check_gamma(gamma)
        self.temperature = as_temperature(alpha)
        self.unified = unified
        self.actor = actor
        self.proposals = torch.nn.ModuleList()
        if unified:
            self.qvalue_network = qvalue_network
            qvalue = QFunction(qvalue_network)
            soft_value.bind(qvalue, self.temperature, actor=actor)
            actor.bind(qvalue.detached(), self.temperature)
            self.__dict__["soft_value"] = soft_value
        else:
            self.value_network = value_network
            actor.temperature = self.temperature

    def parameter_groups(self, *, lr_value=None, lr_actor=None, lr_alpha=None) -> list[dict]:
        """Parameter groups ``value`` (V, or Q when unified), ``actor`` and ``alpha``, each with its
        learning rate when given; empty groups are left out."""
        alpha = list(self.temperature.parameters())
        value = list((self.qvalue_network if self.unified else self.value_network).parameters())
        seen = {id(p) for p in alpha + value}
        actor = [p for p in self.actor.parameters() if id(p) not in seen]
        groups = []
        for name, params, lr in (("value", value, lr_value), ("actor", actor, lr_actor), ("alpha", alpha, lr_alpha)):
            if params:
                groups.append({"name": name, "params": params, **({"lr": lr} if lr is not None else {})})
        return groups

    # -- V and log π along the slices ---------------------------------------------------------------
    def _states(self, tensordict: TensorDictBase) -> TensorDictBase:
        """The ``L + 1`` states of every slice: ``[num_slices, L + 1]``."""
        key = self.tensor_keys.observation
        obs = torch.cat([tensordict.get(key), tensordict.get(("next", key))[:, -1:]], 1)
        return TensorDict({key: obs}, batch_size=obs.shape[:2])

    def _values_and_log_probs(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        states = self._states(tensordict)
        flat = tensordict.reshape(-1)
        action = flat.get(self.tensor_keys.action)
        alpha = self.temperature.value()
        if not self.unified:
            values = self.value_network(states.reshape(-1)).get(self.tensor_keys.value).reshape(states.batch_size)
            if callable(getattr(self.actor, "log_probs", None)):  # discrete: log π(·|s) at the taken action
                log_pi = gather_action_values(self.actor.log_probs(flat).unsqueeze(0), action, tuple(flat.batch_size))[0]
            else:
                log_pi = self.actor.log_prob(flat, action)
            return values, log_pi.reshape(tensordict.batch_size)
        qvalue = self.soft_value.qvalue
        values = self.soft_value.estimate(states.reshape(-1), qvalue, alpha)["soft_value"][0].reshape(states.batch_size)
        if qvalue.reads(self.tensor_keys.action):
            q = qvalue.state_action_values(flat, action.unsqueeze(0), action_key=self.tensor_keys.action)[0, 0]
        else:
            q = gather_action_values(qvalue.action_values(flat), action, tuple(flat.batch_size))[0]
        log_pi = (q - values[:, :-1].reshape(-1)) / alpha
        return values, log_pi.reshape(tensordict.batch_size)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if tensordict.batch_dims != 2:
            raise ValueError(
                f"PathConsistencyLoss needs slices [num_slices, L]; got batch size {tuple(tensordict.batch_size)}."
            )
        keys = self.tensor_keys
        network = self.qvalue_network if self.unified else self.value_network
        dtype = next(network.parameters()).dtype
        check_network_inputs("PathConsistencyLoss", tensordict, [keys.observation], keys.action, dtype)
        check_transition_entries("PathConsistencyLoss", tensordict, ("next", keys.reward), ("next", keys.terminated))
        return self._first_batch(tensordict, [keys.observation, keys.action], self._loss)

    def _loss(self, tensordict: TensorDictBase) -> TensorDictBase:
        keys = self.tensor_keys
        rewards = tensordict.get(("next", keys.reward)).squeeze(-1)
        terminated = tensordict.get(("next", keys.terminated)).squeeze(-1)[:, -1]
        values, log_pi = self._values_and_log_probs(tensordict)
        if data_checks():
            check_finite("V along the slices", values)
        alpha = self.temperature.value()

        def consistency(v: Tensor, lp: Tensor) -> Tensor:
            return path_consistency(v, rewards, lp, alpha, self.gamma, terminated=terminated)

        both = consistency(values, log_pi)
        out = {
            "consistency": both.detach().abs().mean(),
            "alpha": torch.as_tensor(alpha, dtype=rewards.dtype),
            "entropy": -log_pi.detach().mean(),
        }
        if self.unified:
            out["loss_qvalue"] = 0.5 * both.square().mean()
        else:
            out["loss_value"] = 0.5 * consistency(values, log_pi.detach()).square().mean()
            out["loss_actor"] = 0.5 * consistency(values.detach(), log_pi).square().mean()
        return TensorDict(out, batch_size=[])
