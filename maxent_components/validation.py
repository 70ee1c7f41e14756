"""Data checked where it enters: environment output, and the first batch a loss sees.

Collected batches are checked before they reach the replay buffer and evaluation rollouts before
their returns are reported: a non-finite float (reward, observation, action, any other entry) or an
action that its spec does not allow (a malformed one-hot row, an index out of range, a value outside
the box) is one :class:`EnvironmentDataError` that names the frame, the key and the value.

A loss checks the values of its first batch the same way (one read of the device), and of every
batch under :class:`~maxent_components.checks.set_data_checks`; after that its hot path re-checks
nothing. What is free to check (empty batches, dtypes) is checked on every call, and a raw torch
error of the first call (a network that cannot read the observation's width) is re-raised as
:class:`InputError` naming the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.data import Bounded, Categorical, OneHot

__all__ = [
    "EnvironmentDataError",
    "FirstBatchCheck",
    "InputError",
    "check_env_data",
    "check_input_dtypes",
    "check_network_inputs",
    "check_transition_entries",
    "check_nonempty",
    "explained_errors",
]


class EnvironmentDataError(ValueError):
    """An environment (or the policy acting in it) produced non-finite or malformed data."""


class InputError(ValueError):
    """A loss or sampler was given a batch it cannot use (empty, wrong dtype, wrong width)."""


def _first_bad_row(bad: Tensor, rows: int) -> int | None:
    per_row = bad.reshape(rows, -1).any(-1)
    return int(per_row.nonzero()[0, 0]) if bool(per_row.any()) else None


def _action_shape_error(spec: Any, action: Tensor) -> str | None:
    """Why ``action`` ``[*B, ...]`` cannot hold actions of ``spec`` (``None`` when its shape fits)."""
    if isinstance(spec, (OneHot, Bounded)):
        want = tuple(spec.shape)
        if tuple(action.shape[action.dim() - len(want) :]) != want or action.dim() < len(want):
            return f"action has shape {list(action.shape)}; its {type(spec).__name__} spec wants [*batch, {', '.join(map(str, want))}]"
    return None


def _action_violations(spec: Any, action: Tensor) -> tuple[Tensor, str] | None:
    """Mask of the entries of ``action`` that ``spec`` does not allow, and the rule (``None``: no rule)."""
    if isinstance(spec, OneHot):
        values = action.to(torch.float64)
        one = (values.sum(-1, keepdim=True) == 1).expand_as(values)
        return ~(((values == 0) | (values == 1)) & one), "is not a one-hot row"
    if isinstance(spec, Categorical):
        n = spec.space.n
        integral = action == action.round() if action.is_floating_point() else torch.ones_like(action, dtype=torch.bool)
        return ~(integral & (action >= 0) & (action < n)), f"is not an action index in [0, {n})"
    if isinstance(spec, Bounded) and action.is_floating_point():
        low, high = spec.space.low.to(action), spec.space.high.to(action)
        slack = 1e-5 * (high - low)  # a squashed action may round past its bound by an ulp or two
        return (action < low - slack) | (action > high + slack), "is outside the action box"
    return None


def _all_allowed(floats: list[Tensor], rule: tuple[Tensor, str] | None) -> bool:
    """Whether every float entry is finite and no action breaks its rule, in one read of the data."""
    flags = []
    if floats:
        flat = floats[0].reshape(-1) if len(floats) == 1 else torch.cat([value.reshape(-1) for value in floats])
        flags.append(torch.isfinite(flat).all())
    if rule is not None:
        flags.append(~rule[0].any())
    if not flags:
        return True
    return bool(flags[0] if len(flags) == 1 else flags[0] & flags[1])


def check_env_data(
    data: TensorDictBase,
    *,
    first_frame: int = 0,
    action_spec: Any = None,
    where: str = "collected",
    unit: str = "frame",
) -> None:
    """Raise :class:`EnvironmentDataError` on the first non-finite float entry or disallowed action.

    Args:
        data: transitions in time order (any batch shape; rows are counted in its flattened order).
        first_frame: how many frames came before ``data`` in the run (the error counts from 1).
        action_spec: the environment's action spec, whose rules the ``"action"`` entries must keep.
        where: what ``data`` is, for the message (``"collected"``, ``"evaluation episode 2"``).
        unit: what a row of ``data`` is called in the message (``"frame"``, ``"row"``).
    """
    rows = data.batch_size.numel()
    if rows == 0:  # nothing collected (and TensorDict.reshape(-1) of an empty batch fails)
        return
    from maxent_components.modules.params import parameter_leaves  # the leaves read off the storage, fast

    flat = data if data.batch_dims == 1 else data.reshape(-1)
    floats = [(key[0] if len(key) == 1 else key, value) for key, value in zip(*parameter_leaves(flat))
              if isinstance(value, Tensor) and value.is_floating_point()]
    action = flat.get("action", None) if action_spec is not None else None
    if action is not None and (shape_error := _action_shape_error(action_spec, action)) is not None:
        raise InputError(f"{where}: {shape_error}.")
    rule = None if action is None else _action_violations(action_spec, action)
    if _all_allowed([value for _, value in floats], rule):  # one read of the data when all is well
        return
    first = None  # (row, key) of the earliest non-finite entry over all keys
    for key, value in floats:
        row = _first_bad_row(~torch.isfinite(value), rows)
        if row is not None and (first is None or row < first[0]):
            first = (row, key)
    if first is not None:
        row, key = first
        raise EnvironmentDataError(_message(where, unit, first_frame + row, key, flat.get(key)[row], "is not finite"))
    if rule is not None:
        row = _first_bad_row(rule[0], rows)
        if row is not None:
            raise EnvironmentDataError(_message(where, unit, first_frame + row, "action", action[row], rule[1]))


def _message(where: str, unit: str, index: int, key: Any, value: Tensor, problem: str) -> str:
    shown = value.tolist() if value.numel() <= 8 else f"{value.flatten()[:8].tolist()}..."
    return f"{where} {unit} {index + 1}: {_name(key)}={shown} {problem}."


def _name(key: Any) -> str:
    return ".".join(key) if isinstance(key, tuple) else str(key)


def check_nonempty(owner: str, data: TensorDictBase) -> None:
    """Raise :class:`InputError` when ``data`` holds no rows (a mean over it would be NaN)."""
    if data.batch_size.numel() == 0:  # (TensorDict.numel() of an empty batch is 1)
        raise InputError(f"{owner} got an empty batch (batch size {list(data.batch_size)}); it needs at least one row.")


def check_input_dtypes(owner: str, data: TensorDictBase, keys: Iterable[Any], dtype: torch.dtype) -> None:
    """Raise :class:`InputError` when an entry of ``keys`` (what the networks read) is not ``dtype``."""
    for key in keys:
        value = data.get(key, None)
        if isinstance(value, Tensor) and value.dtype != dtype:
            raise InputError(
                f"{owner}: {_name(key)} is {value.dtype} but the networks' parameters are {dtype}; cast the "
                f"data (e.g. TorchRL's DoubleToFloat transform) or the networks."
            )


def check_network_inputs(owner: str, data: TensorDictBase, in_keys: Iterable[Any], action_key: Any, dtype: torch.dtype) -> None:
    """A batch for a loss whose Q network reads ``in_keys``: not empty, and holding those entries
    (and, but for the action, their ``"next"`` ones) in the networks' ``dtype``; else a named error."""
    check_nonempty(owner, data)
    in_keys = list(in_keys)
    read = in_keys + [("next", *((k,) if isinstance(k, str) else k)) for k in in_keys if k != action_key]
    for key in [action_key, *read]:
        if data.get(key, None) is None:
            raise KeyError(f"{owner} needs {key!r} in the input tensordict.")
    check_input_dtypes(owner, data, read, dtype)


