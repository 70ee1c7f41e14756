"""Soft value of a given policy (the SAC and discrete-SAC critic target)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.data import Categorical, OneHot

from maxent_components.checks import check_finite, check_positive_int, data_checks
from maxent_components.functional import entropy, expected_soft_value
from maxent_components.modules.qfunction import QFunction
from maxent_components.soft_value.base import SoftValueEstimator
from maxent_components.temperature import Temperature

__all__ = ["PolicySoftValue"]


def _is_discrete(policy) -> bool:
    spec = getattr(policy, "action_spec", None)
    if spec is not None:
        return isinstance(spec, (OneHot, Categorical))
    return callable(getattr(policy, "log_probs", None))


class PolicySoftValue(SoftValueEstimator):
    """Soft value of a policy ``V^π(s) = E_{a∼π(·|s)}[Q(s, a) − α log π(a|s)]``.

    The state value of the soft policy-evaluation step of soft actor-critic (Haarnoja et al.,
    2018, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep Reinforcement Learning with a
    Stochastic Actor", eq. 3), estimated per state by

    - *discrete* ``π`` (a sampler with ``log_probs(td) -> [*B, |A|]``, e.g. ``BoltzmannSampler``
      or ``CategoricalSampler``): the exact sum ``Σ_a π(a|s)(Q(s, a) − α log π(a|s))``, as in
      discrete SAC (Christodoulou, 2019, "Soft Actor-Critic for Discrete Action Settings", eq. 10);
    - *continuous* ``π`` (a sampler whose ``sample`` returns log-probabilities, e.g.
      ``GaussianSampler``): the ``K``-sample Monte-Carlo average
      ``(1/K) Σ_k [Q(s, a_k) − α log π(a_k|s)]``, ``a_k ∼ π(·|s)``, unbiased for ``V^π(s)``.

    By the Gibbs variational principle ``V^π(s) ≤ V(s) = α log ∫ exp(Q(s, a)/α) da``, with equality
    iff ``π ∝ exp(Q/α)``: for the exact Boltzmann policy this estimator equals
    :class:`ExactSoftValue`.

    Samples are taken as the policy returns them (reparameterised for a Gaussian policy); use the
    estimator under ``torch.no_grad()`` for a critic target. The discrete policy's probabilities
    are likewise not detached.

    Args:
        qvalue_network: discrete: reads the observation, writes ``"action_value"`` ``[*B, |A|]``;
            continuous: reads the observation and ``"action"``, writes ``"state_action_value"``
            ``[*, 1]``. Referenced, not owned; omit it inside a ``SoftQLoss``.
        policy: the policy sampler; referenced, not owned. It is discrete when its ``action_spec``
            is ``OneHot`` or ``Categorical`` (then it must provide ``log_probs``). Omit it inside a
            ``SoftQLoss``: the loss's actor is the policy (SAC, discrete SAC).

    Keyword Args:
        alpha: the temperature ``α ≥ 0`` (float or Temperature); ``None`` (default) uses the
            policy's own ``temperature`` (inside a ``SoftQLoss``: the loss's).
        num_samples: ``K`` for continuous policies (unused for discrete ones, which are exact).
        generator: default ``torch.Generator`` passed to the policy's ``sample``.

    Reads ``"observation"``; writes ``"soft_value"`` and the policy entropy (discrete: exact;
    continuous: the estimate ``−(1/K) Σ_k log π(a_k|s)``) at ``"entropy"``, both ``[*B, 1]``, the
    entropy detached.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import OneHot
        >>> from maxent_components.modules.qvalue import discrete_qvalue_network
        >>> from maxent_components.samplers.boltzmann import BoltzmannSampler
        >>> from maxent_components.soft_value.exact import ExactSoftValue
        >>> qnet = discrete_qvalue_network(3, 4, num_cells=[16])
        >>> policy = BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=0.5)
        >>> td = TensorDict({"observation": torch.randn(8, 3)}, batch_size=[8])
        >>> v_pi = PolicySoftValue(qnet, policy)(td.clone())["soft_value"]
        >>> v = ExactSoftValue(qnet, alpha=0.5)(td.clone())["soft_value"]
        >>> torch.allclose(v_pi, v, atol=1e-5)  # the Boltzmann policy attains the soft value
        True
    """

    @dataclass
    class _AcceptedKeys(SoftValueEstimator._AcceptedKeys):
        """Keys of :class:`PolicySoftValue`.

        Attributes:
            observation: the state read by the Q network and the policy.
            action: where the (continuous) Q network reads the action.
            action_value: where a discrete Q network writes ``Q(s, ·)`` ``[*B, |A|]``.
            state_action_value: where a continuous Q network writes ``Q(s, a)``.
            soft_value: where ``V^π(s)`` ``[*B, 1]`` is written.
            entropy: where the policy entropy ``[*B, 1]`` is written.
        """

        action: NestedKey = "action"
        action_value: NestedKey = "action_value"
        state_action_value: NestedKey = "state_action_value"
        entropy: NestedKey = "entropy"

    default_keys = _AcceptedKeys

    def __init__(
        self,
        qvalue_network=None,
        policy=None,
        *,
        alpha: float | Temperature | None = None,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(qvalue_network, alpha=alpha, allow_zero_alpha=True, generator=generator)
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.__dict__["policy"] = None
        self.discrete = None
        if policy is not None:
            self._set_sampler(policy)

    sampler_slot = "policy"

    def _check_sampler(self, policy) -> None:
        discrete = _is_discrete(policy)
        if discrete and not callable(getattr(policy, "log_probs", None)):
            raise ValueError(
                f"policy ({type(policy).__name__}) acts on a discrete action spec but has no "
                f"log_probs(tensordict) method giving log π(·|s) [*B, |A|]."
            )
        if not discrete and not getattr(policy, "has_log_prob", True):
            raise ValueError(
                f"policy ({type(policy).__name__}) has no tractable log-probability; the policy "
                f"soft value needs log π(a|s) (use a GaussianSampler or CategoricalSampler)."
            )
        self.discrete = discrete

    def _temperature(self) -> Temperature:
        if self.temperature is None and isinstance(getattr(self.policy, "temperature", None), Temperature):
            return self.policy.temperature
        return super()._temperature()

    def _refresh_keys(self) -> None:
        super()._refresh_keys()
        self.out_keys = [*self.out_keys, self.tensor_keys.entropy]

    def estimate(
        self,
        tensordict: TensorDictBase,
        qvalue: QFunction,
        alpha: float | Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        policy = self._drawn_from()
        keys = self.tensor_keys
        if self.discrete:
            q = qvalue.action_values(tensordict, value_key=keys.action_value)  # [N, *B, |A|]
            # A shallow copy: whatever the policy writes while computing log π must not leak into the input.
            log_probs = policy.log_probs(tensordict.copy())
            if tuple(log_probs.shape) != tuple(q.shape[1:]):
                raise ValueError(
                    f"policy.log_probs returned shape {tuple(log_probs.shape)}, but the Q-values "
                    f"{keys.action_value!r} have shape {tuple(q.shape[1:])}."
                )
            # Actions the policy never takes (masked) may have any Q-value, -inf included.
            q = q.masked_fill(log_probs == -torch.inf, 0.0)
            if data_checks():
                check_finite(f"Q-values {keys.action_value!r}", q)
            value = expected_soft_value(q, log_probs, alpha)
            return {"soft_value": value, "entropy": entropy(log_probs).detach()}
        actions, log_pi = self._draw(
            policy, "policy", tensordict, self.num_samples, self._generator(generator),
            needed_for="the policy soft value needs log π(a|s)",
        )
        q = self._q_at_actions(tensordict, qvalue, actions)  # [N, K, *B]
        value = (q - alpha * log_pi).mean(1)
        return {"soft_value": value, "entropy": -log_pi.detach().mean(0)}

    def _write_extras(self, tensordict: TensorDictBase, out: dict[str, Tensor]) -> None:
        tensordict.set(self.tensor_keys.entropy, out["entropy"].unsqueeze(-1))

    def extra_repr(self) -> str:
        if self.policy is None:
            return f"{super().extra_repr()}, policy=the loss's actor"
        kind = "discrete (exact)" if self.discrete else f"continuous, num_samples={self.num_samples}"
        return f"{super().extra_repr()}, policy={type(self.policy).__name__}, {kind}"
