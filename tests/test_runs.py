"""Run-directory helper and training-loop pieces: atomic files, finished markers, checkpoints, metrics,
help, presets, loop helpers, update/evaluation schedules, loss means, phase timing."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, fields

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, exploration_type

from maxent_components import training
from maxent_components.runs import (
    EpisodeReturns,
    NonFiniteGuard,
    NonFiniteLossError,
    RunConfig,
    RunDirectory,
    apply_preset,
    apply_presets,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    evaluate,
    evaluate_episodes,
    finished_summary,
    is_finished,
    load_checkpoint,
    option,
    progress_bar,
    render_help,
    seed_everything,
    set_threads,
    validate_options,
)
from maxent_components.training import (
    Cadence,
    PhaseTimer,
    RunningMeans,
    UpdateSchedule,
    off_policy_collector,
    solved_report,
    uniform_replay_buffer,
)


def _leftovers(folder) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------------
# Atomic writes
# ------------------------------------------------------------------------------------------------
class _Explodes:
    """Pickles half-way and then fails, like a crash in the middle of writing a checkpoint."""

    def __reduce__(self):
        raise RuntimeError("simulated crash while serialising")


def test_atomic_json_replaces_whole_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2, "b": [1.5, float("nan")]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1.5, None]}
    assert _leftovers(tmp_path) == []


def test_exception_mid_write_keeps_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"w": torch.arange(3)}, path)
    before = path.read_bytes()
    big = torch.zeros(100_000)  # written before the failing object, so the temp file is non-empty
    with pytest.raises(RuntimeError, match="simulated crash"):
        atomic_torch_save({"w": big, "z": _Explodes()}, path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_exception_on_first_write_leaves_no_file(tmp_path):
    path = tmp_path / "never.pt"
    with pytest.raises(RuntimeError):
        atomic_torch_save({"z": _Explodes()}, path)
    assert not path.exists()
    assert _leftovers(tmp_path) == []


def test_unserialisable_json_touches_nothing(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"finished": True})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"finished": True}
    assert _leftovers(tmp_path) == []


def test_killed_process_mid_write_leaves_previous_summary(tmp_path):
    """A process that dies (os._exit, no cleanup) while writing never exposes a partial file."""
    script = textwrap.dedent(
        f"""
        import os, torch
        from maxent_components.runs import RunDirectory, atomic_torch_save

        run = RunDirectory({str(tmp_path)!r})
        run.write_summary({{"eval_return_mean": 1.0}}, finished=True)

        class DieMidWrite:
            def __reduce__(self):
                os._exit(3)

        atomic_torch_save({{"big": torch.zeros(200_000), "die": DieMidWrite()}}, run.checkpoint_path)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stderr
    assert is_finished(tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()
    # The killed process could not clean up: its temp file is there, hidden and never the target.
    leftovers = _leftovers(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.pt.")


def test_atomic_text_creates_parent(tmp_path):
    path = tmp_path / "a" / "b" / "note.txt"
    atomic_write_text(path, "hello")
    assert path.read_text() == "hello"


# ------------------------------------------------------------------------------------------------
# Finished marker and summary
# ------------------------------------------------------------------------------------------------
def test_is_finished_cases(tmp_path):
    assert not is_finished(tmp_path / "missing")
    assert not is_finished(tmp_path)
    run = RunDirectory(tmp_path)
    run.write_summary({"eval_return_mean": 3.0})
    assert not is_finished(tmp_path)
    assert not run.finished
    run.finish({"eval_return_mean": 4.0})
    assert is_finished(tmp_path) and run.finished
    assert run.read_summary() == {"eval_return_mean": 4.0, "finished": True}
    (tmp_path / "summary.json").write_text("{not json")
    assert not is_finished(tmp_path)
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert not is_finished(tmp_path)
    (tmp_path / "summary.json").write_text('{"finished": "yes"}')
    assert not is_finished(tmp_path)


def test_summary_rejects_finished_key(tmp_path):
    with pytest.raises(ValueError, match="finished=True"):
        RunDirectory(tmp_path).write_summary({"finished": True})


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    log_alpha = {"log_alpha": torch.tensor(-1.5)}
    run = RunDirectory(tmp_path)
    path = run.save_checkpoint(
        {"net": net, "optimizer": optimizer, "temperature": log_alpha}, step=123, extra={"seed": 7}
    )
    assert path == run.checkpoint_path and path.exists()

    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-2)
    holder = {}

    class Holder:
        def load_state_dict(self, state):
            holder.update(state)

    payload = run.load_checkpoint({"net": fresh, "optimizer": fresh_optimizer, "temperature": Holder()})
    assert payload["step"] == 123 and payload["extra"] == {"seed": 7}
    for a, b in zip(net.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    saved_state = optimizer.state_dict()["state"]
    loaded_state = fresh_optimizer.state_dict()["state"]
    assert saved_state.keys() == loaded_state.keys()
    for key in saved_state:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(saved_state[key][name], loaded_state[key][name])
    assert torch.equal(holder["log_alpha"], torch.tensor(-1.5))


def test_checkpoint_missing_entry_is_named(tmp_path):
    run = RunDirectory(tmp_path)
    run.save_checkpoint({"net": torch.nn.Linear(2, 2)}, step=0)
    with pytest.raises(KeyError, match="optimizer"):
        load_checkpoint(run.checkpoint_path, {"net": torch.nn.Linear(2, 2), "optimizer": torch.nn.Linear(1, 1)})
    # non-strict loading skips what is absent
    load_checkpoint(run.checkpoint_path, {"net": torch.nn.Linear(2, 2), "other": torch.nn.Linear(1, 1)}, strict=False)


def test_checkpoint_rejects_non_state(tmp_path):
    with pytest.raises(TypeError, match=r"states\['x'\]"):
        RunDirectory(tmp_path).save_checkpoint({"x": 3}, step=0)


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------
def test_metrics_rows_are_streamed(tmp_path):
    run = RunDirectory(tmp_path, metrics_columns=["loss", "eval_return"])
    run.log(10, loss=torch.tensor(0.25))
    # readable before close: every row is flushed
    with open(run.metrics_path) as handle:
        rows = list(csv.reader(handle))
    assert rows == [["step", "loss", "eval_return"], ["10", "0.25", ""]]
    run.log(20, loss=0.5, eval_return=7)
    run.close()
    with open(run.metrics_path) as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1] == {"step": "20", "loss": "0.5", "eval_return": "7"}


def test_metrics_columns_inferred_and_fixed(tmp_path):
    run = RunDirectory(tmp_path)
    run.log(1, a=1.0, b=2.0)
    assert run.metrics_columns == ["a", "b"]
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['c'\]"):
        run.log(2, c=1.0)
    with pytest.raises(RuntimeError, match="cannot change"):
        run.set_metrics_columns(["x"])
    run.set_metrics_columns(["a", "b"])  # same columns: fine


def test_metrics_columns_validation(tmp_path):
    with pytest.raises(ValueError, match="'step'"):
        RunDirectory(tmp_path, metrics_columns=["step"])
    with pytest.raises(ValueError, match="duplicates"):
        RunDirectory(tmp_path, metrics_columns=["a", "a"])


# ------------------------------------------------------------------------------------------------
# Config options and help
# ------------------------------------------------------------------------------------------------
@dataclass
class _ToyConfig(RunConfig):
    lr: float = option(3e-4, "Adam learning rate.", gt=0)
    mode: str = option("fast", "Which mode to run in.", choices=("fast", "slow"))
    steps: int = option(10, "How many steps.", ge=1, le=100)
    note: str | None = option(None, "A free-form note with a ${dollar} sign.")
    sizes: list = option([64, 64], "Hidden sizes.")


def test_help_lists_every_field_with_default():
    text = render_help(_ToyConfig, app_name="toy", description="A toy recipe.")
    for f in fields(_ToyConfig):
        assert f"{f.name}=" in text, f.name
        assert f.metadata["help"].split()[0] in text
    assert "lr=0.0003" in text and "mode=fast" in text and "note=null" in text
    assert "sizes=[64, 64]" in text and "progress=true" in text
    assert "One of: fast, slow." in text
    # OmegaConf would try to resolve "${...}" in the template
    assert "$\\${dollar}" in text


def test_option_requires_help():
    with pytest.raises(ValueError, match="help"):
        option(1, "")


def test_validate_options_names_the_option():
    cfg = _ToyConfig()
    cfg.mode = "medium"
    with pytest.raises(ValueError, match=r"mode='medium'.*\['fast', 'slow'\]"):
        validate_options(cfg)
    with pytest.raises(ValueError, match=r"lr=-1.0 is invalid; expected a value > 0"):
        _ToyConfig(lr=-1.0)
    with pytest.raises(ValueError, match=r"steps=101 .* <= 100"):
        _ToyConfig(steps=101)
    with pytest.raises(ValueError, match="finite"):
        _ToyConfig(lr=float("inf"))
    with pytest.raises(ValueError, match="threads=0"):
        _ToyConfig(threads=0)


def test_apply_preset_keeps_explicit_overrides():
    cfg = _ToyConfig()
    apply_preset(cfg, {"lr": 1e-2, "steps": 5}, explicit={"steps"})
    assert cfg.lr == 1e-2 and cfg.steps == 10
    with pytest.raises(KeyError, match="nope"):
        apply_preset(cfg, {"nope": 1}, explicit=set())
    with pytest.raises(ValueError, match="steps=0"):
        apply_preset(cfg, {"steps": 0}, explicit=set())


def test_register_config_help_through_hydra(tmp_path):
    """The template reaches Hydra's --help unchanged (a real Hydra application in a subprocess)."""
    app = tmp_path / "toy_app.py"
    app.write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            import hydra
            from omegaconf import OmegaConf
            from maxent_components.runs import RunConfig, option, register_config

            @dataclass
            class Toy(RunConfig):
                lr: float = option(3e-4, "Adam learning rate of ${nothing}.", gt=0)

            register_config("toy", Toy, description="Toy application.")

            @hydra.main(version_base=None, config_name="toy")
            def main(cfg):
                print("LR", OmegaConf.to_object(cfg).lr)

            main()
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(app), "--help"], check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    for name in ("seed=0", "threads=1", "progress=true", "skip_finished=true", "lr=0.0003"):
        assert name in out.stdout
    assert "Adam learning rate of ${nothing}." in out.stdout
    bad = subprocess.run(
        [sys.executable, str(app), "lr=-1", f"hydra.run.dir={tmp_path / 'run'}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert "lr=-1.0 is invalid; expected a value > 0" in bad.stderr


# ------------------------------------------------------------------------------------------------
# Loop helpers
# ------------------------------------------------------------------------------------------------
class _CountdownEnv(EnvBase):
    """Reward 1 per step, terminated after ``length`` steps: every episode's return is ``length``."""

    def __init__(self, length: int):
        super().__init__(batch_size=[])
        self.length = length
        self.observation_spec = Composite(observation=Unbounded(shape=(1,)))
        self.action_spec = Bounded(-1.0, 1.0, shape=(1,))
        self.reward_spec = Unbounded(shape=(1,))
        self.t = 0

    def _reset(self, tensordict=None):
        self.t = 0
        return TensorDict({"observation": torch.zeros(1)}, batch_size=[])

    def _step(self, tensordict):
        self.t += 1
        done = torch.tensor([self.t >= self.length])
        return TensorDict(
            {
                "observation": torch.full((1,), float(self.t)),
                "reward": torch.ones(1),
                "done": done,
                "terminated": done.clone(),
            },
            batch_size=[],
        )

    def _set_seed(self, seed):
        return seed


def test_evaluate_exact_returns_and_exploration_type():
    env = _CountdownEnv(length=7)
    seen = []

    def policy(td):
        seen.append(exploration_type())
        td.set("action", torch.zeros(1))
        return td

    returns, lengths = evaluate_episodes(env, policy, num_episodes=3, max_steps=100)
    assert returns.tolist() == [7.0, 7.0, 7.0] and lengths.tolist() == [7, 7, 7]
    assert set(seen) == {ExplorationType.DETERMINISTIC}
    seen.clear()
    assert evaluate(env, policy, num_episodes=2, max_steps=4, exploration="random") == 4.0
    assert set(seen) == {ExplorationType.RANDOM}


def test_evaluate_rejects_bad_arguments():
    env = _CountdownEnv(length=3)
    with pytest.raises(ValueError, match="exploration"):
        evaluate(env, lambda td: td, num_episodes=1, max_steps=3, exploration="greedy")
    with pytest.raises(ValueError, match="num_episodes"):
        evaluate(env, lambda td: td, num_episodes=0, max_steps=3)
    with pytest.raises(ValueError, match="max_steps"):
        evaluate(env, lambda td: td, num_episodes=1, max_steps=0)


def test_seed_everything_reproducible():
    def draw():
        env = _CountdownEnv(3)
        seed_everything(5, env)
        return torch.rand(3), torch.randn(2)

    a, b = draw(), draw()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_set_threads():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        set_threads(0)


def test_episode_returns_across_batches():
    tracker = EpisodeReturns(window=2)
    assert tracker.mean_recent() is None
    tracker.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([False, True, False]))
    tracker.update(torch.tensor([[4.0], [5.0]]), torch.tensor([[True], [True]]))
    assert tracker.returns == [3.0, 7.0, 5.0] and tracker.count == 3
    assert tracker.mean_recent() == 6.0
    with pytest.raises(ValueError, match="same number"):
        tracker.update(torch.ones(2), torch.ones(3, dtype=torch.bool))


def test_nonfinite_guard():
    guard = NonFiniteGuard()
    guard.check(TensorDict({"loss_q": torch.tensor(1.0), "alpha": torch.tensor(float("nan"))}, []), step=1)
    with pytest.raises(NonFiniteLossError, match=r"step 5: loss_actor=nan"):
        guard.check({"loss_q": torch.tensor(1.0), "loss_actor": torch.tensor(float("nan"))}, step=5)
    with pytest.raises(NonFiniteLossError, match="loss_q=inf"):
        guard.check({"loss_q": torch.tensor(float("inf"))}, step=6)
    sparse = NonFiniteGuard(every=2)
    sparse.check({"loss_q": torch.tensor(0.0)}, step=1)
    sparse.check({"loss_q": torch.tensor(float("nan"))}, step=2)  # skipped by design
    with pytest.raises(NonFiniteLossError):
        sparse.check({"loss_q": torch.tensor(float("nan"))}, step=3)
    with pytest.raises(ValueError, match="every"):
        NonFiniteGuard(every=0)


def test_progress_bar(capsys):
    with progress_bar(10, enabled=False) as bar:
        bar.update(5, loss=1.0)
    assert capsys.readouterr().err == ""
    with progress_bar(10, enabled=True, desc="train") as bar:
        bar.update(10, loss=0.5, phase="x")
    err = capsys.readouterr().err
    assert "train" in err and "10/10" in err


# ------------------------------------------------------------------------------------------------
# Training-loop pieces (maxent_components.training) and main() plumbing
# ------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    eighths=st.integers(1, 24),
    batch=st.integers(1, 17),
    num_batches=st.integers(1, 30),
    learning_starts=st.integers(0, 60),
)
def test_update_schedule_pays_utd_ratio_per_step(eighths, batch, num_batches, learning_starts):
    # Ratios k/8 and integer frame counts keep the float credit exact, so the total is exact too.
    utd_ratio = eighths / 8
    schedule = UpdateSchedule(utd_ratio=utd_ratio, learning_starts=learning_starts)
    total = 0
    learning_frames = 0
    for i in range(1, num_batches + 1):
        frames = i * batch
        due = schedule.due(frames, batch)
        if frames < learning_starts:
            assert due == 0
        else:
            learning_frames += batch
        total += due
        # The debt never exceeds one update: every whole update owed is paid at once.
        assert total == math.floor(utd_ratio * learning_frames)
        assert 0.0 <= schedule.credit < 1.0


