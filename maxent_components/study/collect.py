"""Collecting the finished runs of one or more sweeps into cells: configs that differ only by seed.

Runs are found by their ``summary.json`` wherever they are below the given folders and identified
by their recorded config, never by folder name. Two runs of the same config (the same
``config_hash``) are counted once. Runs of different code versions are not mixed unless asked, and
unfinished runs are reported, not used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maxent_components.runs.directory import config_identity

__all__ = ["Cell", "Run", "StudyError", "collect_runs", "group_cells", "name_tasks", "varying_keys"]

SEED = "seed"


class StudyError(ValueError):
    """Runs that cannot be compared as asked (mixed code versions, no finished run)."""


@dataclass
class Run:
    """One finished run: its folder, its config (flattened to dotted keys) and its summary."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    task_label: str | None = None  # set by name_tasks when runs of one env id differ in other env options

    @property
    def task(self) -> str:
        return self.task_label or str(self.config.get("env.name", "task"))


def name_tasks(runs: Sequence[Run]) -> None:
    """Tell apart tasks that share a Gymnasium id but not their ``env`` options (MultiGoal with other
    reward terms, say): such runs' task becomes ``id (option=value, ...)`` with the options that differ
    (the diagnostics' arguments, which follow from them, left out). Runs of one task keep the bare id."""
    by_name: dict[str, list[Run]] = {}
    for run in runs:
        by_name.setdefault(str(run.config.get("env.name", "task")), []).append(run)
    for name, group in by_name.items():
        keys = [k for k in varying_keys(group, exclude=()) if k.startswith("env.") and not k.startswith("env.diagnostics.")]
        for run in group:
            if keys:
                options = ", ".join(f"{k.removeprefix('env.').removeprefix('kwargs.')}={_plain(run.config.get(k))}" for k in keys)
                run.task_label = f"{name} ({options})"


def _plain(value: Any) -> str:
    """Tuples (flattened lists) shown as lists: ``((0, 2),)`` → ``[[0, 2]]``."""
    if isinstance(value, tuple):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)


