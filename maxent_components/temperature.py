"""Temperatures ``α`` of the maximum-entropy objective ``Σ_t E[r_t + α H(π(·|s_t))]``.

A temperature is a small module whose ``forward()`` returns the current ``α`` as a 0-d tensor. Every
estimator, sampler and loss accepts either a float or one of these objects, so one learned
temperature can be shared by the soft-value estimator and the policy sampler. ``loss(entropy)``
returns the temperature's own loss terms (empty unless ``α`` is learned), and ``step()`` advances a
schedule (a no-op unless ``α`` is annealed). ``α`` lives in buffers and parameters, never in global
state, so it is saved with ``state_dict``.
"""

from __future__ import annotations

import math

import torch
from tensordict import TensorDict
from torch import Tensor, nn

from maxent_components.checks import check_positive_float, check_probability
from maxent_components.functional import check_alpha

__all__ = [
    "Temperature",
    "FixedTemperature",
    "AutoTemperature",
    "AnnealedTemperature",
    "as_temperature",
    "scheduled_temperatures",
]


class Temperature(nn.Module):
    """Interface of a temperature: ``forward() -> α``, ``value()``, ``loss(entropy)``, ``step()``.

    ``learned`` says whether ``α`` has a loss of its own (it then needs the policy's entropy).
    """

    learned: bool = False

    def forward(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward() returning the current alpha.")

    @property
    def alpha(self) -> Tensor:
        """The current temperature, detached (use ``forward()`` to differentiate through ``α``)."""
        return self.forward().detach()

    def value(self) -> float | Tensor:
        """``α`` for computing with: a Python float when it is a constant (no device read, and the
        exact ``α = 0`` limit of the algebra), else the detached tensor."""
        return self.alpha

    def loss(self, entropy: Tensor) -> TensorDict:
        """Loss terms of the temperature itself given per-state entropy estimates (none by default)."""
        return TensorDict({}, batch_size=[])

    def step(self) -> None:
        """Advance a schedule by one step (nothing to do by default)."""


class FixedTemperature(Temperature):
    """A constant temperature ``α`` stored as a buffer.

    ``α = 0`` is allowed: the soft value then becomes ``max_a Q`` and the Boltzmann policy greedy.

    Args:
        alpha: the temperature ``α ≥ 0``.

    Examples:
        >>> FixedTemperature(0.2)()
        tensor(0.2000)
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"alpha must be a float, got {type(alpha).__name__}.")
        check_alpha(float(alpha), allow_zero=True)
        self._value = float(alpha)
        self.register_buffer("_alpha", torch.tensor(float(alpha)))

    def forward(self) -> Tensor:
        return self._alpha

    def value(self) -> float:
        return self._value

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._value = float(self._alpha)  # read once at load time, never in the hot path

    def extra_repr(self) -> str:
        return f"alpha={self._alpha.item():.4g}"


class AutoTemperature(Temperature):
    """A learned temperature that drives the policy entropy towards a target.

    Minimises ``J(α) = E_s[log α · (H(π(·|s)) − H̄)]`` over ``log α`` (Haarnoja et al., 2018,
    "Soft Actor-Critic Algorithms and Applications", eq. 18, written with the entropy
    ``H = −E[log π]``): the gradient lowers ``α`` when the entropy is above the target ``H̄`` and
    raises it when below. Inside a ``SoftQLoss`` this is ``loss_alpha``, computed from the actor's
    entropy, and the loss's one optimiser trains ``log_alpha`` with the rest.

    Args:
        target_entropy: the target ``H̄`` in nats, or ``"auto"``: ``−dim(A)`` for a continuous
            ``action_spec`` (Haarnoja et al., 2018) and ``entropy_ratio · log |A|`` for a discrete one
            (Christodoulou, 2019, uses a fraction of the maximum entropy ``log |A|``).

    Keyword Args:
        action_spec: the action spec, needed by ``target_entropy="auto"``.
        entropy_ratio: the fraction of ``log |A|`` targeted for discrete actions (0.6 keeps two-action
            tasks stable; 0.9 and above make ``α`` diverge on two actions).
        alpha_init: the starting ``α`` (> 0).
        min_alpha, max_alpha: optional clamps on ``α``.

    Examples:
        >>> temperature = AutoTemperature(target_entropy=-1.0, alpha_init=0.5)
        >>> loss = temperature.loss(torch.tensor([0.3, -0.1]))
        >>> loss["loss_alpha"].backward()
        >>> bool(temperature.log_alpha.grad > 0)  # entropy above target: lower alpha
        True
        >>> from torchrl.data import Bounded, OneHot
        >>> AutoTemperature(action_spec=Bounded(-1, 1, shape=(6,))).target_entropy.item()
        -6.0
        >>> round(AutoTemperature(action_spec=OneHot(2)).target_entropy.item(), 4)  # 0.6 log 2
        0.4159
    """

    learned = True

    def __init__(
        self,
        target_entropy: float | str = "auto",
        *,
        action_spec=None,
        entropy_ratio: float = 0.6,
        alpha_init: float = 1.0,
        min_alpha: float | None = None,
        max_alpha: float | None = None,
    ) -> None:
        super().__init__()
        entropy_ratio = check_probability("entropy_ratio", entropy_ratio, open_low=True)
        if isinstance(target_entropy, str) and target_entropy == "auto":
            target_entropy = _auto_target_entropy(action_spec, entropy_ratio)
        if isinstance(target_entropy, bool) or not isinstance(target_entropy, (int, float)) or not math.isfinite(
            float(target_entropy)
        ):
            raise ValueError(f"target_entropy must be a finite number or 'auto', got {target_entropy!r}.")
        alpha_init = check_positive_float("alpha_init", alpha_init)
        min_alpha = None if min_alpha is None else check_positive_float("min_alpha", min_alpha)
        max_alpha = None if max_alpha is None else check_positive_float("max_alpha", max_alpha)
        if min_alpha is not None and max_alpha is not None and min_alpha > max_alpha:
            raise ValueError(f"min_alpha ({min_alpha}) must not exceed max_alpha ({max_alpha}).")
        self.register_buffer("target_entropy", torch.tensor(float(target_entropy)))
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha_init)))
        self.min_log_alpha = None if min_alpha is None else math.log(min_alpha)
        self.max_log_alpha = None if max_alpha is None else math.log(max_alpha)

    def forward(self) -> Tensor:
        log_alpha = self.log_alpha
        if self.min_log_alpha is not None or self.max_log_alpha is not None:
            log_alpha = log_alpha.clamp(self.min_log_alpha, self.max_log_alpha)
        return log_alpha.exp()

    def loss(self, entropy: Tensor) -> TensorDict:
        gap = entropy.detach() - self.target_entropy
        return TensorDict({"loss_alpha": (self.log_alpha * gap).mean()}, batch_size=[])

    def extra_repr(self) -> str:
        return f"target_entropy={self.target_entropy.item():.4g}"


class AnnealedTemperature(Temperature):
    """A temperature annealed log-linearly from ``alpha_init`` to ``alpha_final``.

    ``log α_t = log α_0 + min(t / T, 1) (log α_T − log α_0)`` with ``t`` advanced by ``step()``, as
    in the fine-tuning experiments of Haarnoja et al. (2017, section 6.2), where ``α`` is lowered to
    turn a multimodal pre-trained policy into a near-deterministic one.

    Examples:
        >>> temperature = AnnealedTemperature(alpha_init=1.0, alpha_final=0.01, num_steps=2)
        >>> temperature.step(); round(temperature().item(), 4)
        0.1
    """

    def __init__(self, *, alpha_init: float, alpha_final: float, num_steps: int) -> None:
        super().__init__()
        check_alpha(float(alpha_init), allow_zero=False, name="alpha_init")
        check_alpha(float(alpha_final), allow_zero=False, name="alpha_final")
        if int(num_steps) != num_steps or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps}.")
        self.register_buffer("log_initial", torch.tensor(math.log(alpha_init)))
        self.register_buffer("log_final", torch.tensor(math.log(alpha_final)))
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))
        self.num_steps = int(num_steps)

    def forward(self) -> Tensor:
        frac = (self.step_count.to(self.log_initial.dtype) / self.num_steps).clamp(max=1.0)
        return torch.lerp(self.log_initial, self.log_final, frac).exp()

    def step(self) -> None:
        self.step_count += 1

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}"


def scheduled_temperatures(module: nn.Module) -> list[Temperature]:
    """The temperatures in ``module`` whose ``step()`` advances a schedule, each once: the training
    loop steps them after every update (a loss's annealed ``α``, a sampler's own annealing)."""
    return [m for m in module.modules() if isinstance(m, Temperature) and type(m).step is not Temperature.step]


def _auto_target_entropy(action_spec, entropy_ratio: float) -> float:
    from torchrl.data import Categorical, OneHot

    if action_spec is None:
        raise ValueError("target_entropy='auto' needs the action_spec (continuous: -dim(A); discrete: ratio * log|A|).")
    if isinstance(action_spec, (OneHot, Categorical)):
        return float(entropy_ratio) * math.log(action_spec.space.n)
    return -float(action_spec.shape.numel())


def as_temperature(alpha: float | Temperature) -> Temperature:
    """Wrap a float in a :class:`FixedTemperature`; pass temperature objects through."""
    if isinstance(alpha, Temperature):
        return alpha
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(
            f"alpha must be a float or a Temperature (FixedTemperature, AutoTemperature, "
            f"AnnealedTemperature), got {type(alpha).__name__}."
        )
    return FixedTemperature(float(alpha))
