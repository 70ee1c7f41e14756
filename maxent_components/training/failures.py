"""How a training run names what stopped it: a diverged state, a failing environment, a full disk.

The loop turns the faults a user can meet into one :class:`~maxent_components.runs.errors.RunFailure`
whose message says what happened, where (the env step) and what to do, instead of a raw error from
deep inside a library:

- :func:`first_non_finite`: the first NaN or ±Inf tensor of a state (parameters, optimiser moments,
  the temperature). The loop checks the state before every checkpoint, so that a diverged run
  never saves its poison, and after any error (a NaN policy fails inside ``torch.multinomial``);
- :func:`raised_by_environment`: whether an exception came from the environment's own code (a
  Gymnasium task that raises, or one whose observation no longer fits its spec) rather than from
  the policy or the library.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["first_non_finite", "raised_by_environment", "short_message"]


def _tensors(node: Any, prefix: str) -> list[tuple[str, Tensor]]:
    if isinstance(node, Tensor):
        return [(prefix, node)] if node.is_floating_point() or node.is_complex() else []
    if isinstance(node, Mapping):
        return [item for key, value in node.items() for item in _tensors(value, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(node, (list, tuple)):
        return [item for index, value in enumerate(node) for item in _tensors(value, f"{prefix}[{index}]")]
    return []


def first_non_finite(state: Mapping[str, Any]) -> str | None:
    """The dotted name of the first floating-point tensor of ``state`` (nested mappings and
    sequences, e.g. ``{"loss": loss.state_dict(), "optimizer": optimizer.state_dict()}``) holding
    NaN or ±Inf, or ``None``. One read of the device for the whole state.

    Examples:
        >>> first_non_finite({"loss": {"w": torch.ones(2), "b": torch.tensor([0.0, float("nan")])}})
        'loss.b'
        >>> first_non_finite({"optimizer": {"state": {0: {"step": torch.tensor(3.0)}}}}) is None
        True
    """
    named = _tensors(state, "")
    if not named:
        return None
    finite = torch.stack([torch.isfinite(t.detach()).all().cpu() for _, t in named])
    if bool(finite.all()):
        return None
    return named[int((~finite).nonzero()[0])][0]


_ENV_CODE = f"{Path('torchrl') / 'envs'}"
_POLICY_CODE = ("maxent_components", f"{Path('torch') / 'nn'}", f"{Path('tensordict') / 'nn'}")
_LIBRARY_ENVS = f"{Path('maxent_components') / 'envs'}"  # the library's own tasks are environment code


def _policy_code(filename: str) -> bool:
    return _LIBRARY_ENVS not in filename and any(part in filename for part in _POLICY_CODE)


def raised_by_environment(err: BaseException) -> bool:
    """Whether ``err`` was raised in an environment's step or reset: its traceback passes through
    TorchRL's environment code, and no policy code (the library's modules, ``torch.nn``) runs
    below the innermost environment frame. (A rollout calls the policy from inside TorchRL's
    environment code; a policy error is then not the environment's.)"""
    frames = [frame.filename for frame in traceback.extract_tb(err.__traceback__)]
    env_frames = [i for i, name in enumerate(frames) if _ENV_CODE in name]
    if not env_frames:
        return False
    below = frames[env_frames[-1] + 1 :]
    return not any(_policy_code(name) for name in below)


def short_message(err: BaseException) -> str:
    """An error's message on one line: a long one (a TensorDict printed whole) cut to its first line."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return (lines[0] + (" ..." if len(lines) > 1 else "")) if lines else type(err).__name__
