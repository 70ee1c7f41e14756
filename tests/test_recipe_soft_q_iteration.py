"""The soft Q-iteration recipe end to end: outputs parse, the α → 0 gap shrinks, help and usage errors."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from recipe_runner import PNG_SIGNATURE, run_recipe

from maxent_components.recipes import soft_q_iteration as recipe
from maxent_components.runs import UsageError, read_checkpoint


def _run(*overrides: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run_recipe("soft_q_iteration", *overrides, timeout=timeout)


def _metric(run_dir: Path, name: str) -> list[tuple[int, float]]:
    """``(step, value)`` rows of one metric written by TorchRL's csv logger."""
    lines = (run_dir / "logs" / "metrics" / "scalars" / f"{name}.csv").read_text().splitlines()
    return [(int(step), float(value)) for step, value in (line.split(",") for line in lines)]


def test_recipe_writes_its_outputs_and_the_gap_shrinks(tmp_path):
    alphas = [0.0, 0.01, 0.1, 1.0]
    overrides = (f"hydra.run.dir={tmp_path}", "progress=false", "rollouts=400", f"alphas=[{','.join(map(str, alphas))}]")
    out = _run(*overrides)
    assert out.returncode == 0, out.stderr[-3000:]

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["finished"] is True and summary["all_converged"] is True
    assert summary["config"]["alphas"] == alphas and summary["config"]["rollouts"] == 400
    assert len(summary["config_hash"]) == 64
    assert summary["alphas"] == alphas
    gaps = summary["v_gap_inf"]
    assert gaps[0] == 0.0
    assert 0 < gaps[1] < gaps[2] < gaps[3]
    assert all(gap <= bound + 1e-9 for gap, bound in zip(gaps, summary["v_gap_bound"]))
    assert summary["gap_shrinks_as_alpha_decreases"] and summary["gaps_within_bound"]
    assert summary["monte_carlo_consistent"] is True
    assert summary["v_start"][0] == summary["hard_v_start"]
    assert summary["wall_time_s"] > 0

    # One row per alpha, the step being the alpha's index, values exactly those of the summary.
    steps = list(range(len(alphas)))
    assert _metric(tmp_path, "alpha") == list(zip(steps, alphas))
    assert _metric(tmp_path, "v_gap_inf") == list(zip(steps, gaps))
    assert _metric(tmp_path, "v_start") == list(zip(steps, summary["v_start"]))
    assert [int(v) for _, v in _metric(tmp_path, "iterations")] == summary["iterations"]
    assert all(v > 1 for v in summary["iterations"])
    assert all(v == 1.0 for _, v in _metric(tmp_path, "converged"))
    mc = zip(_metric(tmp_path, "mc_return_start"), _metric(tmp_path, "mc_stderr"), summary["v_start"])
    for (_, mean), (_, stderr), v_start in mc:
        assert abs(mean - v_start) <= 4 * stderr + 1e-9

    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == len(alphas) and checkpoint["config_hash"] == summary["config_hash"]
    tables = checkpoint["state"]
    assert tables["alphas"] == alphas
    mdp = tables["mdp"]
    num_states, num_actions = mdp["rewards"].shape
    for alpha in alphas:
        solution = tables["solutions"][repr(alpha)]
        assert solution["q"].shape == (num_states, num_actions)
        assert solution["v"].shape == (num_states,)
        torch.testing.assert_close(solution["log_policy"].exp().sum(-1), torch.ones(num_states, dtype=torch.float64))
    # The saved tables reproduce the printed start value and the hard optimum.
    start = tables["start"]
    assert tables["solutions"]["0.1"]["v"][start].item() == summary["v_start"][2]
    assert tables["hard_optimum"]["v"][start].item() == summary["hard_v_start"]

    figure = Path(summary["figures"]["soft_q_iteration"])
    data = figure.read_bytes()
    assert figure.parent == tmp_path and data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    assert "||V_alpha - V_0||_inf" in out.stdout and "policy (most likely move" in out.stdout

    # A finished run is skipped when launched again, whatever its run-only options.
    again = _run(*overrides, "plots=false")
    assert again.returncode == 0 and "already holds a finished run" in again.stdout

    # An interrupted run (unfinished summary, checkpoint written) resumes without logging its rows twice.
    summary["finished"] = False
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    resumed = _run(*overrides)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "summary.json").read_text())["v_start"] == summary["v_start"]
    assert _metric(tmp_path, "v_start") == list(zip(steps, summary["v_start"]))


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
    assert summary["config"]["layout"] == ["S..#", "....", "..#G"]
    # Deterministic moves, step cost 1: the hard optimum is the discounted shortest path (5 steps).
    assert math.isclose(summary["hard_v_start"], -(1 - 0.9**5) / (1 - 0.9), abs_tol=1e-9)
    assert not (tmp_path / "soft_q_iteration.png").exists()
    # Without rollouts there is no Monte Carlo metric at all (no empty or "None" rows).
    scalars = tmp_path / "logs" / "metrics" / "scalars"
    assert not (scalars / "mc_return_start.csv").exists() and _metric(tmp_path, "alpha") == [(0, 0.0), (1, 0.001)]