def test_update_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="utd_ratio"):
        UpdateSchedule(utd_ratio=0.0)
    with pytest.raises(ValueError, match="utd_ratio"):
        UpdateSchedule(utd_ratio=True)
    with pytest.raises(ValueError, match="learning_starts"):
        UpdateSchedule(utd_ratio=1.0, learning_starts=-1)


@settings(max_examples=40, deadline=None)
@given(interval=st.integers(1, 50), batch=st.integers(1, 50), num_batches=st.integers(1, 40))
def test_cadence_is_due_once_per_interval_crossed(interval, batch, num_batches):
    every = Cadence(interval)
    due_at = [i * batch for i in range(1, num_batches + 1) if every.due(i * batch)]
    if batch <= interval:
        # Steps never skip a multiple, so it is due exactly at the first step at or past each one.
        expected = [i * batch for i in range(1, num_batches + 1) if (i * batch) // interval > ((i - 1) * batch) // interval]
        assert due_at == expected
    # Never due more often than the number of multiples passed, never more than once per call.
    assert len(due_at) <= (num_batches * batch) // interval
    assert every.next > num_batches * batch or len(due_at) == num_batches


def test_cadence_rejects_bad_interval():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="interval"):
            Cadence(bad)


def test_running_means_average_per_update_without_converting():
    means = RunningMeans()
    assert means.pop() == {}
    weight = torch.tensor(2.0, requires_grad=True)
    values = [1.0, 4.0, -2.5, 8.0]
    for i, v in enumerate(values):
        # "b" is produced on every other update only: its sum is over those, its mean per update.
        means.add(a=weight * v, b=torch.tensor(v) if i % 2 == 0 else None)
    out = means.pop()
    assert set(out) == {"a", "b"}
    assert isinstance(out["a"], torch.Tensor) and not out["a"].requires_grad
    torch.testing.assert_close(out["a"], torch.tensor(2.0 * sum(values) / 4))
    torch.testing.assert_close(out["b"], torch.tensor((values[0] + values[2]) / 4))
    assert means.pop() == {} and means.count == 0
    means.add(a=torch.tensor(3.0))
    torch.testing.assert_close(means.pop()["a"], torch.tensor(3.0))


