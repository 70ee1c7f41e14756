"""Fine-tuning from a finished run: ``init_from`` loads its networks, not its temperature."""

from __future__ import annotations

import math

import pytest
import torch
from hydra import compose, initialize_config_module
from recipe_runner import run_recipe, summary_of

from maxent_components.recipes import sql
from maxent_components.runs import read_checkpoint
from maxent_components.training.warm_start import WarmStartError, carried_keys, source_run, warm_start

SMALL = ["network.num_cells=[32]", "sampler.num_particles=4", "soft_value.num_samples=4"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A smoke SQL run on MultiGoal's four goals at α = 1 (fixed temperature)."""
    folder = tmp_path_factory.mktemp("pretrain") / "run"
    out = run_recipe("sql", "smoke=true", "plots=false", "seed=3", f"hydra.run.dir={folder}")
    assert out.returncode == 0, out.stderr[-3000:]
    return folder


def _loss(*overrides: str):
    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        cfg = compose("sql", overrides=[*SMALL, *overrides])
    env, eval_env, loss, _ = sql.build(cfg)
    env.close()
    eval_env.close()
    return loss


def test_networks_are_loaded_and_the_temperature_is_the_new_runs(pretrained):
    # the new run anneals its sampler too; the source did not: schedules are the new run's own
    loss = _loss("env=multigoal_single", "temperature=annealed", "temperature.alpha_final=0.05",
                 "sampler.anneal_from=10", "sampler.anneal_steps=100")
    source = read_checkpoint(pretrained / "checkpoint.pt")["state"]["loss"]
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    info = warm_start(loss, pretrained)
    after = loss.state_dict()
    keys = carried_keys(after)
    assert info == {"from": str(pretrained), "env_steps": summary_of(pretrained)["env_steps"], "keys": len(keys)}
    assert any(k.startswith("qvalue_network_params") for k in keys) and any(k.startswith("target_qvalue") for k in keys)
    assert any(k.startswith("actor.policy_network") for k in keys)
    for key in keys:
        torch.testing.assert_close(after[key], source[key], rtol=0, atol=0)
    assert not torch.equal(before["qvalue_network_params.module.0.weight"], after["qvalue_network_params.module.0.weight"])
    # The annealed temperature is the new run's: it starts at alpha = 1 and has taken no step.
    for key in ("temperature.log_final", "temperature.step_count", "actor.anneal.log_initial", "actor.anneal.step_count"):
        torch.testing.assert_close(after[key], before[key])
    assert math.isclose(float(loss.temperature.value()), 1.0) and math.isclose(float(after["temperature.log_final"].exp()), 0.05, rel_tol=1e-6)


def test_fine_tuning_runs_from_the_command_line_and_records_its_source(pretrained, tmp_path):
    """A fine-tuning sweep names the pretraining sweep; each run starts from the run of its own seed,
    and the path in the option does not nest the run folders."""
    out = run_recipe("sql", "-m", "smoke=true", "plots=false", "env=multigoal_single", "temperature=annealed", "seed=3",
                     f"init_from={pretrained.parent}", f"hydra.sweep.dir={tmp_path / 'fine'}")
    assert out.returncode == 0, out.stderr[-3000:]
    (folder,) = [p for p in (tmp_path / "fine").iterdir() if p.is_dir()]
    assert folder.name.startswith("env=multigoal_single,init_from=_") and "seed=3" in folder.name
    summary = summary_of(folder)
    assert summary["finished"] and summary["config"]["init_from"] == str(pretrained.parent)
    assert summary["solved_metric"] == "success_rate" and 0.0 <= summary["success_rate"] <= 1.0
    assert summary["started_from"] == {"from": str(pretrained), "env_steps": 200, "keys": summary["started_from"]["keys"]}


def test_a_sweep_folder_serves_the_run_with_the_same_seed(pretrained, tmp_path):
    sweep = pretrained.parent
    assert source_run(sweep, seed=3) == pretrained
    with pytest.raises(WarmStartError, match=r"exactly one finished run with seed=4, found none"):
        source_run(sweep, seed=4)
    info = warm_start(_loss("env=multigoal_single"), sweep, seed=3)
    assert info["from"] == str(pretrained)


def test_bad_sources_are_refused_before_anything_runs(pretrained, tmp_path):
    out = run_recipe("sql", "smoke=true", f"init_from={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'a'}")
    assert out.returncode != 0 and "init_from=" in out.stderr and "summary.json" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "a" / "summary.json").exists()
    out = run_recipe("sql", "smoke=true", "network.num_cells=[16]", f"init_from={pretrained}", f"hydra.run.dir={tmp_path / 'b'}")
    assert out.returncode != 0 and "has shape" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(WarmStartError, match="lacks"):
        warm_start(_loss("soft_value=importance"), pretrained)  # a learned proposal the source never had
    with pytest.raises(WarmStartError, match=r"has shape \(32, 4\) there and \(2, 32, 4\) here"):
        warm_start(_loss("loss.num_qvalue_nets=2"), pretrained)
