"""Soft Q-learning learns: MultiGoal reaches all four goals, Pendulum-v1 reaches a mean return of −200.

Each test trains the recipe with its reference settings and a fixed seed, stopping at the first
evaluation that meets the bar (on one thread both take a few minutes at most; see the README for the
steps-to-bar over several seeds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "recipes" / "sql.py"

pytestmark = pytest.mark.slow


def _train(tmp_path: Path, *overrides: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "seed=0",
            "threads=1",
            "stop_when_solved=true",
            "progress=false",
            "plots=false",
            "checkpoint=false",
            f"hydra.run.dir={tmp_path}",
            *overrides,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((tmp_path / "summary.json").read_text())


def test_multigoal_reaches_all_four_goals(tmp_path):
    summary = _train(tmp_path, "env=multigoal", "total_frames=30000")
    # Ten evaluation episodes from the origin end in four distinct goals.
    assert summary["goals_reached"] == 4, summary
    assert summary["all_goals_at_step"] is not None and summary["all_goals_at_step"] <= 30_000


def test_pendulum_reaches_minus_200(tmp_path):
    summary = _train(tmp_path, "env=pendulum", "total_frames=20000")
    assert summary["solved"], summary
    assert summary["eval_return_mean"] >= -200.0
    assert summary["solved_at_step"] <= 20_000
