"""Learning tests: every recipe learns its task, with one fixed seed each (CI), stopping once solved.

The seeds' steps to the bar over several seeds are in the README's results table; each test uses one
of them and the recipe's defaults, on one thread (deterministic given the seed).
"""

from __future__ import annotations

import pytest
from recipe_runner import run_recipe, summary_of

pytestmark = pytest.mark.slow


def _train(name: str, tmp_path, *overrides: str) -> dict:
    out = run_recipe(
        name, "threads=1", "progress=false", "plots=false", f"hydra.run.dir={tmp_path}", *overrides, timeout=1500
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = summary_of(tmp_path)
    assert summary["finished"] is True
    return summary


def test_soft_dqn_solves_cartpole(tmp_path):
    summary = _train("soft_dqn", tmp_path, "seed=0")
    assert summary["solved"], f"best evaluation return {summary['best_eval_return']} < 475 within 50k steps"
    assert summary["eval_return_mean"] >= 475.0 and summary["solved_at_step"] <= 50_000


def test_discrete_sac_solves_cartpole(tmp_path):
    summary = _train("discrete_sac", tmp_path, "seed=0")
    assert summary["solved"], f"best evaluation return {summary['best_eval_return']} < 400 within 100k steps"
    assert summary["eval_return_mean"] >= 400.0 and summary["solved_at_step"] <= 100_000


def test_sql_reaches_all_four_goals_of_multigoal(tmp_path):
    summary = _train("sql", tmp_path, "seed=0", "stop_when_solved=true")
    # Ten evaluation episodes from the origin end in four distinct goals.
    assert summary["goals_reached"] == 4 and summary["solved_at_step"] <= 30_000, summary["history"]


def test_sql_reaches_minus_200_on_pendulum(tmp_path):
    summary = _train("sql", tmp_path, "env=pendulum", "seed=0", "stop_when_solved=true", "total_frames=20000")
    assert summary["solved"] and summary["eval_return_mean"] >= -200.0 and summary["solved_at_step"] <= 20_000


def test_sac_reaches_minus_200_on_pendulum(tmp_path):
    """SAC composed from the parts (twin critics, the actor's policy soft value, a learned α): the actor
    trains against the loss's own ensemble (a mis-wired ensemble left it near −1100 after 5k steps)."""
    summary = _train("sac", tmp_path, "seed=0", "stop_when_solved=true")
    assert summary["solved"] and summary["solved_at_step"] <= 15_000, summary["history"]
    by_6k = [row["eval_return"] for row in summary["history"] if row["step"] <= 6_000]
    assert max(by_6k) >= -400.0, summary["history"]


def test_pcl_solves_cartpole(tmp_path):
    summary = _train("pcl", tmp_path, "seed=0")
    assert summary["solved"], f"best evaluation return {summary['best_eval_return']} < 475 within 200k steps"
    assert summary["eval_return_mean"] >= 475.0 and summary["solved_at_step"] <= 200_000


def test_pcl_with_a_clipped_gaussian_reaches_minus_200_on_pendulum(tmp_path):
    """Continuous PCL: with a tanh-Gaussian actor the fit of log π to replayed actions collapsed the
    policy onto the box's corners (still about −1300 after 20k steps); the clipped Gaussian's bounded
    log-probability removes that pull (seeds 0–4 pass −200 at 10k–26k steps, see the README)."""
    summary = _train("pcl", tmp_path, "env=pendulum", "sampler=clipped_gaussian", "seed=0")
    assert summary["solved"] and summary["solved_at_step"] <= 20_000, summary["history"]
