"""Writing a study: ``results.csv``, ``results.md``, ``curves.png`` and, with several tasks,
``profiles.png`` and ``aggregate.png``; on request, a figure every run wrote tiled across the cells.
Every file is written atomically."""

from __future__ import annotations

import csv
import io
import math
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maxent_components.runs.files import atomic_write_bytes, atomic_write_text
from maxent_components.study.collect import Cell, task_keys
from maxent_components.study.stats import bootstrap_seed, curve, normalized_scores

__all__ = ["cell_label", "tile_run_figures", "write_figures", "write_tables"]


def short(value: str) -> str:
    """``'maxent_components.samplers.SVGDSampler'`` → ``'SVGDSampler'``; other values as they are."""
    text = str(value).strip("'\"")
    return text.rsplit(".", 1)[-1] if text.count(".") >= 2 and " " not in text else text


def cell_label(keys: Sequence[str], cell: Cell, *, skip: Sequence[str] = ()) -> str:
    """``sampler=SVGDSampler, soft_value=UniformSoftValue``: the cell's options, leaving out those it
    does not have (``None``, e.g. the proposal of an estimator that takes none)."""
    parts = [f"{k.replace('._target_', '')}={short(v)}" for k, v in zip(keys, cell.key) if k not in skip and v != "None"]
    if parts:
        return ", ".join(parts)
    absent = sorted({k.split(".")[0] for k, v in zip(keys, cell.key) if k not in skip and v == "None"})
    return "without " + ", ".join(absent) if absent else "all runs"


def _interval(row: dict, name: str) -> str:
    """``value [low, high]`` of the statistic ``name`` of a results row."""
    return f"{_number(row[name])} [{_number(row[name + '_low'])}, {_number(row[name + '_high'])}]"


