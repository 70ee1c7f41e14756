"""Argument checkers and the data-check switch, in one place.

Two kinds of checks, with different costs:

- **Argument checks** (:func:`check_positive_int`, :func:`check_positive_float`, ...) look at Python
  values at construction and raise a ``ValueError`` naming the argument and what was expected.
  They never touch tensor data.
- **Data checks** (:func:`check_finite` and the index / mask checks of the components) read tensor
  values, which synchronises the host with the device. Training code runs without them: every
  loss, estimator and sampler guards them with ``if data_checks():``, which is ``False`` unless
  switched on with :class:`set_data_checks` (called alone, as a context manager or a decorator, like
  ``torch.set_grad_enabled``). Turn them on to find where a NaN enters; the training loop still
  catches non-finite losses once per log interval.

Examples:
    >>> import torch
    >>> from maxent_components.checks import check_finite, data_checks, set_data_checks
    >>> data_checks()
    False
    >>> with set_data_checks(True):
    ...     data_checks()
    True
    >>> check_finite("reward", torch.tensor([0.0, float("nan")]))
    Traceback (most recent call last):
    ...
    ValueError: reward contains NaN values; expected finite values.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import Tensor

__all__ = [
    "check_choice",
    "check_device",
    "check_finite",
    "check_nonnegative_int",
    "check_positive_float",
    "check_positive_int",
    "check_probability",
    "data_checks",
    "is_traced",
    "set_data_checks",
]

F = TypeVar("F", bound=Callable[..., Any])

_DATA_CHECKS = False


def data_checks() -> bool:
    """Whether data checks (finite values, index ranges, masks) run; ``False`` by default."""
    return _DATA_CHECKS


class set_data_checks:  # noqa: N801 - a context manager used like a function, as in TorchRL
    """Switch data checks on or off: at once, as ``torch.set_grad_enabled`` does, or inside a
    ``with`` block or a decorated function (restored after it).

    ``set_data_checks(True)`` called alone switches them for the rest of the process;
    ``with set_data_checks(True):`` for the block; ``@set_data_checks(True)`` for each call of the
    function (decorating does not switch anything).
    """

    def __init__(self, mode: bool = True) -> None:
        global _DATA_CHECKS
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be a bool, got {type(mode).__name__}.")
        self.mode = mode
        self._before = _DATA_CHECKS  # what a with-block or a decorator restores
        self._fresh = True
        self._previous: list[bool] = []
        _DATA_CHECKS = mode

    def set(self) -> None:
        """Switch to this mode for the rest of the process (what calling it alone already did)."""
        global _DATA_CHECKS
        self._fresh = False
        _DATA_CHECKS = self.mode

    def __enter__(self) -> set_data_checks:
        global _DATA_CHECKS
        self._previous.append(self._before if self._fresh else _DATA_CHECKS)
        self._fresh = False
        _DATA_CHECKS = self.mode
        return self

    def __exit__(self, *exc_info: Any) -> None:
        global _DATA_CHECKS
        _DATA_CHECKS = self._previous.pop()

    def __call__(self, func: F) -> F:
        global _DATA_CHECKS
        if self._fresh:  # decorating switches nothing: undo what construction did
            _DATA_CHECKS, self._fresh = self._before, False
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_data_checks(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def is_traced(x: Tensor) -> bool:
    """True inside ``vmap`` or ``torch.compile``, where data-dependent checks cannot run."""
    if torch.compiler.is_compiling():
        return True
    return torch._C._functorch.is_batchedtensor(x) or torch._C._functorch.is_gradtrackingtensor(x)


def check_finite(name: str, x: Tensor) -> None:
    """Raise a ``ValueError`` naming ``name`` if ``x`` holds NaN or ±Inf (reads the data).

    Skipped under ``vmap`` and ``torch.compile``. Hot paths call it only under :func:`data_checks`.
    """
    if is_traced(x):
        return
    if not bool(torch.isfinite(x).all()):
        bad = "NaN" if bool(torch.isnan(x).any()) else "Inf"
        raise ValueError(f"{name} contains {bad} values; expected finite values.")


# -- argument checks ----------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int``, or a ``ValueError`` naming ``name`` unless it is an integer ``>= 1``.

    Integral floats such as ``4.0`` are refused: a count is written as an integer.
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_nonnegative_int(name: str, value: Any) -> int:
    """``value`` as an ``int``, or a ``ValueError`` naming ``name`` unless it is an integer ``>= 0``."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    return int(value)


def check_positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a ``float``, or a ``ValueError`` naming ``name`` unless it is finite and ``> 0``
    (``>= 0`` with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
    return value


def check_probability(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a ``float`` in ``[0, 1]`` (ends excluded as asked), or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    value = float(value)
    if value < 0 or value > 1 or (open_low and value == 0) or (open_high and value == 1):
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}.")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value``, or a ``ValueError`` naming ``name`` unless it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value


def check_device(name: str, value: Any) -> torch.device:
    """``torch.device(value)``, or a ``ValueError`` naming ``name`` unless it is a device this machine
    has: ``cpu``, ``cuda``/``cuda:N`` with CUDA available (and ``N`` below the device count), or
    ``mps`` with Apple's Metal backend available."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name}={value!r} is not a device; expected cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={value!r}: no CUDA device is available here (torch {torch.__version__}); use {name}=cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={value!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0.")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{name}={value!r}: Apple's Metal backend is not available here; use {name}=cpu.")
    elif device.type != "cpu":
        raise ValueError(f"{name}={value!r}: expected a cpu, cuda or mps device.")
    return device
