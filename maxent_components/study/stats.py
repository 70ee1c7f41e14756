"""Aggregate statistics of study cells with ``rliable`` (Agarwal et al., 2021, "Deep Reinforcement
Learning at the Edge of the Statistical Precipice"): mean and interquartile mean (IQM) with 95 %
stratified-bootstrap confidence intervals, learning curves with bands, performance profiles."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from maxent_components.study.collect import Cell, Run

__all__ = ["bootstrap_seed", "cell_row", "curve", "interval", "normalized_scores", "steps_to_threshold"]


@contextlib.contextmanager
def bootstrap_seed(seed: int = 0) -> Iterator[None]:
    """Make rliable's bootstrap repeatable: the same scores give the same intervals in every run.

    rliable draws its resamples from NumPy's global generator (``np.random.choice``) whatever
    ``random_state`` it is given, so the study seeds that generator here and restores the caller's
    state afterwards (and hands rliable no ``random_state``, which arch would warn about).
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def interval(scores: np.ndarray, *, reps: int, seed: int = 0) -> dict[str, float]:
    """Mean and IQM of ``scores`` ``[runs, tasks]`` with their 95 % stratified-bootstrap intervals."""
    from rliable import library as rly
    from rliable import metrics

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(x), metrics.aggregate_iqm(x)])

    if scores.shape[0] < 2:  # one run: no interval
        value = float(scores.mean())
        return {"mean": value, "mean_low": math.nan, "mean_high": math.nan, "iqm": value, "iqm_low": math.nan, "iqm_high": math.nan}
    with bootstrap_seed(seed):
        point, ci = rly.get_interval_estimates({"cell": scores}, aggregate, reps=reps)
    (mean, iqm), ((mean_low, iqm_low), (mean_high, iqm_high)) = point["cell"], ci["cell"]
    return {
        "mean": float(mean), "mean_low": float(mean_low), "mean_high": float(mean_high),
        "iqm": float(iqm), "iqm_low": float(iqm_low), "iqm_high": float(iqm_high),
    }


def steps_to_threshold(run: Run, *, metric: str | None, threshold: float | None) -> int | None:
    """The first evaluation step at which ``metric`` reached ``threshold`` (the run's own solved bar by
    default), or ``None``."""
    if metric is None or threshold is None:
        return run.summary.get("solved_at_step")
    for row in run.summary.get("history", []):
        value = row.get(metric)
        if value is not None and value >= threshold:
            return int(row["step"])
    return None


def cell_row(cell: Cell, *, reps: int, metric: str | None, threshold: float | None) -> dict[str, Any]:
    """One row of the results table: scores with intervals, steps to the bar, time and speed."""
    final = np.array([[r.summary["eval_return_mean"]] for r in cell.runs], dtype=float)
    best = np.array([[r.summary["best_eval_return"]] for r in cell.runs], dtype=float)
    row: dict[str, Any] = {"seeds": len(cell.runs)}
    row.update({f"final_{k}": v for k, v in interval(final, reps=reps).items()})
    row.update({f"best_{k}": v for k, v in interval(best, reps=reps).items()})
    steps = [steps_to_threshold(r, metric=metric, threshold=threshold) for r in cell.runs]
    reached = [s for s in steps if s is not None]
    row["reached_bar"] = f"{len(reached)}/{len(steps)}"
    by_seed = sorted((r.config.get("seed", 0), step) for r, step in zip(cell.runs, steps))
    row["steps_to_bar_by_seed"] = ", ".join(f"{seed}: {'–' if step is None else step}" for seed, step in by_seed)
    row["steps_to_bar_median"] = float(np.median(reached)) if reached else None
    # An interval only when every run reached the bar: a run that never did has no step to count.
    every = interval(np.array([[s] for s in steps], dtype=float), reps=reps) if reached and len(reached) == len(steps) else None
    for key in ("iqm", "iqm_low", "iqm_high"):
        row[f"steps_to_bar_{key}"] = every[key] if every else None
    row["wall_time_s"] = float(np.mean([r.summary.get("wall_time_s") or math.nan for r in cell.runs]))
    speeds = [r.summary.get("updates_per_s") for r in cell.runs if r.summary.get("updates_per_s")]
    row["updates_per_s"] = float(np.mean(speeds)) if speeds else None
    return row


def curve(cell: Cell, *, metric: str = "eval_return", reps: int = 1000) -> dict[str, np.ndarray]:
    """IQM of ``metric`` over the seeds at every evaluation step, with a 95 % bootstrap band.

    A run that stopped early (once solved) keeps its last value at later steps.
    """
    steps = sorted({row["step"] for run in cell.runs for row in run.summary.get("history", [])})
    values = np.full((len(cell.runs), len(steps)), np.nan)
    for i, run in enumerate(cell.runs):
        by_step = {row["step"]: row.get(metric) for row in run.summary.get("history", [])}
        last = np.nan
        for j, step in enumerate(steps):
            last = by_step.get(step, last) if by_step.get(step) is not None else last
            values[i, j] = last
    iqm, low, high = [], [], []
    for j in range(len(steps)):
        column = values[:, j][~np.isnan(values[:, j])]
        stats = interval(column[:, None], reps=reps) if len(column) else {"iqm": np.nan, "iqm_low": np.nan, "iqm_high": np.nan}
        iqm.append(stats["iqm"])
        low.append(stats["iqm_low"])
        high.append(stats["iqm_high"])
    return {"step": np.array(steps), "iqm": np.array(iqm), "low": np.array(low), "high": np.array(high)}


def normalized_scores(cells: Sequence[Cell], names: Sequence[str], tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """``{algorithm: [runs, tasks]}`` of final returns min-max normalised per task over all runs.

    ``names[i]`` is cell ``i``'s algorithm (its config without the task); runs are truncated to the
    fewest seeds any algorithm has on any task, as rliable needs equal run counts.
    """
    lows = {t: min(r.summary["eval_return_mean"] for c in cells if c.task == t for r in c.runs) for t in tasks}
    highs = {t: max(r.summary["eval_return_mean"] for c in cells if c.task == t for r in c.runs) for t in tasks}
    table: dict[str, dict[str, list[float]]] = {}
    for cell, name in zip(cells, names):
        span = (highs[cell.task] - lows[cell.task]) or 1.0
        scores = [(r.summary["eval_return_mean"] - lows[cell.task]) / span for r in cell.runs]
        table.setdefault(name, {})[cell.task] = scores
    complete = {name: per_task for name, per_task in table.items() if set(per_task) == set(tasks)}
    if not complete:
        return {}
    runs = min(len(scores) for per_task in complete.values() for scores in per_task.values())
    return {name: np.array([per_task[t][:runs] for t in tasks]).T for name, per_task in complete.items()}