def _number(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_tables(out: Path, keys: Sequence[str], cells: Sequence[Cell], rows: Sequence[dict], notes: Sequence[str]) -> None:
    """``results.csv`` (every number) and ``results.md`` (the table people read, then the notes)."""
    shown = [i for i, k in enumerate(keys) if k not in task_keys(keys, cells)]  # the task column stands for them
    names = [keys[i].replace("._target_", "") for i in shown]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["task", *names, *rows[0]])
    for cell, row in zip(cells, rows):
        writer.writerow([cell.task, *[short(cell.key[i]) for i in shown], *row.values()])
    atomic_write_text(out / "results.csv", buffer.getvalue())

    head = ["task", *names, "seeds", "final return: mean [95 % CI]",
            "final return: IQM [95 % CI]", "best return: IQM [95 % CI]", "reached bar", "steps to bar (median)",
            "steps to bar: IQM [95 % CI]", "steps to bar by seed",
            "wall time (s)", "updates/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell, row in zip(cells, rows):
        values = [cell.task, *["–" if cell.key[i] == "None" else short(cell.key[i]) for i in shown], str(row["seeds"]), _interval(row, "final_mean"),
                  _interval(row, "final_iqm"), _interval(row, "best_iqm"), row["reached_bar"], _number(row["steps_to_bar_median"], 0),
                  f"{_number(row['steps_to_bar_iqm'], 0)} [{_number(row['steps_to_bar_iqm_low'], 0)}, {_number(row['steps_to_bar_iqm_high'], 0)}]"
                  if row["steps_to_bar_iqm"] is not None else "– (not every run)", row["steps_to_bar_by_seed"],
                  _number(row["wall_time_s"]), _number(row["updates_per_s"])]
        lines.append("| " + " | ".join(values) + " |")
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    atomic_write_text(out / "results.md", text)


def _save(figure, path: Path) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
    return str(path)


def write_figures(out: Path, keys: Sequence[str], cells: Sequence[Cell], *, reps: int) -> dict[str, str]:
    """Learning curves per task (IQM over seeds with 95 % bands); with several tasks, rliable's
    performance profiles and the aggregate IQM of min-max normalised final returns."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = sorted({cell.task for cell in cells})
    by_task = task_keys(keys, cells)
    labels = [textwrap.fill(cell_label(keys, cell, skip=by_task), 70) for cell in cells]
    below = any("\n" in label for label in labels)  # long labels go below the axes, which keep their height
    lines = max(sum(label.count("\n") + 1 for label, c in zip(labels, cells) if c.task == t) for t in tasks)
    figure = Figure(figsize=(6.5 * len(tasks), 4.5 + (0.14 * lines + 0.3 if below else 0)))
    FigureCanvasAgg(figure)
    for index, task in enumerate(tasks):
        axis = figure.add_subplot(1, len(tasks), index + 1)
        for label, cell in ((label, c) for label, c in zip(labels, cells) if c.task == task):
            band = curve(cell, reps=reps)
            line = axis.plot(band["step"], band["iqm"], label=label)[0]
            axis.fill_between(band["step"], band["low"], band["high"], color=line.get_color(), alpha=0.2)
        axis.set_title(task)
        axis.set_xlabel("env steps")
        axis.set_ylabel("evaluation return (IQM, 95 % CI)")
        axis.grid(True, alpha=0.3)
        if below:
            axis.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
        else:
            axis.legend(fontsize=6)
    figure.tight_layout()
    written = {"curves": _save(figure, out / "curves.png")}
    if len(tasks) > 1:
        names = [cell_label(keys, cell, skip=by_task) for cell in cells]
        scores = normalized_scores(cells, names, tasks)
        if scores:
            written.update(_multi_task(out, scores, reps=reps))
    return written


def _multi_task(out: Path, scores: dict[str, np.ndarray], *, reps: int) -> dict[str, str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from rliable import library as rly
    from rliable import metrics, plot_utils

    taus = np.linspace(0.0, 1.0, 41)
    with bootstrap_seed():
        profiles, profile_cis = rly.create_performance_profile(scores, taus, reps=reps)
        point, ci = rly.get_interval_estimates(scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps)
    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=profile_cis, ax=axis,
                                         xlabel="normalised final return (τ)")
    axis.legend(list(scores), fontsize=7)
    figure.tight_layout()
    written = {"profiles": _save(figure, out / "profiles.png")}
    figure = Figure(figsize=(7 + 0.06 * max(len(n) for n in scores), 0.5 * len(scores) + 1.5))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    names = list(scores)
    centers = [point[n][0] for n in names]
    errors = np.array([[point[n][0] - ci[n][0, 0], ci[n][1, 0] - point[n][0]] for n in names]).T
    axis.errorbar(centers, range(len(names)), xerr=errors, fmt="o", capsize=4)
    axis.set_yticks(range(len(names)), names, fontsize=7)
    axis.set_xlabel("IQM of normalised final return (95 % stratified-bootstrap CI)")
    axis.grid(True, axis="x", alpha=0.3)
    figure.tight_layout()
    written["aggregate"] = _save(figure, out / "aggregate.png")
    return written


def _file_part(text: str) -> str:
    """``maxent_components/MultiGoal-v0 (reward_goals=[[0, 2]])`` → ``maxent_components_MultiGoal-v0_reward_goals_0_2``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def tile_run_figures(out: Path, keys: Sequence[str], cells: Sequence[Cell], name: str) -> dict[str, str]:
    """Per task, the figure ``name`` (e.g. ``q_contours.png``) of each cell's lowest-seed run, side by
    side with the cell as its title, in ``<stem>_by_cell[_<task>].png``; cells without it are skipped."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    written = {}
    tasks = sorted({cell.task for cell in cells})
    by_task = task_keys(keys, cells)
    for task in tasks:
        found = []
        for cell in (c for c in cells if c.task == task):
            run = min(cell.runs, key=lambda r: r.config.get("seed", 0))
            if (run.path / name).is_file():
                found.append((cell_label(keys, cell, skip=by_task) + f" (seed {run.config.get('seed', 0)})", imread(run.path / name)))
        if not found:
            continue
        height, width = found[0][1].shape[:2]
        # About three images' worth of width per row: wide figures (a row of panels) one per row.
        columns = max(1, min(len(found), 3, round(3 * height / width)))
        rows = math.ceil(len(found) / columns)
        figure = Figure(figsize=(columns * 6.0, rows * 6.0 * height / width + 0.4 * rows))
        FigureCanvasAgg(figure)
        for index, (title, image) in enumerate(found):
            axis = figure.add_subplot(rows, columns, index + 1)
            axis.imshow(image)
            axis.set_title(textwrap.fill(title, 70), fontsize=8)
            axis.axis("off")
        figure.tight_layout()
        stem = Path(name).stem + "_by_cell" + (f"_{_file_part(task)}" if len(tasks) > 1 else "")
        written[stem] = _save(figure, out / f"{stem}.png")
    return written
