"""What every soft-value estimator shares: keys, the referenced Q and temperature, sampling checks.

An estimator reads the state and estimates the soft value ``V(s) = α log ∫_A exp(Q(s, a)/α) da``
(or a policy's soft value ``V^π``). Its computation is :meth:`SoftValueEstimator.estimate`, which
takes the Q function and ``α`` *explicitly*: a :class:`~maxent_components.modules.qfunction.QFunction`
(one network under its own, one, or an ensemble of parameter sets) and returns one estimate per
member, ``[N, *B]``. That is how a loss evaluates its target parameters: it passes them.

``forward(td)`` is the standalone use: it estimates with the Q network the estimator was built on
(or bound to by a loss), reduces the members and writes ``"soft_value"`` ``[*B, 1]``. The estimator
*owns nothing*: the Q network, the samplers it draws from and the temperature are referenced, so
their parameters belong to whoever trains them.

Continuous estimators evaluate ``K`` actions per state as one batched call of the Q network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components.checks import check_choice, check_finite, data_checks
from maxent_components.functional import check_alpha
from maxent_components.modules.qfunction import QFunction, ReadsQ
from maxent_components.temperature import FixedTemperature, Temperature, as_temperature

__all__ = ["SoftValueEstimator"]


class SoftValueEstimator(ReadsQ, TensorDictModuleBase):
    """Base of the soft-value estimators.

    Subclasses declare their keys in a nested ``_AcceptedKeys`` dataclass (every one has at least
    ``observation`` and ``soft_value``) and implement :meth:`estimate`.

    Args:
        qvalue_network: the Q network, referenced (not registered); omit it inside a loss.

    Keyword Args:
        alpha: a float or a :class:`~maxent_components.temperature.Temperature`, referenced; omit it
            inside a loss, which binds its own.
        allow_zero_alpha: whether ``α = 0`` is meaningful for this estimator.
        generator: default ``torch.Generator`` for sampling when ``forward`` gets none.
    """

    @dataclass
    class _AcceptedKeys:
        """Keys read and written by an estimator.

        Attributes:
            observation: the state read by the Q network (and the sampler, if any).
            soft_value: where the estimate ``[*B, 1]`` is written.
        """

        observation: NestedKey = "observation"
        soft_value: NestedKey = "soft_value"

    default_keys = _AcceptedKeys
    #: the action spaces the estimator works in (``"discrete"``: a finite set; ``"continuous"``: a box)
    action_spaces: tuple[str, ...] = ("discrete", "continuous")

    def __init__(
        self,
        qvalue_network=None,
        *,
        alpha: float | Temperature | None,
        allow_zero_alpha: bool,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
        self._allow_zero_alpha = allow_zero_alpha
        temperature = None if alpha is None else as_temperature(alpha)
        if isinstance(temperature, FixedTemperature):
            check_alpha(temperature.value(), allow_zero=allow_zero_alpha)
        # Referenced, not owned: Q parameters belong to the loss that trains them and a shared
        # temperature to the loss or sampler that learns it.
        self.__dict__["qvalue"] = None if qvalue_network is None else QFunction(qvalue_network)
        self.__dict__["temperature"] = temperature
        self._reduction = "min"
        self.generator = generator
        self._tensor_keys = self._AcceptedKeys()
        self._refresh_keys()

    # -- what the estimator reads -----------------------------------------------------------------
    #: the attribute holding the sampler the estimator draws from (``"policy"``, ``"proposal"``)
    sampler_slot: str | None = None

    def samplers(self) -> tuple:
        """The samplers this estimator draws from (its policy or proposal); none by default."""
        sampler = None if self.sampler_slot is None else getattr(self, self.sampler_slot)
        return () if sampler is None else (sampler,)

    def _set_sampler(self, sampler) -> None:
        """Validate ``sampler`` (:meth:`_check_sampler`) and reference it in :attr:`sampler_slot`."""
        if not callable(getattr(sampler, "sample", None)):
            raise TypeError(
                f"{self.sampler_slot} must be a sampler with sample(tensordict, num_samples, generator=...), "
                f"got {type(sampler).__name__}."
            )
        self._check_sampler(sampler)
        # Referenced, not owned: the sampler (often the actor) is trained by its own loss.
        self.__dict__[self.sampler_slot] = sampler

    def _check_sampler(self, sampler) -> None:
        """Raise if ``sampler`` cannot serve this estimator (nothing to check by default)."""

    def bind(
        self,
        qvalue: QFunction,
        temperature: Temperature | None,
        *,
        actor=None,
        reduction: Literal["min", "mean"] = "min",
    ) -> SoftValueEstimator:
        """Read ``qvalue`` and ``temperature`` from now on; reduce members with ``reduction`` in ``forward``.

        Called by :class:`~maxent_components.objectives.SoftQLoss` at construction. An estimator
        whose policy or proposal was left out draws from ``actor``.
        """
        if not isinstance(qvalue, QFunction):
            raise TypeError(f"qvalue must be a QFunction, got {type(qvalue).__name__}.")
        slot = self.sampler_slot
        if slot is not None and getattr(self, slot) is None:
            if actor is None:
                name = type(self).__name__
                raise ValueError(
                    f"{name} has no {slot}: give it one ({name}({slot}=...)) or give the loss an actor, "
                    f"which is then the {slot}."
                )
            self._set_sampler(actor)
        self.__dict__["qvalue"] = qvalue
        if temperature is not None:
            self.__dict__["temperature"] = temperature
        self._reduction = check_choice("reduction", reduction, ("min", "mean"))
        return self

    def _drawn_from(self):
        """The sampler of :attr:`sampler_slot`, or a ``RuntimeError`` when there is none yet."""
        sampler = getattr(self, self.sampler_slot)
        if sampler is None:
            raise RuntimeError(
                f"{type(self).__name__} has no {self.sampler_slot}: pass {self.sampler_slot}=... or put it "
                f"in a SoftQLoss with an actor."
            )
        return sampler

    def _q_at_actions(self, tensordict: TensorDictBase, qvalue: QFunction, actions: Tensor) -> Tensor:
        """``Q_i(s, a_k)`` of every member at sampled actions ``[K, *B, *A]``: ``[N, K, *B]`` (finite
        under ``set_data_checks``); the first step of every sample-based estimate."""
        keys = self.tensor_keys
        q = qvalue.state_action_values(tensordict, actions, action_key=keys.action, value_key=keys.state_action_value)
        if data_checks():
            check_finite(f"Q-values {keys.state_action_value!r}", q)
        return q

    # -- keys (set_keys and tensor_keys: ReadsQ) -------------------------------------------------
    def _refresh_keys(self) -> None:
        keys = self._tensor_keys
        self.in_keys = [keys.observation]
        self.out_keys = [keys.soft_value]

    # -- temperature and randomness -----------------------------------------------------------
    @property
    def allows_zero_alpha(self) -> bool:
        """Whether ``α = 0`` is meaningful for this estimator (its greedy limit is defined)."""
        return self._allow_zero_alpha

    @property
    def alpha(self) -> Tensor:
        """The current temperature ``α`` (detached: an estimate is a target, not a way to train ``α``)."""
        return self._temperature().alpha

    def alpha_value(self) -> float | Tensor:
        """``α`` to compute with: a checked float when constant, else the detached tensor (no device read)."""
        alpha = self._temperature().value()
        if not isinstance(alpha, Tensor):
            check_alpha(alpha, allow_zero=self._allow_zero_alpha)
        elif data_checks():
            check_alpha(alpha, allow_zero=self._allow_zero_alpha)
        return alpha

    def _generator(self, generator: torch.Generator | None) -> torch.Generator | None:
        return generator if generator is not None else self.generator

    # -- the estimate -------------------------------------------------------------------------
    def estimate(
        self,
        tensordict: TensorDictBase,
        qvalue: QFunction,
        alpha: float | Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The estimate under ``qvalue`` (every member) at temperature ``alpha``.

        Returns ``{"soft_value": [N, *B]}`` and, where the estimator has them, ``"ess"`` ``[N, *B]``
        and ``"entropy"`` ``[*B]`` (detached). ``N`` is ``qvalue.num_members``.
        """
        raise NotImplementedError(f"{type(self).__name__} must define estimate(tensordict, qvalue, alpha).")

    def forward(
        self, tensordict: TensorDictBase, *, generator: torch.Generator | None = None
    ) -> TensorDictBase:
        """Write the estimate ``[*B, 1]`` (members reduced by ``min``, or as the binding loss says)."""
        out = self.estimate(tensordict, self._q(), self.alpha_value(), generator=self._generator(generator))
        reduce = (lambda x: x.amin(0)) if self._reduction == "min" else (lambda x: x.mean(0))
        tensordict.set(self.tensor_keys.soft_value, reduce(out["soft_value"]).unsqueeze(-1))
        self._write_extras(tensordict, out)
        return tensordict

    def _write_extras(self, tensordict: TensorDictBase, out: dict[str, Tensor]) -> None:
        """Write the diagnostics of :meth:`estimate` besides the value (none by default)."""

    def _draw(
        self,
        sampler,
        role: str,
        tensordict: TensorDictBase,
        num_samples: int,
        generator: torch.Generator | None,
        *,
        needed_for: str,
    ) -> tuple[Tensor, Tensor]:
        """``K`` actions ``[K, *B, *A]`` and their log-probabilities ``[K, *B]`` from ``sampler``."""
        with set_exploration_type(ExplorationType.RANDOM):
            actions, log_prob = sampler.sample(tensordict, num_samples, generator=generator)
        if log_prob is None:
            raise ValueError(
                f"{role} ({type(sampler).__name__}) returned no log-probabilities; {needed_for}."
            )
        expected = (num_samples, *tensordict.batch_size)
        if tuple(log_prob.shape) != expected:
            raise ValueError(
                f"{role} returned log-probabilities of shape {tuple(log_prob.shape)}; expected "
                f"[K, *B] = {list(expected)}."
            )
        if data_checks():
            check_finite(f"{role} log-probabilities", log_prob)
        return actions, log_prob

    def extra_repr(self) -> str:
        temperature = self.temperature
        if temperature is None:
            shown = "unbound"
        elif isinstance(temperature, FixedTemperature):
            shown = f"{temperature.value():.4g}"
        else:
            shown = type(temperature).__name__
        return f"alpha={shown}"