def test_phase_timer_counts_each_phase(monkeypatch):
    clock = iter(float(t) for t in range(1000))
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    timer = PhaseTimer("collect", "update")  # start = 0
    with timer("update"):  # 1 -> 2
        pass
    with pytest.raises(RuntimeError), timer("update"):  # 3 -> 4, counted though it raised
        raise RuntimeError("boom")
    items = list(timer.iterate(["x", "y"], "collect"))  # 5->6, 7->8, exhausted 9->10
    assert items == ["x", "y"]
    assert timer.seconds == {"collect": 3.0, "update": 2.0}
    assert timer.summary() == {"time_collect_s": 3.0, "time_update_s": 2.0}
    assert timer.elapsed() == 11.0
    with pytest.raises(KeyError, match="'eval'.*collect"):
        with timer("eval"):
            pass
    with pytest.raises(KeyError, match="'eval'"):
        timer.iterate([], "eval")


def test_phase_timer_real_clock():
    timer = PhaseTimer("wait")
    with timer("wait"):
        time.sleep(0.02)
    assert 0.02 <= timer.seconds["wait"] <= timer.elapsed()


def test_off_policy_collector_random_then_policy_and_buffer():
    torch.manual_seed(0)
    env = _CountdownEnv(length=5)
    policy = TensorDictModule(lambda obs: torch.full_like(obs, 0.5), in_keys=["observation"], out_keys=["action"])
    collector = off_policy_collector(env, policy, frames_per_batch=4, total_frames=12, init_random_frames=4)
    buffer = uniform_replay_buffer(10, batch_size=3)
    batches = [batch.reshape(-1) for batch in collector]
    collector.shutdown()
    assert [b.numel() for b in batches] == [4, 4, 4]
    # The first batch acts uniformly at random, the later ones with the policy.
    assert not (batches[0]["action"] == 0.5).any()
    assert all((b["action"] == 0.5).all() for b in batches[1:])
    for b in batches:
        buffer.extend(b)
    assert len(buffer) == 10  # capacity
    assert buffer.sample().batch_size == torch.Size([3])
    with pytest.raises(ValueError, match="capacity"):
        uniform_replay_buffer(0, batch_size=3)
    with pytest.raises(ValueError, match="batch_size"):
        uniform_replay_buffer(10, batch_size=0)


