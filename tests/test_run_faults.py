"""Runs that cannot be doubled, poisoned or left half-told.

Each test is a fault a user meets: the same command launched twice, a kill after the logs ran ahead
of the checkpoint, a diverging run, a signal, a full disk, a failing environment, a folder that
cannot hold a run, a launch that is refused. What must hold: one live process per run folder, every
logged step once, no non-finite checkpoint, one line on stderr and a summary that says how the run
ended, and nothing written by a refused launch.
"""

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

from maxent_components.runs import RunDirectory
from maxent_components.runs.checkpoint import read_checkpoint, verify_checkpoint
from maxent_components.runs.lock import RunLock, RunLockedError
from maxent_components.runs.logs import RunLogger, damaged_logs
from maxent_components.training.failures import first_non_finite

FAST = ["smoke=true", "plots=false", "progress=false", "threads=1"]
TESTS = str(ROOT / "tests")


def _popen(recipe: str, *overrides: str, env: dict | None = None) -> subprocess.Popen:
    # SIGINT at its default, as in a terminal: a shell's background job (a CI runner's, say) starts
    # with SIGINT ignored, and Python then keeps it ignored instead of raising KeyboardInterrupt.
    return subprocess.Popen(
        [sys.executable, "-m", f"maxent_components.recipes.{recipe}", *overrides], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(condition, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _checkpoint_step(folder: Path) -> int:
    try:
        return verify_checkpoint(folder / "checkpoint.pt")["step"]
    except Exception:
        return 0


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder`` with its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if "error" in line]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


# ------------------------------------------------------------------------------------------------
# One live process per run folder
# ------------------------------------------------------------------------------------------------
def test_the_lock_is_refused_while_held_and_freed_when_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from maxent_components.runs.lock import RunLock; RunLock({str(tmp_path)!r}).acquire(); "
                               "print('held', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunLockedError) as refused:
        RunLock(tmp_path).acquire()
    assert refused.value.pid == holder.pid and str(holder.pid) in str(refused.value)
    holder.kill()  # SIGKILL: no cleanup runs, the kernel releases the lock
    holder.wait()
    with RunLock(tmp_path) as lock:
        assert lock.held and lock.holder() == os.getpid()


def test_a_second_launch_of_a_running_command_is_refused_and_writes_nothing(tmp_path):
    folder = tmp_path / "run"
    run = [*FAST, "total_frames=30000", "checkpoint_interval=200", f"hydra.run.dir={folder}"]
    first = _popen("soft_dqn", *run)
    try:
        _wait_for(lambda: _checkpoint_step(folder) >= 200, first)
        first.send_signal(signal.SIGSTOP)  # hold its files still while the second launch looks
        before = _snapshot(folder)
        second = run_recipe("soft_dqn", *run)
        after = _snapshot(folder)
        first.send_signal(signal.SIGCONT)
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2, second.stderr[-2000:]
    line = _one_error_line(second.stderr)
    assert line == (f"soft_dqn: error: {folder} is in use by process {first.pid}, which is running this run; wait for "
                    f"it to end (or stop it), then relaunch to resume or skip it.")
    assert "resuming" not in second.stdout
    assert after == before


def test_two_launches_at_once_train_once(tmp_path):
    folder = tmp_path / "run"
    run = [*FAST, "total_frames=1500", "log_interval=100", f"hydra.run.dir={folder}"]
    launches = [_popen("soft_dqn", *run) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in launches]
    codes = sorted(p.returncode for p in launches)
    # Either one was refused while the other ran, or the second started after the first had finished.
    if codes == [0, 2]:
        refused = results[[p.returncode for p in launches].index(2)]
        assert "is in use by process" in _one_error_line(refused[1])
    else:
        assert codes == [0, 0] and sum("skipping" in out for out, _ in results) == 1, results
    assert summary_of(folder)["finished"] is True
    steps = [step for step, _ in scalars(folder, "loss_qvalue")]
    assert steps == sorted(set(steps)) and steps[-1] == 1500
    assert damaged_logs(folder / "logs") == ""


def test_the_finished_check_rejects_logs_whose_steps_repeat(tmp_path):
    folder = tmp_path / "run"
    out = run_recipe("soft_dqn", *FAST, "total_frames=200", "log_interval=50", f"hydra.run.dir={folder}")
    assert out.returncode == 0, out.stderr[-2000:]
    run = RunDirectory(folder)
    assert run.status(summary_of(folder)["config_hash"]) == "finished"
    csv = folder / "logs/metrics/scalars/loss_qvalue.csv"
    rows = csv.read_text().splitlines()
    csv.write_text("\n".join(rows + rows[-1:]) + "\n")  # the last row logged twice
    assert "logs step 200 after step 200" in damaged_logs(folder / "logs")
    assert run.status(summary_of(folder)["config_hash"]) == "resumable"
    assert "its logs are damaged" in run.notes[0]


# ------------------------------------------------------------------------------------------------
# Logs resumed without a repeated or a missing step, for every backend
# ------------------------------------------------------------------------------------------------
LOGGED_RUN = [*FAST, "total_frames=1200", "log_interval=50", "eval_interval=400", "checkpoint_interval=400"]


def _kill_after_logging_past_the_checkpoint(recipe: str, folder: Path, logged, env: dict | None = None) -> None:
    process = _popen(recipe, *LOGGED_RUN, *logged, f"hydra.run.dir={folder}", env=env)
    try:
        _wait_for(lambda: _checkpoint_step(folder) >= 400 and _logged_past(folder, 400), process)
    finally:
        process.kill()
        process.wait()
    assert _checkpoint_step(folder) < 1200


def _logged_past(folder: Path, step: int) -> bool:
    """Whether a step after ``step`` was logged, in whatever backend."""
    csv = folder / "logs/metrics/scalars/loss_qvalue.csv"
    if csv.exists():
        return any(int(line.split(",")[0]) > step for line in csv.read_text().splitlines() if line.count(",") == 1)
    sent = folder / "logs/.sent_step"
    if sent.exists():
        text = sent.read_text().strip()
        return text.isdigit() and int(text) > step
    events = list((folder / "logs/metrics").glob("events.out.tfevents.*"))
    return bool(events) and any(s > step for _, s in _tensorboard_steps(folder, "loss_qvalue"))


def _tensorboard_steps(folder: Path, tag: str) -> list[tuple[float, int]]:
    """``(value, step)`` of ``tag`` as TensorBoard's own reader sees the run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(folder / "logs/metrics"), purge_orphaned_data=False)
    reader.Reload()
    return [(event.value, event.step) for event in reader.Scalars(tag)] if tag in reader.Tags()["scalars"] else []


def test_tensorboard_logs_of_a_killed_and_resumed_run_hold_each_step_once(tmp_path):
    backend = ["logger.backend=tensorboard"]
    full = run_recipe("soft_dqn", *LOGGED_RUN, *backend, f"hydra.run.dir={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr[-2000:]
    killed = tmp_path / "killed"
    _kill_after_logging_past_the_checkpoint("soft_dqn", killed, backend)
    resumed = run_recipe("soft_dqn", *LOGGED_RUN, *backend, f"hydra.run.dir={killed}")
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr[-2000:]
    for tag in ("loss_qvalue", "eval_return"):
        expected, got = _tensorboard_steps(tmp_path / "full", tag), _tensorboard_steps(killed, tag)
        assert [s for _, s in got] == sorted({s for _, s in got}), tag  # each step once, in order
        assert got == expected, tag  # and none missing: the uninterrupted run's values
    assert damaged_logs(killed / "logs") == ""


def test_mlflow_logs_of_a_killed_and_resumed_run_hold_each_step_once_in_one_run(tmp_path):
    import mlflow

    backend = ["logger.backend=mlflow"]
    killed = tmp_path / "killed"
    _kill_after_logging_past_the_checkpoint("soft_dqn", killed, backend, env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    resumed = run_recipe("soft_dqn", *LOGGED_RUN, *backend, f"hydra.run.dir={killed}", env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr[-2000:]
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient((killed / "logs").as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "metrics"]
    (run,) = client.search_runs([experiment.experiment_id])  # the resumed segment went into the same run
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss_qvalue")]
    assert sorted(steps) == list(range(100, 1201, 50))  # every log row once (updates start after step 50)


def test_a_remote_logger_resumed_sends_only_the_steps_it_had_not_sent(tmp_path, monkeypatch):
    """W&B and MLflow keep what they were sent: a resumed run sends the steps after the last one sent
    before the kill, into the run the checkpoint names."""
    sent, opened = [], []

    class Remote:  # stands in for TorchRL's W&B logger: what reaches it is what the service stores
        def __init__(self, state_dict=None):
            opened.append(None if state_dict is None else state_dict["local"]["id"])

        def log_metrics(self, row, step):
            sent.append(step)

        def state_dict(self):
            return {"local": {"id": "run-1"}}

    monkeypatch.setattr("torchrl.record.loggers.get_logger", lambda backend, state_dict=None, **_: Remote(state_dict))
    first = RunLogger("wandb", tmp_path).open()
    first.log({"x": 1.0}, step=100)
    state = first.state_dict()  # the checkpoint at step 100
    first.log({"x": 2.0}, step=200)
    first.log({"x": 3.0}, step=300)  # killed here
    second = RunLogger("wandb", tmp_path).open(resume=state, step=100)
    for step in (200, 300, 400):
        second.log({"x": 4.0}, step=step)
    assert sent == [100, 200, 300, 400] and opened == [None, "run-1"]
    with pytest.raises(ValueError, match="logged with logger.backend=wandb; it cannot resume with csv"):
        RunLogger("csv", tmp_path).open(resume=state | {"backend": "wandb"}, step=100)


def test_the_finished_check_rejects_a_tensorboard_scalar_logged_twice(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from maxent_components.runs.logs import cut_event_files

    folder = tmp_path / "logs" / "metrics"
    writer = SummaryWriter(str(folder))
    for step in (10, 20, 30):
        writer.add_scalar("loss", float(step), step)
    writer.close()
    assert damaged_logs(tmp_path / "logs") == ""
    writer = SummaryWriter(str(folder))  # a second writer logs step 30 again, as a doubled run would
    writer.add_scalar("loss", 0.0, 30)
    writer.close()
    assert damaged_logs(tmp_path / "logs") == f"{folder} logs loss twice at step 30"
    cut_event_files(folder, 20)
    assert damaged_logs(tmp_path / "logs") == ""
    assert [step for _, step in _tensorboard_steps(tmp_path, "loss")] == [10, 20]


def test_a_run_cannot_resume_with_another_logger_backend(tmp_path):
    folder = tmp_path / "run"
    _kill_after_logging_past_the_checkpoint("soft_dqn", folder, [])
    before = _snapshot(folder)
    other = run_recipe("soft_dqn", *LOGGED_RUN, "logger.backend=tensorboard", f"hydra.run.dir={folder}")
    assert other.returncode == 2
    assert _one_error_line(other.stderr) == (
        f"soft_dqn: error: {folder} holds a run logged with logger.backend=csv; resume it with logger.backend=csv "
        f"(its metrics stay in one backend), or choose another hydra.run.dir."
    )
    assert _snapshot(folder) == before


# ------------------------------------------------------------------------------------------------
# A diverging run never checkpoints its poison
# ------------------------------------------------------------------------------------------------
DIVERGING = ["plots=false", "progress=false", "threads=1", "optim.lr_qvalue=1e6", "total_frames=3000"]


@pytest.mark.parametrize("cadence", [["checkpoint_interval=500", "log_interval=3000", "eval_interval=3000"],
                                     ["checkpoint_interval=3000", "log_interval=3000", "eval_interval=3000"]],
                         ids=["at-a-checkpoint", "inside-the-policy"])
def test_a_diverged_run_stops_naming_the_tensor_and_keeps_its_last_finite_checkpoint(cadence, tmp_path):
    folder = tmp_path / "run"
    out = run_recipe("soft_dqn", *DIVERGING, *cadence, f"hydra.run.dir={folder}")
    assert out.returncode == 1
    line = _one_error_line(out.stderr)
    assert "the run diverged" in line and "loss.qvalue_network_params" in line and "is not finite" in line
    summary = summary_of(folder)
    assert summary["finished"] is False and "diverged" in summary["failed"]
    run = RunDirectory(folder)
    for path in (run.checkpoint_path, run.previous_checkpoint_path):
        if path.exists():
            state = read_checkpoint(path)["state"]
            assert first_non_finite({"loss": state["loss"], "optimizer": state["optimizer"]}) is None, path
    if run.has_checkpoint():  # the relaunch resumes from the last finite state (and meets the same fate)
        assert f"the checkpoint at step {run.last_checkpoint_step()} is finite and kept" in line
        again = run_recipe("soft_dqn", *DIVERGING, *cadence, f"hydra.run.dir={folder}")
        assert "resuming" in again.stdout and "the run diverged" in _one_error_line(again.stderr)
    else:
        assert "no checkpoint was written" in line


# ------------------------------------------------------------------------------------------------
# Every way a run ends: one line and a summary that says so
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_in_one_line_that_says_how_to_resume(signum, code, tmp_path):
    folder = tmp_path / "run"
    run = [*FAST, "total_frames=3000", "checkpoint_interval=200", f"hydra.run.dir={folder}"]
    process = _popen("soft_dqn", *run)
    _wait_for(lambda: _checkpoint_step(folder) >= 200, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code
    line = _one_error_line(stderr)
    name = signal.Signals(signum).name
    assert line.startswith(f"soft_dqn: error: {folder} interrupted by {name}; relaunch the same command to resume "
                           f"from the checkpoint at step ")
    summary = summary_of(folder)
    assert summary["finished"] is False and summary["failed"].startswith(f"interrupted by {name}")
    assert summary["env_steps"] >= 200  # the summary so far
    resumed = run_recipe("soft_dqn", *run)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout
    assert summary_of(folder)["finished"] is True


def _inject(*faults: str, recipe: str = "soft_dqn", overrides=()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fault_injection.py"), *faults, "--", recipe, *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )


def test_a_full_disk_while_logging_a_row_marks_the_run_failed(tmp_path):
    folder = tmp_path / "run"
    out = _inject("write:loss_qvalue.csv:3", overrides=[*FAST, "total_frames=400", "log_interval=50",
                                                        f"hydra.run.dir={folder}"])
    assert out.returncode == 1
    assert _one_error_line(out.stderr) == f"soft_dqn: error: could not write the logs in {folder / 'logs'}: No space left on device"
    summary = summary_of(folder)
    assert summary["finished"] is False and "No space left on device" in summary["failed"]
    logged = [step for step, _ in scalars(folder, "loss_qvalue")]
    assert len(logged) == 2 and summary["env_steps"] == logged[-1] + 50  # stopped at the row it could not write


def test_a_full_disk_at_the_final_summary_keeps_the_last_checkpoint_and_the_relaunch_finishes(tmp_path):
    folder = tmp_path / "run"
    run = [*FAST, "total_frames=400", "checkpoint_interval=100", f"hydra.run.dir={folder}"]
    out = _inject("replace:summary.json:2", overrides=run)  # the start's summary is written, the final one not
    assert out.returncode == 1
    assert _one_error_line(out.stderr) == (
        f"soft_dqn: error: could not write {folder / 'summary.json'}: No space left on device; the run's checkpoint "
        f"at step 400 is kept, relaunch to resume once there is room."
    )
    assert summary_of(folder)["finished"] is False and "No space left on device" in summary_of(folder)["failed"]
    again = run_recipe("soft_dqn", *run)
    assert again.returncode == 0 and summary_of(folder)["finished"] is True and summary_of(folder)["env_steps"] == 400


@pytest.mark.parametrize("fault, expected", [
    ("raise_at", "RuntimeError: the simulator lost its state at step 250"),
    ("reshape_at", "RuntimeError"),
])
def test_an_environment_that_fails_is_named_with_the_step(fault, expected, tmp_path):
    folder = tmp_path / "run"
    out = run_recipe(
        "soft_dqn", *FAST, "total_frames=600", "env.name=faulty_envs:Faulty-v0", f"+env.kwargs.{fault}=250",
        "env.solved_metric=null", f"hydra.run.dir={folder}", env={"PYTHONPATH": TESTS},
    )
    assert out.returncode == 1
    line = _one_error_line(out.stderr)
    assert line.startswith("soft_dqn: error: the environment faulty_envs:Faulty-v0 failed after ")
    assert expected in line and "env steps" in line
    assert summary_of(folder)["finished"] is False and summary_of(folder)["failed"] in line


@pytest.mark.parametrize("where", ["a-file", "below-a-file"])
def test_a_run_folder_that_cannot_be_a_folder_is_one_line_before_anything_runs(where, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the run folder would go\n")
    folder = blocker if where == "a-file" else blocker / "run"
    out = run_recipe("soft_dqn", *FAST, f"hydra.run.dir={folder}")
    assert out.returncode == 1
    assert _one_error_line(out.stderr) == (
        f"soft_dqn: error: cannot write into the run folder {folder}: {blocker} is not a folder"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


# ------------------------------------------------------------------------------------------------
# A refused launch writes nothing; the demo has a folder of its own
# ------------------------------------------------------------------------------------------------
def test_a_launch_refused_for_another_config_names_the_differences_and_writes_nothing(tmp_path):
    folder = tmp_path / "run"
    first = run_recipe("soft_dqn", *FAST, "total_frames=200", f"hydra.run.dir={folder}")
    assert first.returncode == 0, first.stderr[-2000:]
    before = _snapshot(folder)
    other = run_recipe("soft_dqn", *FAST, "total_frames=200", "seed=3", "loss.gamma=0.9", f"hydra.run.dir={folder}")
    assert other.returncode == 2
    line = _one_error_line(other.stderr)
    assert line.startswith(f"soft_dqn: error: {folder} holds a run of another config")
    assert ": loss.gamma: 0.99 → 0.9, seed: 0 → 3; choose another hydra.run.dir" in line
    assert _snapshot(folder) == before  # .hydra/ and the job log included


def test_the_demo_writes_to_a_folder_of_its_own():
    from maxent_components.recipes.sql import recipe

    assert recipe.preflight([], multirun=False) == [Path("runs/sql/default")]
    assert recipe.preflight(["demo=true"], multirun=False) == [Path("runs/sql/demo=true")]
    assert recipe.preflight(["demo=true", "progress=false"], multirun=False) == [Path("runs/sql/demo=true")]


# ------------------------------------------------------------------------------------------------
# Checks that come before the run, by name
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe, overrides, message", [
    ("sql", ["temperature=fixed", "alpha=0"], "sql: error: alpha=0 leaves soft_value (UniformSoftValue) undefined"),
    ("sql", ["soft_value=policy", "sampler=svgd", "alpha=0"], "sql: error: alpha=0 leaves actor (SVGDSampler) undefined"),
    ("sql", ["utd_ratio=1e9"], "sql: error: option utd_ratio=1000000000.0 is invalid; expected a value <= 1000."),
    ("sql", ["env.diagnostics=os.getcwd"], "sql: error: env.diagnostics=os.getcwd failed on the evaluation rollouts "
                                           "(TypeError: "),
    ("sql", ["env=pendulum", "env.diagnostics=builtins.len"], "sql: error: env.diagnostics=builtins.len returned int 1; "
                                                              "it must return {name: number}."),
    ("sql", ["sampler._target_=custom_parts.PlainGaussianSampler"],
     "sql: error: sampler._target_=custom_parts.PlainGaussianSampler takes no argument named "),
])
def test_values_that_would_fail_mid_run_are_refused_before_it_by_name(recipe, overrides, message, tmp_path):
    out = run_recipe(recipe, *FAST, *overrides, f"hydra.run.dir={tmp_path / 'run'}", env={"PYTHONPATH": TESTS})
    assert out.returncode == 2
    assert _one_error_line(out.stderr).startswith(message)
    assert not (tmp_path / "run").exists()


def test_a_plugged_in_class_runs_from_a_base_group_whose_options_it_takes(tmp_path):
    refused = run_recipe("sql", *FAST, "sampler._target_=custom_parts.PlainGaussianSampler", "--help",
                         env={"PYTHONPATH": TESTS})
    assert refused.returncode == 0  # --help shows the options; only a run refuses them
    out = run_recipe("sql", *FAST, "sampler=gaussian", "sampler._target_=custom_parts.PlainGaussianSampler",
                     f"hydra.run.dir={tmp_path}", env={"PYTHONPATH": TESTS})
    assert out.returncode == 0, out.stderr[-2000:]
    assert summary_of(tmp_path)["config"]["sampler"]["_target_"] == "custom_parts.PlainGaussianSampler"


def test_loss_compositions_that_cannot_work_are_refused_at_construction():
    from torchrl.data import Bounded

    from maxent_components import ExactSoftValue, GaussianSampler, SoftQLoss, UniformSoftValue
    from maxent_components.modules import continuous_qvalue_network

    spec = Bounded(-1.0, 1.0, shape=(2,))
    qnet = continuous_qvalue_network(3, 2, num_cells=(8,))

    def actor():
        return GaussianSampler(action_spec=spec, observation_dim=3, num_cells=(8,))

    with pytest.raises(ValueError, match=r"soft_value=ExactSoftValue sums Q\(s, ·\) over a finite action set, but "
                                         r"the actor \(GaussianSampler\) acts in a continuous action space"):
        SoftQLoss(qnet, ExactSoftValue(), actor=actor(), alpha=1.0)
    with pytest.raises(ValueError, match=r"alpha=0 leaves soft_value \(UniformSoftValue\) undefined"):
        SoftQLoss(qnet, UniformSoftValue(action_spec=spec), actor=actor(), alpha=0.0)


def test_a_checkpoint_with_a_wrong_shaped_weight_is_named_by_key_and_shapes(tmp_path):
    folder = tmp_path / "run"
    run = [*FAST, "total_frames=200", "checkpoint_interval=100", f"hydra.run.dir={folder}"]
    assert run_recipe("soft_dqn", *run).returncode == 0
    directory, summary = RunDirectory(folder), summary_of(folder)
    payload = read_checkpoint(directory.checkpoint_path)
    key = next(k for k in payload["state"]["loss"] if k.endswith("weight"))
    shape = list(payload["state"]["loss"][key].shape)
    payload["state"]["loss"][key] = torch.zeros(shape[0] + 1, *shape[1:])
    directory.start(summary["config"], summary["config_hash"], resume=True)  # unfinished, to be resumed
    directory.save_checkpoint(payload["state"], step=payload["step"])
    out = run_recipe("soft_dqn", *run)
    assert out.returncode == 1
    line = _one_error_line(out.stderr)
    assert f"(ValueError: loss.{key}: checkpoint [{shape[0] + 1}, {shape[1]}], this run {shape}); move it away" in line
    assert len(line) < 400


def test_a_checkpoint_that_does_not_load_is_passed_over_saying_why(tmp_path):
    folder = tmp_path / "run"
    run = [*FAST, "total_frames=200", "checkpoint_interval=100", f"hydra.run.dir={folder}"]
    assert run_recipe("soft_dqn", *run).returncode == 0
    directory, summary = RunDirectory(folder), summary_of(folder)
    directory.start(summary["config"], summary["config_hash"], resume=True)
    # A payload that verifies (its checksum is right) but names a class no one can import.
    unloadable = subprocess.run(
        [sys.executable, "-c", "import sys; from maxent_components.runs import RunDirectory\n"
         "class Gone: pass\n"
         f"run = RunDirectory({str(folder)!r}); run.config_hash = {summary['config_hash']!r}\n"
         "from maxent_components.runs.checkpoint import write_checkpoint\n"
         f"write_checkpoint(run.checkpoint_path, {{'step': 200, 'state': Gone()}}, config_hash=run.config_hash, step=200)"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert unloadable.returncode == 0, unloadable.stderr
    out = run_recipe("soft_dqn", *run)
    assert out.returncode == 0, out.stderr[-2000:]
    notes = [line for line in out.stdout.splitlines() if "checkpoint.pt verifies but cannot be loaded" in line]
    assert len(notes) == 1 and notes[0].endswith("Resuming from checkpoint.prev.pt."), out.stdout


def test_set_data_checks_called_alone_switches_the_checks():
    from maxent_components.checks import data_checks, set_data_checks

    assert data_checks() is False
    try:
        set_data_checks(True)
        assert data_checks() is True
        with set_data_checks(False):
            assert data_checks() is False
        assert data_checks() is True

        @set_data_checks(False)
        def checked() -> bool:
            return data_checks()

        assert data_checks() is True and checked() is False and data_checks() is True
    finally:
        set_data_checks(False)
    assert data_checks() is False