def test_help_lists_every_option():
    out = _run("--help")
    assert out.returncode == 0
    for name in ("seed=0", "layout=", "slip=0.1", "gamma=0.95", "alphas=[0.0,0.01", "tol=", "rollouts=", "plots=",
                 "logger.backend=csv"):
        assert name in out.stdout, name
    # its footer's examples are options it has (it has no env or sampler groups)
    assert "(-m seed=0,1,2)" in out.stdout and "sampler=" not in out.stdout and "env=" not in out.stdout


@pytest.mark.parametrize(
    "override, message",
    [
        ("layout=['S..','...']", "layout must hold exactly one 'S' and one 'G'; found 1 and 0."),
        ("alphas=[0.1,-1]", "option alphas=[0.1, -1.0] is invalid; expected finite values >= 0."),
        ("totl=3", "unknown option 'totl' (totl); did you mean tol?"),
    ],
)
def test_a_usage_error_is_one_line_and_status_2_before_any_folder(tmp_path, override, message):
    run_dir = tmp_path / "run"
    out = _run(f"hydra.run.dir={run_dir}", override)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"soft_q_iteration: error: {message}"]
    assert out.stdout == "" and not run_dir.exists()


def test_the_schema_and_the_check_name_the_bad_option():
    def config(**overrides):
        cfg = OmegaConf.structured(recipe.SoftQIterationConfig)
        for key, value in overrides.items():
            cfg[key] = value
        return cfg

    recipe.check(config())  # the defaults are valid
    for layout, text in (
        (["S..", "..."], "exactly one 'S' and one 'G'"),
        (["S.G", "S.."], "exactly one 'S' and one 'G'"),
        (["S.G", ".."], "rows of equal length"),
        (["S.G", ".x."], "unknown characters"),
    ):
        with pytest.raises(ValueError, match=f"layout.*{text}"):
            recipe.check(config(layout=layout))
    with pytest.raises(ValueError, match="option slip"):
        recipe.SoftQIterationConfig(slip=1.5)
    with pytest.raises(ValueError, match="at least one temperature"):
        recipe.SoftQIterationConfig(alphas=[])
    with pytest.raises(ValueError, match="finite values >= 0"):
        recipe.SoftQIterationConfig(alphas=[0.0, math.inf])
    # The whole command line is checked before anything runs, each cell of a sweep included.
    recipe.recipe.preflight(["gamma=0.9"], multirun=False)
    with pytest.raises(UsageError, match="option gamma=1.5 is invalid"):
        recipe.recipe.preflight(["gamma=0.9,1.5"], multirun=True)
    with pytest.raises(UsageError, match="layout"):
        recipe.recipe.preflight(["layout=[S.G,G..]"], multirun=False)
