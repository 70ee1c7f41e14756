"""What a checkpoint holds of the data pipeline and the logger, and the check of what it restores.

The one place that knows TorchRL's objects beyond their public state APIs: the loop saves the replay
buffer's rows (:func:`buffer_state`), the collector's current step (:func:`collector_carrier`: its
observation and unfinished episode, which TorchRL's ``state_dict`` leaves out), TorchRL's logger
state (with the backend, :class:`~maxent_components.runs.logs.RunLogger`) and the modules' state dicts;
:func:`state_mismatch` names the first tensor whose shape differs between a checkpoint and the
run that restores it (one line, where ``load_state_dict`` would print whole TensorDicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["buffer_state", "collector_carrier", "logger_state", "restore_buffer", "restore_carrier", "state_mismatch"]


def buffer_state(buffer) -> dict[str, Any]:
    """The replay buffer's contents: the filled rows only while it has not wrapped around (a 10⁶-row
    storage holding 10⁴ transitions is saved as 10⁴ rows), else its whole state."""
    if len(buffer) < buffer.storage.max_size:
        return {"rows": buffer.storage[: len(buffer)].clone()} if len(buffer) else {"rows": None}
    return {"state": buffer.state_dict()}


def restore_buffer(buffer, state: dict[str, Any], *, device: str | torch.device = "cpu") -> None:
    """Refill a new ``buffer`` from :func:`buffer_state`'s ``state`` (loaded on the CPU), its rows on ``device``."""
    if "state" in state:
        rows = state["state"]["_storage"]["_storage"]  # a state dict (its metadata kept: changed in place)
        for key, value in rows.items():  # an empty storage adopts these tensors: put them on its device
            if isinstance(value, torch.Tensor):
                rows[key] = value.to(device)
        buffer.load_state_dict(state["state"])
    elif state["rows"] is not None:
        buffer.extend(state["rows"])
    if len(buffer) and "collector" in buffer.storage[:1].keys():
        # Rows of an earlier version, whose collector tracked trajectory ids: new batches could not join them.
        raise ValueError("its replay rows hold the collector's trajectory ids, which this version does not store")


def collector_carrier(collector) -> Any:
    """The collector's carrier (the tensordict of the step it is at: observation, episode counters),
    which its ``state_dict`` does not hold; a resumed run needs it to continue the same episode."""
    return collector._carrier.clone()


def restore_carrier(collector, carrier, *, device: str | torch.device = "cpu") -> None:
    """Put back a :func:`collector_carrier` (loaded on the CPU) on the collector's ``device``."""
    collector._carrier.update(carrier.to(device))


def logger_state(state: dict[str, Any], backend: str) -> dict[str, Any]:
    """The logger's part of a checkpoint (checkpoints written before :class:`~maxent_components.runs.logs.RunLogger` hold TorchRL's
    state alone, of the run's own backend)."""
    saved = state["logger"]
    return saved if "torchrl" in saved else {"backend": backend, "torchrl": saved}


def state_mismatch(saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> str | None:
    """``"key: checkpoint [..], this run [..]"`` for the first tensor of ``current`` whose shape
    differs from ``saved`` (or that ``saved`` lacks), or ``None``.

    Examples:
        >>> state_mismatch({"w": torch.zeros(4, 3)}, {"w": torch.zeros(8, 3)})
        'w: checkpoint [4, 3], this run [8, 3]'
    """
    for key, value in current.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found = state_mismatch(saved.get(key, {}) if isinstance(saved.get(key), Mapping) else {}, value, name + ".")
            if found is not None:
                return found
        elif isinstance(value, torch.Tensor):
            old = saved.get(key)
            if not isinstance(old, torch.Tensor):
                return f"{name}: missing from the checkpoint"
            if old.shape != value.shape:
                return f"{name}: checkpoint {list(old.shape)}, this run {list(value.shape)}"
    return None