def test_training_module_silences_the_torchrl_weight_updater_warning():
    # A fresh interpreter: torchrl.collectors warns only the first time it is imported.
    code = textwrap.dedent(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import maxent_components.training
            warnings.warn("an unrelated deprecation", DeprecationWarning)
        messages = [str(w.message) for w in caught]
        assert messages == ["an unrelated deprecation"], messages
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@dataclass
class _PresetConfig(RunConfig):
    steps: int = option(10, "How many steps.", ge=1)
    width: int = option(64, "Layer width.", ge=1)
    smoke: bool = option(False, "Tiny preset.")
    demo: bool = option(False, "Demo preset.")


def test_apply_presets_applies_the_one_set_and_rejects_two():
    presets = {"smoke": {"steps": 2, "width": 8}, "demo": {"steps": 90}}
    assert apply_presets(_PresetConfig(), presets) == _PresetConfig()
    cfg = apply_presets(_PresetConfig(smoke=True), presets)
    assert (cfg.steps, cfg.width) == (2, 8)
    cfg = apply_presets(_PresetConfig(demo=True), presets)
    assert (cfg.steps, cfg.width) == (90, 64)
    with pytest.raises(ValueError, match="options smoke and demo are exclusive presets"):
        apply_presets(_PresetConfig(smoke=True, demo=True), presets)
    with pytest.raises(AttributeError, match="'fast'"):
        apply_presets(_PresetConfig(), {"fast": {}})


def test_finished_summary_skips_only_finished_runs(tmp_path, capsys):
    run = RunDirectory(tmp_path / "run")
    assert finished_summary("toy", run, skip_finished=True) is None
    run.finish({"eval_return_mean": 3.5})
    run.close()
    assert finished_summary("toy", run, skip_finished=False) is None
    assert capsys.readouterr().out == ""
    summary = finished_summary("toy", run, skip_finished=True)
    assert summary["eval_return_mean"] == 3.5 and summary["finished"] is True
    assert "toy: " in capsys.readouterr().out


def test_solved_report_both_outcomes():
    summary = {
        "algorithm": "toy",
        "env_name": "CartPole-v1",
        "seed": 4,
        "solved": True,
        "solved_at_step": 1200,
        "target_return": 475.0,
        "eval_return_mean": 500.0,
        "env_steps": 1200,
        "updates": 1000,
        "wall_time_s": 3.25,
        "run_dir": "/runs/x",
    }
    line = solved_report(summary)
    assert line.startswith("toy on CartPole-v1, seed 4: solved (mean evaluation return >= 475) at step 1200;")
    assert "last evaluation return 500.0; 1200 env steps, 1000 updates, 3.2 s; run directory /runs/x" in line
    summary.update(solved=False, solved_at_step=None, target_return=None)
    assert "not solved within 1200 steps" in solved_report(summary)
