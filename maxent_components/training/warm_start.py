"""Starting a run from a finished run's networks: pretraining, then fine-tuning on another task.

Maximum-entropy pretraining keeps every way of solving a task, so a policy pretrained with a
task-agnostic reward can be fine-tuned to a specific task faster than one trained from scratch
(Haarnoja, Tang, Abbeel and Levine, 2017, "Reinforcement Learning with Deep Energy-Based Policies",
section 5.3 and figure 4). :func:`warm_start` loads the learned networks of the run in a folder — the Q
ensemble, its targets, the actor and any learned proposal — into a freshly built loss of the same
shapes. The temperature is not carried over (fine-tuning chooses its own, typically an
``AnnealedTemperature`` starting at the pretraining α), nor a sampler's own annealing schedule, nor
the value estimator's discount, the
optimiser or the replay buffer: the new run starts with empty ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from maxent_components.runs.checkpoint import read_checkpoint
from maxent_components.runs.errors import CheckpointError

__all__ = ["WarmStartError", "carried_keys", "source_run", "warm_start"]


class WarmStartError(ValueError):
    """The run to start from cannot be used: not a finished run, unverifiable, or other networks."""


def carried_keys(state: dict[str, Any]) -> list[str]:
    """The entries of a loss's state dict that a warm start carries over: every learned network and
    buffer except the schedules' (any ``temperature`` component, and a sampler's own ``anneal``),
    which are the new run's, and the value estimator's."""
    return [
        key for key in state
        if not _SCHEDULES.intersection(key.split(".")) and not key.startswith("_value_estimator.")
    ]  # fmt: skip


_SCHEDULES = frozenset({"temperature", "anneal"})


def source_run(folder: str | os.PathLike, *, seed: int | None = None, name: str = "init_from") -> Path:
    """The run folder to start from: ``folder`` itself when it holds a run, else the one finished run
    below it (a sweep, searched three levels deep) whose config has ``seed``. A sweep of pretrained
    runs then serves every seed of a fine-tuning sweep with one value of the option, so the runs of
    that sweep differ only by seed (one cell for the study tool)."""
    path = Path(folder)
    if (path / "summary.json").exists() or not path.is_dir():
        return path
    matches = []
    for summary_path in sorted(p for depth in range(1, 4) for p in path.glob("/".join(["*"] * depth) + "/summary.json")):
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if summary.get("finished") is True and (summary.get("config") or {}).get("seed") == seed:
            matches.append(summary_path.parent)
    if len(matches) != 1:
        found = "none" if not matches else f"{len(matches)}: {', '.join(str(m) for m in matches[:3])}"
        raise WarmStartError(
            f"{name}={str(folder)!r}: a folder of runs must hold exactly one finished run with seed={seed}, found {found}."
        )
    return matches[0]


def warm_start(loss: nn.Module, folder: str | os.PathLike, *, seed: int | None = None, name: str = "init_from") -> dict[str, Any]:
    """Load the networks of the finished run in ``folder`` into ``loss``; return what was loaded.

    ``folder`` is a run's folder, or a folder of runs in which the one with ``seed`` is used
    (:func:`source_run`). The run must be finished and its checkpoint must verify; the carried
    entries (see :func:`carried_keys`) must match ``loss``'s by name and shape, else
    :class:`WarmStartError` names ``name`` (the option that gave the folder) and the first difference.

    Returns ``{"from": the run's folder, "env_steps": its env steps, "keys": number of entries}``.
    """
    path = source_run(folder, seed=seed, name=name)
    folder = path
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WarmStartError(f"{name}={str(folder)!r}: holds no readable summary.json (a run folder was expected).") from None
    if summary.get("finished") is not True:
        raise WarmStartError(f"{name}={str(folder)!r}: not a finished run (its summary says finished: false).")
    try:
        source = read_checkpoint(path / "checkpoint.pt")["state"]["loss"]
    except CheckpointError as err:
        raise WarmStartError(f"{name}={str(folder)!r}: {err}") from None
    target = loss.state_dict()
    wanted, given = carried_keys(target), carried_keys(source)
    missing = sorted(set(wanted) - set(given))
    extra = sorted(set(given) - set(wanted))
    if missing or extra:
        which = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, which this loss lacks"
        raise WarmStartError(f"{name}={str(folder)!r}: its networks differ from this run's (the source {which}).")
    for key in wanted:
        if source[key].shape != target[key].shape:
            raise WarmStartError(
                f"{name}={str(folder)!r}: {key} has shape {tuple(source[key].shape)} there and "
                f"{tuple(target[key].shape)} here (networks of another size or task)."
            )
    loss.load_state_dict({**target, **{key: source[key] for key in wanted}})
    return {"from": str(folder), "env_steps": summary.get("env_steps"), "keys": len(wanted)}
