"""The soft Q-iteration recipe end to end: outputs parse, the α → 0 gap shrinks, help and errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from recipe_runner import PNG_SIGNATURE, RECIPES, run_recipe

SCRIPT = RECIPES / "soft_q_iteration.py"


def _run(*overrides: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run_recipe("soft_q_iteration", *overrides, timeout=timeout)


def test_recipe_writes_its_outputs_and_the_gap_shrinks(tmp_path):
    alphas = [0.0, 0.01, 0.1, 1.0]
    out = _run(
        f"hydra.run.dir={tmp_path}",
        "progress=false",
        "rollouts=400",
        f"alphas=[{','.join(map(str, alphas))}]",
    )
    assert out.returncode == 0, out.stderr[-3000:]

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["finished"] is True and summary["all_converged"] is True
    assert summary["alphas"] == alphas
    gaps = summary["v_gap_inf"]
    assert gaps[0] == 0.0
    assert 0 < gaps[1] < gaps[2] < gaps[3]
    assert all(gap <= bound + 1e-9 for gap, bound in zip(gaps, summary["v_gap_bound"]))
    assert summary["gap_shrinks_as_alpha_decreases"] and summary["gaps_within_bound"]
    assert summary["monte_carlo_consistent"] is True
    assert summary["v_start"][0] == summary["hard_v_start"]

    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["alpha"]) for row in rows] == alphas
    assert [float(row["v_gap_inf"]) for row in rows] == gaps
    assert all(int(row["iterations"]) > 1 and float(row["converged"]) == 1.0 for row in rows)
    for row in rows:
        assert abs(float(row["mc_return_start"]) - float(row["v_start"])) <= 4 * float(row["mc_stderr"]) + 1e-9

    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    tables = checkpoint["state_dicts"]
    assert checkpoint["extra"]["alphas"] == alphas
    mdp = tables["mdp"]
    num_states, num_actions = mdp["rewards"].shape
    for alpha in alphas:
        solution = tables["solutions"][repr(alpha)]
        assert solution["q"].shape == (num_states, num_actions)
        assert solution["v"].shape == (num_states,)
        torch.testing.assert_close(solution["log_policy"].exp().sum(-1), torch.ones(num_states, dtype=torch.float64))
    # The saved tables reproduce the printed start value.
    start = checkpoint["extra"]["start"]
    assert tables["solutions"]["0.1"]["v"][start].item() == summary["v_start"][2]

    figure = Path(summary["figures"]["soft_q_iteration"])
    data = figure.read_bytes()
    assert figure.parent == tmp_path and data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    assert "||V_alpha - V_0||_inf" in out.stdout and "policy (most likely move" in out.stdout

    # A finished run is skipped when launched again.
    again = _run(f"hydra.run.dir={tmp_path}", "progress=false")
    assert again.returncode == 0 and "already holds a finished run" in again.stdout


def test_custom_layout_without_figure_or_rollouts(tmp_path):
    out = _run(
        f"hydra.run.dir={tmp_path}",
        "progress=false",
        "plots=false",
        "rollouts=0",
        "slip=0",
        "gamma=0.9",
        "layout=['S..#','....','..#G']",
        "alphas=[0,0.001]",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["figures"] == {} and summary["monte_carlo_consistent"] is None
    # Deterministic moves, step cost 1: the hard optimum is the discounted shortest path (5 steps).
    assert math.isclose(summary["hard_v_start"], -(1 - 0.9**5) / (1 - 0.9), abs_tol=1e-9)
    assert not (tmp_path / "soft_q_iteration.png").exists()


def test_help_lists_every_option_and_a_bad_override_is_named(tmp_path):
    out = _run("--help")
    assert out.returncode == 0
    for name in ("seed=0", "layout=", "slip=0.1", "gamma=0.95", "alphas=[0.0, 0.01", "tol=", "rollouts=", "plots="):
        assert name in out.stdout, name
    bad = _run(f"hydra.run.dir={tmp_path}", "alphas=[0.1,-1]")
    assert bad.returncode != 0 and "option alphas=[0.1, -1.0] is invalid" in bad.stderr
    assert not (tmp_path / "summary.json").exists()


def _recipe_module():
    spec = importlib.util.spec_from_file_location("soft_q_iteration_recipe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve their module through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_layout_parsing_and_validation():
    recipe = _recipe_module()
    height, width, start, goal, walls = recipe.parse_layout(["S.#", "..G"])
    assert (height, width, start, goal, walls) == (2, 3, (0, 0), (1, 2), [(0, 2)])
    for layout, message in (
        (["S..", "..."], "exactly one 'S' and one 'G'"),
        (["S.G", "S.."], "exactly one 'S' and one 'G'"),
        (["S.G", ".."], "rows of equal length"),
        (["S.G", ".x."], "unknown characters"),
    ):
        with pytest.raises(ValueError, match=message):
            recipe.SoftQIterationConfig(layout=layout)
    with pytest.raises(ValueError, match="option slip"):
        recipe.SoftQIterationConfig(slip=1.5)
    with pytest.raises(ValueError, match="at least one temperature"):
        recipe.SoftQIterationConfig(alphas=[])
