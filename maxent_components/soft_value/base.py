"""What every soft-value estimator shares: keys, the temperature, and batched Q evaluation.

An estimator reads the state and writes an estimate of the soft value
``V(s) = α log ∫_A exp(Q(s, a)/α) da`` (or of a policy's soft value ``V^π``) at ``"soft_value"``,
shape ``[*B, 1]``. It *owns nothing*: the Q network, the proposal or policy sampler and a
``Temperature`` are referenced outside ``nn.Module`` registration, as TorchRL losses reference
their networks, so that the parameters belong to the component that trains them and an estimator
evaluates whatever parameters are currently loaded into the Q network (a loss swaps in its target
parameters with ``params.to_module(qvalue_network)`` around the call).

The Q network is always called once per ``forward``: continuous estimators evaluate ``K`` actions
per state as one flat batch of ``K·N`` state-action pairs (``N = prod(B)``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components.functional import _is_traced, check_alpha, check_finite
from maxent_components.temperature import FixedTemperature, Temperature, as_temperature

__all__ = ["SoftValueEstimator", "check_num_samples"]


def check_num_samples(num_samples: int) -> int:
    """Return ``num_samples`` as an int, raising a ``ValueError`` unless it is an integer >= 1."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    return int(num_samples)


class SoftValueEstimator(TensorDictModuleBase):
    """Base of the soft-value estimators.

    Subclasses declare their keys in a nested ``_AcceptedKeys`` dataclass (every one has at least
    ``observation`` and ``soft_value``) and implement ``forward(tensordict, *, generator=None)``.

    Args:
        qvalue_network: the Q network, referenced (not registered).

    Keyword Args:
        alpha: a float or a :class:`~maxent_components.temperature.Temperature`, referenced.
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

    def __init__(
        self,
        qvalue_network,
        *,
        alpha: float | Temperature,
        allow_zero_alpha: bool,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if qvalue_network is None:
            raise ValueError("qvalue_network is required (a tensordict module computing Q).")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
        self._allow_zero_alpha = allow_zero_alpha
        temperature = as_temperature(alpha)
        # A learned or annealed α may legitimately move, so only its current value is checked here;
        # forward re-checks the value it uses.
        check_alpha(temperature.alpha, allow_zero=allow_zero_alpha)
        # Referenced, not owned: Q parameters belong to the loss that trains them and a shared
        # temperature to the sampler or loss that learns it.
        self.__dict__["qvalue_network"] = qvalue_network
        self.__dict__["temperature"] = temperature
        self.generator = generator
        self._tensor_keys = self._AcceptedKeys()
        self._refresh_keys()

    # -- keys ---------------------------------------------------------------------------------
    @property
    def tensor_keys(self) -> _AcceptedKeys:
        return self._tensor_keys

    def set_keys(self, **kwargs: NestedKey) -> SoftValueEstimator:
        """Rename keys, e.g. ``estimator.set_keys(observation=("agent", "obs"))``.

        Unknown names raise a ``ValueError`` listing the valid ones.
        """
        valid = {f.name for f in fields(self._AcceptedKeys)}
        for name in kwargs:
            if name not in valid:
                raise ValueError(
                    f"{name!r} is not a key of {type(self).__name__}; valid keys: {sorted(valid)}."
                )
        for name, value in kwargs.items():
            if not isinstance(value, (str, tuple)) or (
                isinstance(value, tuple) and not all(isinstance(v, str) for v in value)
            ):
                raise TypeError(f"key {name!r} must be a string or a tuple of strings, got {value!r}.")
            setattr(self._tensor_keys, name, value)
        self._refresh_keys()
        return self

    def _refresh_keys(self) -> None:
        keys = self._tensor_keys
        self.in_keys = [keys.observation]
        self.out_keys = [keys.soft_value]

    # -- temperature and randomness -----------------------------------------------------------
    @property
    def alpha(self) -> Tensor:
        """The current temperature ``α`` (detached: an estimate is a target, not a way to train ``α``)."""
        return self.temperature.alpha

    def _alpha_value(self) -> float | Tensor:
        """``α`` as a validated Python float (a tensor only under ``vmap``/``compile`` tracing of ``α``).

        One host read per call, which the validation needs anyway; a float also takes the cheaper
        scalar path of the functional algebra.
        """
        alpha = self.temperature.alpha
        if _is_traced(alpha):
            return alpha
        value = float(alpha)
        check_alpha(value, allow_zero=self._allow_zero_alpha)
        return value

    def _generator(self, generator: torch.Generator | None) -> torch.Generator | None:
        return generator if generator is not None else self.generator

    # -- Q evaluation -------------------------------------------------------------------------
    def _state_keys(self, exclude: NestedKey | None = None) -> list[NestedKey]:
        """The entries the Q network reads besides the action: the observation first."""
        keys = [self.tensor_keys.observation]
        for key in getattr(self.qvalue_network, "in_keys", ()):
            if key != exclude and key not in keys:
                keys.append(key)
        return keys

    def _get(self, tensordict: TensorDictBase, key: NestedKey, what: str):
        value = tensordict.get(key, None)
        if value is None:
            raise KeyError(
                f"{type(self).__name__}: the input tensordict has no {key!r} entry ({what}); "
                f"rename keys with set_keys(...) if it lives elsewhere."
            )
        return value

    def _check_q(self, q: Tensor, key: NestedKey, expected: tuple[int, ...], layout: str) -> None:
        if tuple(q.shape) != expected:
            raise ValueError(
                f"qvalue_network wrote {key!r} of shape {tuple(q.shape)}; expected {list(expected)} "
                f"({layout})."
            )
        check_finite(f"qvalue_network output {key!r}", q)

    def _action_values(self, tensordict: TensorDictBase, key: NestedKey) -> Tensor:
        """``Q(s, ·)`` ``[*B, |A|]`` from a discrete Q network, evaluated on a copy of the inputs."""
        inputs = TensorDict(batch_size=tensordict.batch_size, device=tensordict.device)
        for k in self._state_keys():
            inputs.set(k, self._get(tensordict, k, "read by qvalue_network"))
        out = self.qvalue_network(inputs)
        out = inputs if out is None else out
        q = out.get(key, None)
        if q is None:
            raise KeyError(f"qvalue_network did not write {key!r}; set the action_value key.")
        batch = tuple(tensordict.batch_size)
        if q.ndim != len(batch) + 1 or tuple(q.shape[:-1]) != batch:
            raise ValueError(
                f"qvalue_network wrote {key!r} of shape {tuple(q.shape)}; expected [*B, |A|] with "
                f"B = {list(batch)}."
            )
        return q

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
        """``K`` actions ``[K, *B, *A]`` and their finite log-probabilities ``[K, *B]`` from ``sampler``."""
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
        check_finite(f"{role} log-probabilities", log_prob)
        return actions, log_prob

    def _state_action_values(
        self,
        tensordict: TensorDictBase,
        actions: Tensor,
        *,
        action_key: NestedKey,
        value_key: NestedKey,
        source: str,
    ) -> Tensor:
        """``Q(s, a_k)`` ``[K, *B]`` for actions ``[K, *B, *A]``, in one call on ``K·N`` pairs."""
        batch = tensordict.batch_size
        num_batch = len(batch)
        if actions.ndim < 1 + num_batch or tuple(actions.shape[1 : 1 + num_batch]) != tuple(batch):
            raise ValueError(
                f"{source} returned actions of shape {tuple(actions.shape)}; expected "
                f"[K, *B, *action_shape] with B = {list(batch)}."
            )
        k = actions.shape[0]
        n = batch.numel()
        flat = TensorDict(batch_size=[k * n], device=tensordict.device)
        for key in self._state_keys(exclude=action_key):
            x = self._get(tensordict, key, "read by qvalue_network")
            x = x.reshape(n, *x.shape[num_batch:])
            flat.set(key, x.expand(k, *x.shape).reshape(k * n, *x.shape[1:]))
        flat.set(action_key, actions.reshape(k * n, *actions.shape[1 + num_batch :]))
        out = self.qvalue_network(flat)
        out = flat if out is None else out
        q = out.get(value_key, None)
        if q is None:
            raise KeyError(
                f"qvalue_network did not write {value_key!r}; set the state_action_value key."
            )
        self._check_q(q, value_key, (k * n, 1), f"one Q-value per (state, action) pair, K={k}, N={n}")
        return q.reshape(k, *batch)

    def extra_repr(self) -> str:
        alpha = self.temperature
        shown = f"{alpha.alpha.item():.4g}" if isinstance(alpha, FixedTemperature) else type(alpha).__name__
        return f"alpha={shown}"

