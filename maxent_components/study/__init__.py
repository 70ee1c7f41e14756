"""Ablation studies: turn the finished runs of sweeps into tables with confidence intervals and plots.

``python -m maxent_components.study SWEEP_DIR [SWEEP_DIR ...] --out DIR`` collects every finished run
below the folders (by its recorded config), groups the runs that differ only by seed into cells and
writes ``results.csv``, ``results.md``, ``curves.png`` and, with several tasks, ``profiles.png`` and
``aggregate.png`` (mean and IQM with 95 % stratified-bootstrap intervals from ``rliable``).
"""

from maxent_components.study.collect import (
    Cell,
    Run,
    StudyError,
    collect_runs,
    group_cells,
    varying_keys,
)
from maxent_components.study.main import run_study

__all__ = ["Cell", "Run", "StudyError", "collect_runs", "group_cells", "run_study", "varying_keys"]
