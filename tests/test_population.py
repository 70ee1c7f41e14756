"""Populations: members never mix, each writes its own run, a killed population resumes, faults name the member."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from recipe_runner import ROOT, run_recipe, scalars, summary_of
from tensordict import TensorDict

from maxent_components.runs.checkpoint import verify_checkpoint
from maxent_components.training import target_updater
from maxent_components.training.population import Population

TESTS = str(ROOT / "tests")
FAST = ["smoke=true", "plots=false", "progress=false", "threads=1"]


def _population(recipe: str, overrides=(), members: int = 3) -> tuple[Population, TensorDict]:
    """A population of ``members`` small losses of ``recipe`` and a member-major batch ``[members, 16]``."""
    import importlib

    from hydra import compose, initialize_config_module

    module = importlib.import_module(f"maxent_components.recipes.{recipe}")
    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        cfg = compose(recipe, overrides=["network.num_cells=[16]", "batch_size=16", *overrides])
    losses = []
    for seed in range(members):
        torch.manual_seed(seed)
        env, eval_env, loss, _ = module.build(cfg)
        losses.append(loss)
        eval_env.close()
    torch.manual_seed(0)
    rollout = env.rollout(16 * members, break_when_any_done=False)
    env.close()
    return Population(losses), rollout.reshape(members, 16)


@pytest.mark.parametrize("recipe, overrides", [
    ("sac", []), ("sql", []), ("soft_dqn", []), ("discrete_sac", []), ("sac", ["sampler=stein"]),
    ("sac", ["sampler=diffusion"]), ("sql", ["soft_value=importance", "sampler=svgd_mala"]),
], ids=["sac", "sql-svgd", "soft_dqn", "discrete_sac", "stein", "diffusion", "sql-importance-mala"])
def test_a_members_losses_reach_only_its_own_slices_of_every_tensor(recipe, overrides):
    population, batch = _population(recipe, overrides)
    population.first_batch_checks(batch)
    out = population.loss(batch)
    params = list(population.parameters())
    for member in range(population.num_members):
        total = sum(value[member] for key, value in out.items() if key.startswith("loss_"))
        grads = torch.autograd.grad(total, params, retain_graph=True, allow_unused=True)
        reached = False
        for grad in grads:
            if grad is None:
                continue
            others = torch.cat([grad[:member].flatten(), grad[member + 1:].flatten()])
            assert bool((others == 0).all()), "a member's loss reached another member's parameters"
            reached = reached or bool(grad[member].abs().sum() > 0)
        assert reached


def test_changing_one_members_data_changes_no_other_member():
    results = []
    for reward in (0.0, 5.0):
        population, batch = _population("sac")
        batch.get(("next", "reward"))[1] += reward  # only member 1's rewards differ
        population.first_batch_checks(batch)
        optimizer = torch.optim.Adam(population.parameters(), lr=1e-2)
        updater = target_updater(population.template, kind="soft", tau=0.1)
        torch.manual_seed(7)
        for _ in range(3):
            optimizer.zero_grad()
            out = population.loss(batch)
            sum(v.sum() for k, v in out.items() if k.startswith("loss_")).backward()
            optimizer.step()
            population.update_targets(updater)
        results.append(population.params.detach().clone())
    same, changed = results
    for key, value in same.items(include_nested=True, leaves_only=True):
        other = changed.get(key)
        assert torch.equal(value[0], other[0]) and torch.equal(value[2], other[2]), key
    assert not torch.equal(same.get(("qvalue_network_params", "module", "0", "weight"))[1],
                           changed.get(("qvalue_network_params", "module", "0", "weight"))[1])


def test_targets_and_schedules_act_on_every_members_own_tensors():
    population, _ = _population("sql", ["temperature=annealed"])
    target, source = ("target_qvalue_network_params", "module", "0", "weight"), ("qvalue_network_params", "module", "0", "weight")
    with torch.no_grad():
        population.params.get(source).add_(torch.arange(3.0).view(3, 1, 1))
    before, online = population.params.get(target).clone(), population.params.get(source).clone()
    population.update_targets(target_updater(population.template, kind="soft", tau=0.25))
    torch.testing.assert_close(population.params.get(target), before + 0.25 * (online - before))
    hard = target_updater(population.template, kind="hard", interval=2)
    population.update_targets(hard)
    assert not torch.equal(population.params.get(target), online)
    population.update_targets(hard)  # every second step, as TorchRL's HardUpdate counts
    assert torch.equal(population.params.get(target), online)
    from maxent_components.temperature import scheduled_temperatures

    with population.swapped() as loss:
        for schedule in scheduled_temperatures(loss):
            schedule.step()
    counts = [value for key, value in population.params.items(True, True) if key[-1] == "step_count"]
    assert counts and all(torch.equal(count, torch.ones(3, dtype=count.dtype)) for count in counts)


def _member_logs(folder: Path) -> dict:
    return {f"{p.parent.name}/{p.name}": p.read_text() for p in sorted(folder.glob("seed=*/logs/metrics/scalars/*.csv"))
            if p.stem not in ("fps", "updates_per_s")}


RUN = [*FAST, "population=3", "total_frames=600", "eval_interval=200", "log_interval=100", "checkpoint_interval=200"]


def test_every_member_writes_the_run_of_its_seed_and_a_study_reads_them(tmp_path):
    from maxent_components.study.main import run_study

    folder = tmp_path / "pop"
    out = run_recipe("soft_dqn", *RUN, f"hydra.run.dir={folder}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("last evaluation return") == 3
    for seed in (0, 1, 2):
        summary = summary_of(folder / f"seed={seed}")
        assert summary["finished"] and summary["config"]["seed"] == seed and summary["config"]["population"] == 3
        assert summary["population"] == {"size": 3, "member": seed, "seeds": [0, 1, 2]}
        assert summary["env_steps"] == 600 and [h["step"] for h in summary["history"]] == [200, 400, 600]
        assert [s for s, _ in scalars(folder / f"seed={seed}", "eval_return")] == [200, 400, 600]
        assert verify_checkpoint(folder / f"seed={seed}" / "checkpoint.pt")["step"] == 600  # for init_from and compose
    study = run_study([folder], tmp_path / "study", reps=100, plots=False)
    (cell,) = study["cells"]  # the three members are the three seeds of one cell
    assert cell["seeds"] == 3
    again = run_recipe("soft_dqn", *RUN, f"hydra.run.dir={folder}")
    assert again.returncode == 0 and "already holds a finished run" in again.stdout
    twin = tmp_path / "twin"
    assert run_recipe("soft_dqn", *RUN, f"hydra.run.dir={twin}").returncode == 0
    assert _member_logs(twin) == _member_logs(folder)  # a population reruns to identical metrics


def test_a_killed_population_resumes_every_member_to_the_metrics_of_an_uninterrupted_one(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    run = [*RUN, "total_frames=1200"]
    assert run_recipe("soft_dqn", *run, f"hydra.run.dir={full}").returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "maxent_components.recipes.soft_dqn", *run, f"hydra.run.dir={killed}"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if verify_checkpoint(killed / "checkpoint.pt")["step"] >= 400:
                break
        except Exception:
            pass
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not summary_of(killed / "seed=1")["finished"]
    resumed = run_recipe("soft_dqn", *run, f"hydra.run.dir={killed}")
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr[-3000:]
    for seed in (0, 1, 2):
        a, b = summary_of(full / f"seed={seed}"), summary_of(killed / f"seed={seed}")
        assert a["history"] == b["history"] and a["updates"] == b["updates"], seed
    assert _member_logs(killed) == _member_logs(full)


def test_a_nan_in_one_members_data_stops_the_population_naming_that_member(tmp_path):
    folder = tmp_path / "pop"
    out = run_recipe(
        "soft_dqn", *RUN, "env.name=faulty_envs:Faulty-v0", "+env.kwargs.nan_at=250", "+env.kwargs.only_seed=1",
        "env.solved_metric=null", f"hydra.run.dir={folder}", env={"PYTHONPATH": TESTS},
    )
    assert out.returncode == 1
    (line,) = [line for line in out.stderr.splitlines() if "error" in line]
    assert line.startswith("soft_dqn: error: member 1 (seed 1) collected frame ") and "next.reward=[nan] is not finite" in line
    for seed in (0, 1, 2):  # every member's evaluations so far are kept, and no one is marked finished
        summary = summary_of(folder / f"seed={seed}")
        assert not summary["finished"] and "member 1 (seed 1)" in summary["failed"]
        assert [h["step"] for h in summary["history"]] == [200]


@pytest.mark.parametrize("recipe, overrides, message", [
    ("pcl", ["population=2"], "population=2: PCL samples trajectory slices"),
    ("sac", ["population=2", "compile=default"], "compile=default is not supported with it"),
    ("soft_dqn", ["population=2", "num_envs=2", "frames_per_batch=8"], "num_envs=2 is not supported with it"),
])
def test_what_a_population_cannot_combine_with_is_refused_by_name(recipe, overrides, message, tmp_path):
    out = run_recipe(recipe, *FAST, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "run").exists()
