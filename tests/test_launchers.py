"""Sweeps on real engines: a local process pool (joblib) and a local Ray instance run the same cells
as the sequential launcher, with the same results (each run is deterministic given its seed)."""

from __future__ import annotations

import pytest
from recipe_runner import run_recipe, summary_of

SWEEP = ["-m", "seed=0,1", "smoke=true", "plots=false", "threads=1"]
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "ray": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2"],
}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    folder = tmp_path_factory.mktemp("basic")
    out = run_recipe("sql", *SWEEP, f"hydra.sweep.dir={folder}")
    assert out.returncode == 0, out.stderr[-3000:]
    return folder


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_a_two_run_sweep_on_a_parallel_launcher_matches_the_sequential_one(launcher, sequential, tmp_path):
    out = run_recipe("sql", *SWEEP, *LAUNCHERS[launcher], f"hydra.sweep.dir={tmp_path}", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for cell in ("seed=0", "seed=1"):
        ours, reference = summary_of(tmp_path / cell), summary_of(sequential / cell)
        assert ours["finished"] and ours["config_hash"] == reference["config_hash"]
        assert ours["history"] == reference["history"], (launcher, cell)
    # relaunching on the same engine runs nothing
    again = run_recipe("sql", *SWEEP, *LAUNCHERS[launcher], f"hydra.sweep.dir={tmp_path}", timeout=600)
    assert again.returncode == 0 and again.stdout.count("skipping") == 2
