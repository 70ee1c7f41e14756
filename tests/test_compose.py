"""``python -m maxent_components.compose``: skills from finished runs, composed and run without training."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from recipe_runner import PNG_SIGNATURE, ROOT, run_recipe
from tensordict import TensorDict

from maxent_components.compose import CompositionError, load_run, load_skill
from maxent_components.runs import read_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Smoke SQL runs on MultiGoal: seeds 0 and 1 (a two-member ensemble) at α = 1, one at α = 0.5, and
    the config of the first at seed 1."""
    root = tmp_path_factory.mktemp("skills")
    made = {}
    for name, extra in (("a", ["seed=0"]), ("b", ["seed=1", "loss.num_qvalue_nets=2"]), ("hot", ["seed=2", "alpha=0.5"]),
                        ("a1", ["seed=1"])):
        out = run_recipe("sql", "smoke=true", "plots=false", *extra, f"hydra.run.dir={root / name}")
        assert out.returncode == 0, out.stderr[-3000:]
        made[name] = root / name
    return made


def _compose(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maxent_components.compose", *args], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=600)


def test_composed_policy_runs_and_its_q_is_the_mean_of_the_skills(runs, tmp_path):
    out = _compose(str(runs["a"]), str(runs["b"]), "--out", str(tmp_path / "c"), "--episodes", "2", "--mala-steps", "5")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["weights"] == [0.5, 0.5] and summary["alpha"] == 1.0 and len(summary["eval_returns"]) == 2
    assert all(-1e4 < r < 1e3 for r in summary["eval_returns"])
    assert (tmp_path / "c" / "q_contours.png").read_bytes().startswith(PNG_SIGNATURE)
    # The saved composition reproduces the mean of the two skills (skill b: the mean of its two members).
    a, b = load_skill(runs["a"]), load_skill(runs["b"])
    saved = torch.load(tmp_path / "c" / "composed_q.pt", weights_only=True)
    assert saved["runs"] == [str(runs["a"]), str(runs["b"])]
    td = TensorDict(observation=torch.randn(7, 2), action=torch.rand(7, 2) * 2 - 1, batch_size=[7])
    q_a = a.qnet(td.clone())["state_action_value"]
    q_b = b.qnet(td.clone())["state_action_value"]
    members = [net(td.clone())["state_action_value"] for net in b.qnet.qvalue_networks]
    torch.testing.assert_close(q_b, (members[0] + members[1]) / 2)
    assert not torch.allclose(members[0], members[1])
    from maxent_components import ComposedQ

    rebuilt = ComposedQ(a.qnet, b.qnet)
    rebuilt.load_state_dict(saved["state_dict"])
    torch.testing.assert_close(rebuilt(td.clone())["state_action_value"], (q_a + q_b) / 2)
    for skill in (a, b):
        skill.close()


@pytest.mark.parametrize("device, num_envs", [(None, None), ("cuda:7", 4)])
def test_a_skill_loads_on_the_cpu_whatever_device_its_run_recorded(runs, tmp_path, device, num_envs):
    # None: a run recorded before the device and num_envs options; cuda:7: a device this machine lacks.
    folder = tmp_path / "skill"
    shutil.copytree(runs["a"], folder)
    summary = json.loads((folder / "summary.json").read_text())
    summary["config"].pop("device")
    summary["config"].pop("num_envs")
    if device is not None:
        summary["config"].update(device=device, num_envs=num_envs)
    (folder / "summary.json").write_text(json.dumps(summary))
    skill, original = load_skill(folder), load_skill(runs["a"])
    td = TensorDict(observation=torch.zeros(3, 2), action=torch.zeros(3, 2), batch_size=[3])
    torch.testing.assert_close(skill.qnet(td.clone())["state_action_value"], original.qnet(td.clone())["state_action_value"])
    assert skill.cfg.get("device") == device and skill.cfg.get("num_envs") == num_envs  # the recorded config is left as it was
    assert skill.env.batch_size == torch.Size([])
    for loaded in (skill, original):
        loaded.close()


def test_a_rebuilt_run_holds_its_checkpoint_networks_actor_included(runs):
    # load_run is what load_skill and benchmarks/sampler_on_learned_q.py rebuild a run with: every
    # entry of the loss (Q ensemble, targets, the SVGD actor) is the checkpoint's, none a fresh draw.
    cfg, env, eval_env, loss = load_run(runs["b"])
    saved = read_checkpoint(runs["b"] / "checkpoint.pt")["state"]["loss"]
    state = loss.state_dict()
    assert cfg.seed == 1 and set(state) == set(saved)
    assert any(key.startswith("actor.") for key in state)
    for key, value in saved.items():
        torch.testing.assert_close(state[key], value, msg=key)
    env.close()
    eval_env.close()


def test_skills_at_different_temperatures_are_refused_in_one_line(runs, tmp_path):
    out = _compose(str(runs["a"]), str(runs["hot"]), "--out", str(tmp_path / "c"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "share the temperature: alpha=1" in out.stderr and "alpha=0.5" in out.stderr
    assert not (tmp_path / "c").exists()


def test_bad_folders_and_arguments_are_refused(runs, tmp_path):
    out = _compose(str(runs["a"]), str(tmp_path), "--out", str(tmp_path / "c"))
    assert out.returncode == 2 and "holds no readable summary.json" in out.stderr and out.stderr.strip().count("\n") == 0
    out = _compose(str(runs["a"]), str(runs["b"]), "--out", str(tmp_path / "c"), "--weights", "1")
    assert out.returncode == 2 and "--weights needs one number per run" in out.stderr
    out = _compose(str(runs["a"]), "--out", str(tmp_path / "c"))
    assert out.returncode == 2 and "at least two runs" in out.stderr
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "summary.json").write_text(json.dumps({"finished": False}))
    with pytest.raises(CompositionError, match="not a finished run"):
        load_skill(unfinished)


def test_compositions_are_runs_the_study_puts_in_one_cell_per_skill_set(runs, tmp_path):
    """Composing the same skills trained on other seeds gives the same cell; the curve is one point
    at the skills' env steps added up; a composition is not a skill and keeps its folder to itself."""
    from maxent_components.study.collect import collect_runs, group_cells

    for seed, first in ((0, runs["a"]), (1, runs["a1"])):
        out = _compose(str(first), str(runs["b"]), "--out", str(tmp_path / "study" / f"c{seed}"), "--seed", str(seed),
                       "--weights", "1", "1", "--episodes", "2", "--mala-steps", "5")
        assert out.returncode == 0, out.stderr[-3000:]
    found, notes = collect_runs([tmp_path / "study"])
    cells, keys = group_cells(found)
    assert len(found) == 2 and len(cells) == 1 and cells[0].seeds == [0, 1] and not notes
    composed = found[0]
    steps = sum(json.loads((runs[name] / "summary.json").read_text())["env_steps"] for name in ("a", "b"))
    assert composed.summary["history"][0]["step"] == composed.summary["env_steps"] == steps
    trained = sum(json.loads((runs[name] / "summary.json").read_text())["wall_time_s"] for name in ("a", "b"))
    assert composed.summary["wall_time_s"] == pytest.approx(trained + composed.summary["composition_time_s"])
    assert composed.config["compose.weights"] == (1.0, 1.0) and len(composed.config["compose.skills"]) == 2
    assert composed.summary["goals_reached"] in {0.0, 1.0, 2.0, 3.0, 4.0} and "success_rate" in composed.summary
    with pytest.raises(CompositionError, match="holds a composition"):
        load_skill(composed.path)
    out = _compose(str(runs["a"]), str(runs["a1"]), "--out", str(tmp_path / "study" / "c0"), "--episodes", "2", "--mala-steps", "5")
    assert out.returncode == 2 and "holds another run or composition" in out.stderr
