"""The study command line: ``python -m maxent_components.study SWEEP_DIR ... --out DIR``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from maxent_components.study.collect import StudyError, collect_runs, group_cells, task_keys
from maxent_components.study.report import cell_label, tile_run_figures, write_figures, write_tables
from maxent_components.study.stats import cell_row

__all__ = ["main", "run_study"]


def run_study(
    folders: Sequence[str | Path],
    out: str | Path,
    *,
    metric: str | None = None,
    threshold: float | None = None,
    min_seeds: int = 5,
    reps: int = 10_000,
    allow_mixed_versions: bool = False,
    plots: bool = True,
    tile: Sequence[str] = (),
) -> dict:
    """Collect, aggregate and write a study; return ``{"cells": [...], "keys": [...], "files": {...}, "notes": [...]}``."""
    runs, notes = collect_runs(folders, allow_mixed_versions=allow_mixed_versions)
    if metric is not None and not any(metric in row for run in runs for row in run.summary.get("history", [])):
        recorded = sorted({key for run in runs for row in run.summary.get("history", []) for key in row} - {"step"})
        raise StudyError(f"--metric {metric!r} is in no run's evaluations; they record {', '.join(recorded) or 'nothing'}.")
    for name in tile if plots else ():
        if not any((run.path / name).is_file() for run in runs):
            raise StudyError(f"--tile {name}: no run below the folders wrote {name}.")
    cells, keys = group_cells(runs)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StudyError(f"--out {out}: cannot make the folder ({err.strerror or err}).") from None
    rows = [cell_row(cell, reps=reps, metric=metric, threshold=threshold) for cell in cells]
    notes = list(notes)
    by_task = task_keys(keys, cells)
    options = [k for k in keys if k not in by_task]
    counted = f"{len(runs)} finished run{'s' * (len(runs) != 1)} in {len(cells)} cell{'s' * (len(cells) != 1)}"
    notes.insert(0, f"{counted}; the cells differ in: {', '.join(options) or 'nothing but the task'}"
                 + (f"; set by the task: {', '.join(by_task)}." if by_task else "."))
    for cell, row in zip(cells, rows):
        if row["seeds"] < min_seeds:
            notes.append(f"too few seeds ({row['seeds']} < {min_seeds}): {cell.task}, {cell_label(keys, cell, skip=by_task)}; its intervals are wide.")
    bar = f"{metric} >= {threshold}" if metric is not None and threshold is not None else "each run's own solved bar"
    notes.append(f"'reached bar': runs whose evaluation met {bar}; IQM: interquartile mean (rliable).")
    write_tables(out, keys, cells, rows, notes)
    files = {"results.csv": str(out / "results.csv"), "results.md": str(out / "results.md")}
    if plots:
        files.update(write_figures(out, keys, cells, reps=min(reps, 2000)))
        for name in tile:
            files.update(tile_run_figures(out, keys, cells, name))
    return {"cells": [dict(zip(keys, cell.key)) | row for cell, row in zip(cells, rows)], "keys": keys, "files": files, "notes": notes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maxent_components.study",
        description="Aggregate the finished runs of sweeps into tables with 95 % confidence intervals and plots.",
    )
    parser.add_argument("folders", nargs="+", help="sweep (or run) folders; every finished run below them is used")
    parser.add_argument("--out", required=True, help="folder for results.csv, results.md and the figures")
    parser.add_argument("--metric", default=None, help="evaluation metric of the bar (default: each run's own bar)")
    parser.add_argument("--threshold", type=float, default=None, help="the bar on --metric (steps to it are reported)")
    parser.add_argument("--min-seeds", type=int, default=5, help="cells with fewer seeds are flagged (default 5)")
    parser.add_argument("--reps", type=int, default=10_000, help="bootstrap resamples of the intervals (default 10000)")
    parser.add_argument("--allow-mixed-versions", action="store_true", help="mix runs of different code versions")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.add_argument(
        "--tile", action="append", default=[], metavar="FIGURE",
        help="a figure every run wrote (e.g. q_contours.png): the lowest seed's of each cell side by side (repeatable)",
    )
    args = parser.parse_args(argv)
    if (args.metric is None) != (args.threshold is None):
        parser.error("--metric and --threshold go together")
    if args.threshold is not None and not math.isfinite(args.threshold):
        parser.error(f"--threshold must be a finite number, got {args.threshold}")
    if args.min_seeds < 1 or args.reps < 100:
        parser.error("--min-seeds must be >= 1 and --reps >= 100")
    try:
        result = run_study(
            args.folders, args.out, metric=args.metric, threshold=args.threshold, min_seeds=args.min_seeds,
            reps=args.reps, allow_mixed_versions=args.allow_mixed_versions, plots=not args.no_plots,
            tile=args.tile,
        )
    except StudyError as err:
        print(f"study: error: {err}", file=sys.stderr)
        return 2
    print(Path(result["files"]["results.md"]).read_text(encoding="utf-8"))
    for name, path in result["files"].items():
        print(f"{name}: {path}")
    return 0