def check_transition_entries(owner: str, data: TensorDictBase, reward_key: Any, *flag_keys: Any, optional: Any = None) -> None:
    """The reward and the done flags (``optional``: a flag that may be absent) of shape ``[*batch, 1]``;
    the flags bool."""
    batch = list(data.batch_size)
    for key in (reward_key, *flag_keys, *([] if optional is None else [optional])):
        value = data.get(key, None)
        if value is None:
            if key is optional:
                continue
            raise KeyError(f"{owner} needs {key!r} in the input tensordict.")
        if list(value.shape) != [*batch, 1]:
            raise InputError(f"{owner}: {_name(key)} must have shape [*batch, 1] = {[*batch, 1]}, got {list(value.shape)}.")
        if key is not reward_key and value.dtype != torch.bool:
            raise InputError(f"{owner}: {_name(key)} must be a bool tensor (TorchRL's done flags), got {value.dtype}.")


@contextmanager
def explained_errors(owner: str, data: TensorDictBase, keys: Iterable[Any]) -> Iterator[None]:
    """Re-raise a raw torch ``RuntimeError`` as :class:`InputError` naming the shapes of ``keys``."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        shapes = ", ".join(
            f"{_name(key)} {list(data.get(key).shape)}" for key in keys if isinstance(data.get(key, None), Tensor)
        )
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{owner} cannot evaluate its networks on this batch ({shapes}): {first}") from None


class FirstBatchCheck:
    """The checks a loss runs on the values of its first batch (and of every batch under
    :class:`~maxent_components.checks.set_data_checks`), with raw torch errors of that call explained.

    Args:
        owner: the name used in messages (e.g. ``"SoftQLoss"``).
        action_spec: the action spec whose rules the batch's ``"action"`` must keep (optional).
    """

    def __init__(self, owner: str, action_spec: Any = None) -> None:
        self.owner, self.action_spec, self.done = owner, action_spec, False

    def __call__(self, data: TensorDictBase, keys: Iterable[Any], compute):
        from maxent_components.checks import data_checks

        if self.done and not data_checks():
            return compute(data)
        check_env_data(data, action_spec=self.action_spec, where=f"{self.owner} input", unit="row")
        with explained_errors(self.owner, data, keys):
            out = compute(data)
        self.done = True
        return out
