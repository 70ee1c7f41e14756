"""Runs that can be trusted: killed runs resume exactly, relaunched sweeps run exactly the missing cells."""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from recipe_runner import ROOT, run_recipe, summary_of

from maxent_components.runs import CheckpointError
from maxent_components.runs.checkpoint import verify_checkpoint

RUN = ["smoke=true", "plots=false", "threads=1", "total_frames=1500", "frames_per_batch=10", "checkpoint_interval=100", "buffer_size=700"]
LOGGED = ["loss_qvalue", "loss_actor", "eval_return", "goals_reached", "train_return"]


def _start(*overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "maxent_components.recipes.sql", *overrides],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _children_cpu_seconds() -> float:
    """CPU seconds used so far by this process's finished child processes (the recipe runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _checkpoint_step(run_dir: Path) -> int:
    try:
        return verify_checkpoint(run_dir / "checkpoint.pt")["step"]
    except CheckpointError:  # not written yet, or being replaced at this very moment
        return 0


def _kill_at(run_dir: Path, step: int) -> int:
    """Start the run and SIGKILL it once its checkpoint has passed ``step`` (plus a random delay)."""
    process = _start(*RUN, f"hydra.run.dir={run_dir}")
    deadline = time.monotonic() + 240
    while _checkpoint_step(run_dir) < step and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(step).uniform(0.0, 0.3))  # anywhere: updates, evaluation, a checkpoint write
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return _checkpoint_step(run_dir)


def test_a_run_killed_twice_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path):
    """The first kill lands before the replay buffer is full (its rows are saved), the second after it
    wrapped around (its whole state is saved)."""
    start = _children_cpu_seconds()
    full = run_recipe("sql", *RUN, f"hydra.run.dir={tmp_path / 'full'}")
    full_seconds = _children_cpu_seconds() - start
    assert full.returncode == 0, full.stderr[-3000:]

    killed = tmp_path / "killed"
    first = _kill_at(killed, 400)
    second = _kill_at(killed, max(first, 900))
    assert 0 < first <= second < 1500, (first, second)
    start = _children_cpu_seconds()
    out = run_recipe("sql", *RUN, f"hydra.run.dir={killed}")
    resumed_seconds = _children_cpu_seconds() - start
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming" in out.stdout

    a, b = summary_of(tmp_path / "full"), summary_of(killed)
    for key in ("env_steps", "updates", "train_episodes", "eval_return_mean", "best_eval_return", "history", "config_hash"):
        assert a[key] == b[key], key
    for name in LOGGED:
        logs = [(d / "logs/metrics/scalars" / f"{name}.csv").read_text() for d in (tmp_path / "full", killed)]
        assert logs[0] == logs[1], name
    # The resumed part redid at most the steps after the second checkpoint: it used less CPU time than
    # the whole run (CPU time, not wall time, which another process on the machine can stretch).
    assert resumed_seconds < full_seconds, (resumed_seconds, full_seconds)


def test_a_relaunched_sweep_runs_exactly_the_missing_cells(tmp_path):
    common = ["smoke=true", "plots=false", f"hydra.sweep.dir={tmp_path}"]
    first = run_recipe("sql", "-m", "sampler=svgd,gaussian", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_recipe("sql", "-m", "sampler=svgd,gaussian", "seed=0,1", *common)
    assert second.returncode == 0, second.stderr[-3000:]
    # seed 0 is the default: both seed-0 cells finished in the first sweep and are skipped
    assert second.stdout.count("already holds a finished run of this config; skipping") == 2
    cells = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert cells == ["sampler=gaussian", "sampler=gaussian,seed=1", "sampler=svgd", "sampler=svgd,seed=1"]
    for cell in cells:
        config = summary_of(tmp_path / cell)["config"]
        sampler = "svgd" if "svgd" in cell else "gaussian"
        assert config["sampler"]["_target_"].endswith({"svgd": "SVGDSampler", "gaussian": "GaussianSampler"}[sampler])
        assert config["seed"] == (1 if "seed=1" in cell else 0), cell
    # relaunching the same sweep runs nothing
    third = run_recipe("sql", "-m", "sampler=svgd,gaussian", "seed=0,1", *common)
    assert third.stdout.count("skipping") == 4


def test_a_worker_killed_mid_sweep_is_resumed_by_the_relaunch(tmp_path):
    sweep = ["-m", "seed=0,1", *RUN, f"hydra.sweep.dir={tmp_path}"]
    process = _start(*sweep)
    deadline = time.monotonic() + 240

    def cell(seed: int) -> Path:  # named by the overrides: frames_per_batch=10,seed=1,total_frames=1500
        found = [p for p in tmp_path.glob(f"*seed={seed}*") if p.is_dir()]
        return found[0] if found else tmp_path / "missing"

    while _checkpoint_step(cell(1)) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert summary_of(cell(0))["finished"] and not summary_of(cell(1))["finished"]
    out = run_recipe("sql", *sweep)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "already holds a finished run" in out.stdout and f"resuming {cell(1)}" in out.stdout
    assert summary_of(cell(1))["finished"] and summary_of(cell(1))["env_steps"] == 1500