@dataclass
class Cell:
    """Runs whose configs differ only by ``seed``."""

    key: tuple
    runs: list[Run] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.runs[0].task

    @property
    def seeds(self) -> list[int]:
        return sorted(run.config.get(SEED, 0) for run in self.runs)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for a nested config; lists become tuples (hashable)."""
    if not isinstance(config, dict):
        return {prefix.rstrip("."): tuple(config) if isinstance(config, list) else config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def collect_runs(folders: Sequence[str | os.PathLike], *, allow_mixed_versions: bool = False) -> tuple[list[Run], list[str]]:
    """The finished runs below ``folders`` (one per config hash) and notes on what was left out."""
    notes: list[str] = []
    runs: dict[str, Run] = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise StudyError(f"{folder} is not a folder.")
        for summary_path in sorted(folder.rglob("summary.json")):
            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                notes.append(f"skipped {summary_path}: unreadable ({err}).")
                continue
            if not isinstance(summary, dict) or "config" not in summary:
                notes.append(f"skipped {summary_path}: not a run summary.")
                continue
            if isinstance(summary.get("population"), dict) and "members" in summary["population"]:
                continue  # a population's own folder: its members are runs of their own, collected below it
            if summary.get("finished") is not True:
                notes.append(f"skipped {summary_path.parent}: unfinished (relaunch its sweep to finish it).")
                continue
            if "eval_return_mean" not in summary:
                recipe = f" of {summary['recipe']}" if summary.get("recipe") else ""
                notes.append(f"skipped {summary_path.parent}: a run{recipe} with no evaluation returns to compare.")
                continue
            digest = summary.get("config_hash")
            if digest in runs:
                notes.append(f"skipped {summary_path.parent}: the same config as {runs[digest].path}.")
                continue
            # the options that make the run's identity, left out by the rule its hash was made with
            identity, _ = config_identity(summary["config"], summary.get("run_only", []), summary.get("neutral"))
            config = flatten(identity)
            recorded, neutral = flatten(summary["config"]), summary.get("neutral") or {}
            config.update({k: v for k, v in neutral.items() if k in recorded and k not in config})  # shown at its default
            runs[digest] = Run(summary_path.parent, config, summary)
    if not runs:
        raise StudyError(f"no finished run below {', '.join(map(str, folders))}.")
    _show_neutral_defaults(runs.values())
    versions = sorted({str(run.summary.get("code_version")) for run in runs.values()})
    if len(versions) > 1 and not allow_mixed_versions:
        raise StudyError(
            f"the runs come from different code versions ({', '.join(versions)}); compare runs of one version "
            f"or pass --allow-mixed-versions."
        )
    found = list(runs.values())
    name_tasks(found)
    return found, notes


def _show_neutral_defaults(runs: Iterable[Run]) -> None:
    """Give runs recorded before a neutral option existed its default, where a run of the same part
    records it: a run's identity leaves a neutral option out at its default (``num_envs=1``), but a
    table must show ``1``, not a missing value, and group old and new runs at the default together.
    An option is filled in only for runs of a part (the same ``_target_``) that has it."""
    runs = list(runs)
    defaults: dict[str, Any] = {}
    for run in runs:
        defaults.update(run.summary.get("neutral") or {})
    for key, default in defaults.items():
        target = key.rsplit(".", 1)[0] + "._target_" if "." in key else None
        parts = {repr(run.config.get(target)) for run in runs if key in run.config}
        for run in runs:
            if key not in run.config and parts and repr(run.config.get(target)) in parts:
                run.config[key] = default


def varying_keys(runs: Iterable[Run], *, exclude: Iterable[str] = (SEED,)) -> list[str]:
    """The dotted config keys whose value is not the same in every run (``seed`` excluded)."""
    runs = list(runs)
    keys = sorted({key for run in runs for key in run.config} - set(exclude))
    missing = object()
    varying = [key for key in keys if len({repr(run.config.get(key, missing)) for run in runs}) > 1]
    # An option of a part varies with the part's class: shown only if it also varies for one class.
    kept = []
    for key in varying:
        part = key.rsplit(".", 1)[0] + "._target_"
        if part != key and part in varying:
            by_class: dict[str, set] = {}
            for run in runs:
                by_class.setdefault(repr(run.config.get(part)), set()).add(repr(run.config.get(key, missing)))
            if all(len(values) == 1 for values in by_class.values()):
                continue
        kept.append(key)
    return kept


def task_keys(keys: Sequence[str], cells: Sequence[Cell]) -> list[str]:
    """The keys set by the task: ``env.*``, and with several tasks, every key that is the same in all
    cells of each task (a task's preset temperature, say). Tables and labels show the task instead."""
    tasks = {cell.task for cell in cells}
    fixed = []
    for i, key in enumerate(keys):
        per_task = {task: {cell.key[i] for cell in cells if cell.task == task} for task in tasks}
        if key.startswith("env.") or (len(tasks) > 1 and all(len(values) == 1 for values in per_task.values())):
            fixed.append(key)
    return fixed


def group_cells(runs: Sequence[Run]) -> tuple[list[Cell], list[str]]:
    """The cells (runs differing only by seed) and the keys that distinguish them (the cell key holds
    every varying option, the listed keys leave out a part's options that follow from its class)."""
    keys = varying_keys(runs)
    every = sorted({key for run in runs for key in run.config} - {SEED})
    cells: dict[tuple, Cell] = {}
    for run in runs:
        identity = tuple(repr(run.config.get(k)) for k in every)
        cell = cells.setdefault(identity, Cell(tuple(repr(run.config.get(k)) for k in keys)))
        cell.runs.append(run)
    return sorted(cells.values(), key=lambda cell: cell.key), keys

