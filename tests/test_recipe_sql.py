"""The SQL recipe end to end at a tiny budget: every sampler × soft-value pair, outputs, errors, help."""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_runner import PNG_SIGNATURE, RECIPES, run_recipe

SCRIPT = RECIPES / "sql.py"


def _run(*overrides: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return run_recipe("sql", *overrides, timeout=timeout)


def _check_run_dir(run_dir: Path, *, env: str, figures: bool) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is True
    assert summary["env_steps"] == 200 and summary["updates"] > 0
    assert summary["wall_time_s"] > 0 and summary["eval_return_mean"] is not None
    with (run_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and rows[0]["step"] and any(row["eval_return"] for row in rows)
    assert all(float(row["loss_qvalue"]) >= 0 for row in rows if row["loss_qvalue"])
    assert (run_dir / "checkpoint.pt").stat().st_size > 1000
    if env == "multigoal":
        assert 0 <= summary["goals_reached"] <= 4
        assert "all_goals_at_step" in summary
    expected = {"learning_curve"} | ({"q_contours", "trajectories"} if env == "multigoal" else set())
    if figures:
        assert set(summary["figures"]) == expected
        for path in summary["figures"].values():
            data = Path(path).read_bytes()
            assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    return summary


def test_every_valid_combination_runs_as_a_sweep(tmp_path):
    # One Hydra multirun keeps the interpreter start-up cost to one for six runs; the seventh valid
    # pair (gaussian, policy) is the run of test_multigoal_outputs_and_figures.
    out = _run(
        "-m",
        "sampler=svgd,langevin,gaussian",
        "soft_value=uniform,importance",
        "smoke=true",
        "plots=false",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweep.subdir=${sampler}-${soft_value}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for sampler in ("svgd", "langevin", "gaussian"):
        for soft_value in ("uniform", "importance"):
            summary = _check_run_dir(tmp_path / f"{sampler}-{soft_value}", env="multigoal", figures=False)
            assert (summary["sampler"], summary["soft_value"]) == (sampler, soft_value)


def test_multigoal_outputs_and_figures(tmp_path):
    out = _run("smoke=true", "sampler=gaussian", "soft_value=policy", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _check_run_dir(tmp_path, env="multigoal", figures=True)
    assert (summary["sampler"], summary["soft_value"]) == ("gaussian", "policy")
    # Without a progress bar the run ends with a report naming the goals and the figures.
    assert "goals reached" in out.stdout and "q_contours.png" in out.stdout


def test_pendulum_smoke(tmp_path):
    out = _run("env=pendulum", "smoke=true", "eval_episodes=1", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _check_run_dir(tmp_path, env="pendulum", figures=True)
    assert summary["target_return"] == -200.0 and summary["target_update"] == "soft"
    assert summary["alpha"] == 0.2


@functools.cache
def _load_recipe():
    spec = importlib.util.spec_from_file_location("recipes_sql", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the config's annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _compose(*overrides: str):
    """The config object Hydra builds from ``overrides``: schema merged with the dot-list, then instantiated."""
    from omegaconf import OmegaConf

    recipe = _load_recipe()
    merged = OmegaConf.merge(OmegaConf.structured(recipe.SQLConfig), OmegaConf.from_dotlist(list(overrides)))
    return OmegaConf.to_object(merged)


def test_bad_override_on_the_command_line_fails_before_training(tmp_path):
    out = _run("sampler=hmc", "smoke=true", f"hydra.run.dir={tmp_path}", timeout=120)
    assert out.returncode != 0
    assert "option sampler='hmc' is invalid; expected one of ['svgd', 'langevin', 'gaussian']" in out.stderr
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["soft_value=policy"], "soft_value=policy needs a sampler with a tractable log-probability"),
        (["sampler=langevin", "soft_value=policy"], "sampler=langevin has none"),
        (["batch_size=0"], "option batch_size=0 is invalid; expected a value > 0"),
        (["fixed_fraction=1.5"], "option fixed_fraction=1.5 is invalid; expected a value < 1"),
        (["env=cartpole"], "option env='cartpole' is invalid; expected one of ['multigoal', 'pendulum']"),
        (["target_update=polyak"], "option target_update='polyak' is invalid"),
        (["alpha=-1.0"], "option alpha=-1.0 is invalid; expected a value > 0"),
    ],
)
def test_bad_option_values_are_rejected_with_the_option_named(overrides, message):
    with pytest.raises(ValueError) as info:
        _compose(*overrides)
    assert message in str(info.value)


def test_null_options_take_the_environment_reference_values():
    multigoal = _compose()
    assert [multigoal.resolved(k) for k in ("alpha", "reward_scale", "target_update", "eval_episodes")] == [
        1.0,
        0.1,
        "hard",
        10,
    ]
    pendulum = _compose("env=pendulum", "alpha=0.5")
    assert [pendulum.resolved(k) for k in ("alpha", "reward_scale", "target_update", "target_return")] == [
        0.5,
        1.0,
        "soft",
        -200.0,
    ]


def test_help_lists_every_option():
    import dataclasses

    out = _run("--help", timeout=120)
    assert out.returncode == 0
    for field in dataclasses.fields(_load_recipe().SQLConfig):
        assert f"  {field.name}=" in out.stdout, field.name
    assert "One of: svgd, langevin, gaussian." in " ".join(out.stdout.split())
