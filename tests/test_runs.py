"""maxent_components.runs: atomic files, run folders identified by their config (status, resume,
conflicts, lookup), option schemas and their checks, presets, docstring-driven help, seeding.

The training-loop pieces (schedules, means, timers, evaluation, builders) are tested in
tests/test_training_pieces.py; the recipe command line (runs.cli) by the recipe tests.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import maxent_components
from maxent_components.runs import (
    CHECKPOINT_FILE,
    SUMMARY_FILE,
    LoggerConfig,
    RunConfig,
    RunConflictError,
    RunDirectory,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    config_identity,
    find_run,
    group,
    option,
    rng_state,
    seed_everything,
    set_rng_state,
    set_threads,
    validate_options,
)
from maxent_components.runs.checkpoint import read_checkpoint, verify_checkpoint
from maxent_components.runs.config import apply_presets, run_only_keys
from maxent_components.runs.files import json_safe
from maxent_components.runs.help import argument_docs, render_help
from maxent_components.runs.version import code_version, source_digest

HASH_A = "a" * 64
HASH_B = "b" * 64


def _leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


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


def test_json_safe_converts_tensors_numpy_paths_and_non_finite():
    value = {
        "t": torch.tensor([1.0, float("inf")]),
        "scalar": torch.tensor(2.5),
        "np": np.float32(0.5),
        "npi": np.int64(3),
        "path": Path("/runs/x"),
        "nested": ({"x": float("-inf")}, [float("nan"), 1]),
        3: "int key",
    }
    assert json_safe(value) == {
        "t": [1.0, None],
        "scalar": 2.5,
        "np": 0.5,
        "npi": 3,
        "path": "/runs/x",
        "nested": [{"x": None}, [None, 1]],
        "3": "int key",
    }
    json.dumps(json_safe(value), allow_nan=False)  # plain JSON


def test_exception_mid_write_keeps_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"w": torch.arange(3)}, path)
    before = path.read_bytes()
    big = torch.zeros(100_000)
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


def test_keyboard_interrupt_mid_write_cleans_up(tmp_path):
    class Interrupts:
        def __reduce__(self):
            raise KeyboardInterrupt

    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"w": 1}, path)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"z": Interrupts()}, path)
    assert torch.load(path) == {"w": 1}
    assert _leftovers(tmp_path) == []


def test_unserialisable_json_touches_nothing(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"finished": True})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"finished": True}
    assert _leftovers(tmp_path) == []


def test_atomic_text_and_bytes_create_parent(tmp_path):
    path = tmp_path / "a" / "b" / "note.txt"
    atomic_write_text(path, "héllo")
    assert path.read_text(encoding="utf-8") == "héllo"
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert _leftovers(path.parent) == []


_DIE_PREAMBLE = """
import os, torch
from maxent_components.runs import RunDirectory

run = RunDirectory({path!r})
run.start({{"seed": 0}}, {digest!r})
run.save_checkpoint({{"w": torch.arange(3)}}, step=5)
"""

_DIE_SCRIPTS = {
    # Dies while torch.save pickles the new checkpoint.
    "checkpoint": """
class DieMidWrite:
    def __reduce__(self):
        os._exit(3)

run.save_checkpoint({"big": torch.zeros(200_000), "die": DieMidWrite()}, step=10)
""",
    # Dies once the new summary's bytes are in the temporary file, before it replaces the old one.
    "summary": """
os.fsync = lambda fd: os._exit(3)
run.finish({"eval_return_mean": 1.0})
""",
}


def test_killed_process_mid_write_leaves_previous_files(tmp_path):
    """A process that dies (os._exit, no cleanup) while writing never exposes a partial file: the
    folder still holds the previous summary and checkpoint, and the run is resumable from step 5."""
    folders = {name: tmp_path / name for name in _DIE_SCRIPTS}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-c", _DIE_PREAMBLE.format(path=str(folders[name]), digest=HASH_A) + body],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, body in _DIE_SCRIPTS.items()
    }
    for name, process in processes.items():  # started together, so the imports overlap
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 3, (name, stderr)
    for name, folder in folders.items():
        run = RunDirectory(folder)
        summary = run.read_summary()
        assert summary["finished"] is False and summary["config_hash"] == HASH_A, name
        assert run.status(HASH_A) == "resumable", name
        payload = run.load_checkpoint()
        assert payload["step"] == 5 and torch.equal(payload["state"]["w"], torch.arange(3)), name
        # A checkpoint is serialised before any file is opened; the summary's writer died with its
        # temp file there (hidden, never the target), which the next start removes.
        leftovers = _leftovers(folder)
        if name == "checkpoint":
            assert leftovers == [] and not run.previous_checkpoint_path.exists(), leftovers
        else:
            assert len(leftovers) == 1 and leftovers[0].startswith(f".{SUMMARY_FILE}."), leftovers
    # The summary's temp file was complete (fsync is called after the write): only the rename was missing.
    (tmp_summary,) = _leftovers(folders["summary"])
    assert json.loads((folders["summary"] / tmp_summary).read_text())["finished"] is True
    RunDirectory(folders["summary"]).start({"seed": 0}, HASH_A, resume=True)
    assert _leftovers(folders["summary"]) == []


# ------------------------------------------------------------------------------------------------
# Run identity
# ------------------------------------------------------------------------------------------------
_CONFIG = {
    "seed": 0,
    "threads": 1,
    "progress": True,
    "lr": 3e-4,
    "logger": {"backend": "csv"},
    "sampler": {"_target_": "x.Y", "num_particles": 32, "sizes": [64, 64]},
}
_RUN_ONLY = ["threads", "progress", "logger.backend"]


def test_config_identity_drops_run_only_keys():
    identity, digest = config_identity(_CONFIG, _RUN_ONLY)
    assert identity == {
        "seed": 0,
        "lr": 3e-4,
        "logger": {},
        "sampler": {"_target_": "x.Y", "num_particles": 32, "sizes": [64, 64]},
    }
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert _CONFIG["logger"] == {"backend": "csv"} and "threads" in _CONFIG  # the input is left alone
    # Run-only keys absent from the config (or under a non-dict) are ignored.
    assert config_identity(_CONFIG, [*_RUN_ONLY, "nothing", "lr.sub", "a.b.c"])[1] == digest


def test_a_neutral_option_is_left_out_of_the_identity_only_at_its_default():
    # An option added later whose default is what runs did before: configs recorded before it
    # existed keep their identity, and any other value of it is another run.
    neutral = {"num_envs": 1, "sampler.refine": False}
    before = config_identity(_CONFIG, _RUN_ONLY)[1]
    at_default = {**_CONFIG, "num_envs": 1, "sampler": {**_CONFIG["sampler"], "refine": False}}
    assert config_identity(at_default, _RUN_ONLY, neutral)[1] == before
    assert config_identity(at_default, _RUN_ONLY)[1] != before  # without the declaration it counts
    for changed in ({**at_default, "num_envs": 2}, {**at_default, "sampler": {**at_default["sampler"], "refine": True}}):
        assert config_identity(changed, _RUN_ONLY, neutral)[1] != before
    assert config_identity({**_CONFIG, "num_envs": True}, _RUN_ONLY, {"num_envs": 1})[1] == before  # JSON equality


@settings(max_examples=40, deadline=None)
@given(
    threads=st.integers(1, 64),
    progress=st.booleans(),
    backend=st.sampled_from(["csv", "tensorboard", "wandb", "mlflow"]),
)
def test_config_identity_ignores_run_only_values(threads, progress, backend):
    changed = {**_CONFIG, "threads": threads, "progress": progress, "logger": {"backend": backend}}
    assert config_identity(changed, _RUN_ONLY)[1] == config_identity(_CONFIG, _RUN_ONLY)[1]
    # ... but they are part of the hash when not declared run-only
    if (threads, progress, backend) != (1, True, "csv"):
        assert config_identity(changed)[1] != config_identity(_CONFIG)[1]


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"lr": 3.0001e-4},
        {"lr": "0.0003"},  # a string is not the number
        {"sampler": {"_target_": "x.Y", "num_particles": 33, "sizes": [64, 64]}},
        {"sampler": {"_target_": "x.Z", "num_particles": 32, "sizes": [64, 64]}},
        {"sampler": {"_target_": "x.Y", "num_particles": 32, "sizes": [64, 32]}},
        {"logger": {"backend": "csv", "project": "p"}},  # only logger.backend is run-only
        {"extra": None},
    ],
)
def test_config_identity_changes_with_any_other_value(change):
    assert config_identity({**_CONFIG, **change}, _RUN_ONLY)[1] != config_identity(_CONFIG, _RUN_ONLY)[1]


def test_config_identity_ignores_key_order():
    reordered = {
        "sampler": {"sizes": [64, 64], "num_particles": 32, "_target_": "x.Y"},
        "logger": {"backend": "tensorboard"},
        "lr": 3e-4,
        "progress": False,
        "threads": 8,
        "seed": 0,
    }
    assert list(reordered) != list(_CONFIG)
    assert config_identity(reordered, _RUN_ONLY) == config_identity(_CONFIG, _RUN_ONLY)
    # list order does matter
    swapped = {**_CONFIG, "sampler": {**_CONFIG["sampler"], "sizes": [64, 32]}}
    reversed_ = {**_CONFIG, "sampler": {**_CONFIG["sampler"], "sizes": [32, 64]}}
    assert config_identity(swapped)[1] != config_identity(reversed_)[1]


def test_config_identity_of_an_omegaconf_container_matches_the_dict():
    cfg = OmegaConf.create(_CONFIG)
    assert config_identity(OmegaConf.to_container(cfg), _RUN_ONLY) == config_identity(_CONFIG, _RUN_ONLY)


# ------------------------------------------------------------------------------------------------
# Run folder: status, start/finish, checkpoints
# ------------------------------------------------------------------------------------------------
def _write_summary(folder: Path, **content) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SUMMARY_FILE).write_text(json.dumps(content))


def test_status_new_for_missing_empty_or_unreadable_folder(tmp_path):
    assert RunDirectory(tmp_path / "missing").status(HASH_A) == "new"
    assert RunDirectory(tmp_path).status(HASH_A) == "new"
    for junk in ("{not json", "[1, 2]", ""):
        (tmp_path / SUMMARY_FILE).write_text(junk)
        assert RunDirectory(tmp_path).read_summary() is None
        assert RunDirectory(tmp_path).status(HASH_A) == "new"
    # a summary of this config that is not marked finished (true, the JSON value): nothing to skip
    for finished in (False, "yes", 1, None):
        _write_summary(tmp_path, config_hash=HASH_A, finished=finished)
        assert RunDirectory(tmp_path).status(HASH_A) == "new", finished


def test_start_finish_and_status(tmp_path):
    config = {"seed": 3, "lr": torch.tensor(0.5), "path": Path("/x")}
    run = RunDirectory(tmp_path / "run")
    assert run.status(HASH_A) == "new"
    run.start(config, HASH_A, run_only=["progress", "logger.backend"], neutral={"num_envs": 1})
    summary = run.read_summary()
    assert summary == {
        "config": {"seed": 3, "lr": 0.5, "path": "/x"},
        "config_hash": HASH_A,
        "run_only": ["logger.backend", "progress"],  # recorded so that a study compares configs alike
        "neutral": {"num_envs": 1},
        "code_version": code_version(),
        "finished": False,
    }
    # Started but no checkpoint yet: nothing to resume from.
    assert run.status(HASH_A) == "new"
    run.save_checkpoint({"w": torch.ones(2)}, step=7)
    assert run.status(HASH_A) == "resumable"
    run.finish({"eval_return_mean": 4.0, "history": [1.0, float("nan")]})
    summary = run.read_summary()
    assert summary["finished"] is True and summary["eval_return_mean"] == 4.0
    assert summary["history"] == [1.0, None]
    assert summary["config_hash"] == HASH_A and summary["config"]["seed"] == 3
    assert summary["code_version"] == code_version()
    # A finished summary of the same config wins over its checkpoint.
    assert run.checkpoint_path.exists() and run.status(HASH_A) == "finished"
    # Another RunDirectory object on the same folder sees the same.
    assert RunDirectory(tmp_path / "run").status(HASH_A) == "finished"
    assert _leftovers(run.path) == []


def test_code_version_is_the_package_version_and_a_digest_of_its_sources(tmp_path):
    package = Path(maxent_components.__file__).parent
    assert code_version() == f"{maxent_components.__version__}+{source_digest(package)[:12]}"
    (tmp_path / "conf").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "conf" / "b.yaml").write_text("k: 1\n")
    digest = source_digest(tmp_path)
    # compiled caches and other files are not code
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.py").write_text("cached")
    (tmp_path / "notes.md").write_text("text")
    assert source_digest(tmp_path) == digest
    # any change to a module or a config, or a renamed file, is another version
    (tmp_path / "conf" / "b.yaml").write_text("k: 2\n")
    changed_config = source_digest(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    changed_module = source_digest(tmp_path)
    (tmp_path / "a.py").rename(tmp_path / "c.py")
    assert len({digest, changed_config, changed_module, source_digest(tmp_path)}) == 4


def test_a_run_resumed_under_other_code_names_each_version(tmp_path, monkeypatch):
    from maxent_components.runs import directory
    from maxent_components.study.collect import StudyError, collect_runs

    monkeypatch.setattr(directory, "code_version", lambda: "0.1.0+aaa")
    run = RunDirectory(tmp_path / "run")
    run.start({"seed": 0}, HASH_A)
    run.save_checkpoint({"w": torch.ones(1)}, step=5)
    monkeypatch.setattr(directory, "code_version", lambda: "0.1.0+bbb")
    resumed = RunDirectory(tmp_path / "run")
    assert resumed.status(HASH_A) == "resumable"
    resumed.start({"seed": 0}, HASH_A, resume=True)
    resumed.finish({"eval_return_mean": 1.0, "history": [{"step": 5, "eval_return": 1.0}]})
    assert resumed.read_summary()["code_version"] == "0.1.0+aaa → 0.1.0+bbb"
    # resumed again under the same code: named once
    again = RunDirectory(tmp_path / "run")
    again.start({"seed": 0}, HASH_A, resume=True)
    assert again.read_summary()["code_version"] == "0.1.0+aaa → 0.1.0+bbb"
    # a run started afresh ran one version only
    fresh = RunDirectory(tmp_path / "fresh")
    fresh.start({"seed": 1}, HASH_B)
    fresh.finish({"eval_return_mean": 1.0, "history": [{"step": 5, "eval_return": 1.0}]})
    assert fresh.read_summary()["code_version"] == "0.1.0+bbb"
    again.finish({"eval_return_mean": 1.0, "history": [{"step": 5, "eval_return": 1.0}]})
    with pytest.raises(StudyError, match="0.1.0\\+aaa → 0.1.0\\+bbb, 0.1.0\\+bbb"):
        collect_runs([tmp_path])
    assert len(collect_runs([tmp_path], allow_mixed_versions=True)[0]) == 2


def test_summary_of_another_config_is_a_conflict(tmp_path):
    run = RunDirectory(tmp_path)
    run.start({"seed": 0}, HASH_B)
    with pytest.raises(RunConflictError, match=HASH_B[:12] + ".*" + HASH_A[:12]):
        run.status(HASH_A)
    run.save_checkpoint({}, step=1)
    run.finish({})
    with pytest.raises(RunConflictError):
        run.status(HASH_A)
    assert run.status(HASH_B) == "finished"
    assert issubclass(RunConflictError, RuntimeError)


def test_checkpoint_of_another_config_is_a_conflict(tmp_path):
    other = RunDirectory(tmp_path)
    other.start({"seed": 1}, HASH_B)
    other.save_checkpoint({}, step=1)
    # the summary names the same config but the checkpoint does not
    _write_summary(tmp_path, config_hash=HASH_A, finished=False)
    with pytest.raises(RunConflictError, match=CHECKPOINT_FILE):
        RunDirectory(tmp_path).status(HASH_A)
    # a checkpoint without any summary
    (tmp_path / SUMMARY_FILE).unlink()
    with pytest.raises(RunConflictError, match=HASH_B[:12]):
        RunDirectory(tmp_path).status(HASH_A)
    assert RunDirectory(tmp_path).status(HASH_B) == "resumable"


def test_finished_summary_over_a_foreign_checkpoint_is_a_conflict(tmp_path):
    # A finished run is its summary and its own last checkpoint: one without the other is not a run
    # of this config to skip.
    other = RunDirectory(tmp_path)
    other.start({"seed": 1}, HASH_B)
    other.save_checkpoint({}, step=1)
    for finished in (True, "yes"):
        _write_summary(tmp_path, config_hash=HASH_A, finished=finished)
        with pytest.raises(RunConflictError, match=CHECKPOINT_FILE):
            RunDirectory(tmp_path).status(HASH_A)


def test_summary_must_not_set_finished_and_finish_needs_start(tmp_path):
    run = RunDirectory(tmp_path)
    with pytest.raises(RuntimeError, match="before start"):
        run.finish({"eval_return_mean": 1.0})
    assert not run.summary_path.exists()
    run.start({}, HASH_A)
    with pytest.raises(ValueError, match="finished"):
        run.finish({"finished": True})
    assert run.read_summary()["finished"] is False


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    run = RunDirectory(tmp_path / "run")
    run.start({"seed": 0}, HASH_A)
    state = {
        "net": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "log_alpha": torch.tensor(-1.5),
        "rng": rng_state(),
        "counters": {"frames": 123, "history": [{"step": 100, "eval_return": 2.0}]},
    }
    path = run.save_checkpoint(state, step=123)
    assert path == run.checkpoint_path == tmp_path / "run" / CHECKPOINT_FILE and path.exists()
    assert _leftovers(path.parent) == []

    payload = RunDirectory(tmp_path / "run").load_checkpoint()
    assert payload["step"] == 123 and payload["config_hash"] == HASH_A
    header = verify_checkpoint(path)
    assert header["config_hash"] == HASH_A and header["step"] == 123
    assert header["library"] == code_version() and header["size"] == len(path.read_bytes()) - path.read_bytes().index(b"}\n") - 2
    loaded = payload["state"]
    assert set(loaded) == set(state)
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-2)
    fresh.load_state_dict(loaded["net"])
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    for a, b in zip(net.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    saved_state = optimizer.state_dict()["state"]
    loaded_state = fresh_optimizer.state_dict()["state"]
    assert saved_state.keys() == loaded_state.keys()
    for key in saved_state:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(saved_state[key][name], loaded_state[key][name])
    assert torch.equal(loaded["log_alpha"], torch.tensor(-1.5))
    assert loaded["counters"] == state["counters"]
    # A later checkpoint replaces the earlier one whole; the earlier one is kept beside it.
    run.save_checkpoint({"only": 1}, step=200)
    assert run.load_checkpoint() == {"step": 200, "config_hash": HASH_A, "state": {"only": 1}}
    assert read_checkpoint(run.previous_checkpoint_path)["step"] == 123
    run.save_checkpoint({"only": 2}, step=300)
    assert read_checkpoint(run.previous_checkpoint_path)["state"] == {"only": 1}
    assert sorted(os.listdir(run.path)) == sorted([CHECKPOINT_FILE, "checkpoint.prev.pt", SUMMARY_FILE])


def test_is_empty_job_folder(tmp_path):
    run = RunDirectory(tmp_path / "job")
    assert run.is_empty_job_folder()  # missing
    run.path.mkdir()
    assert run.is_empty_job_folder()
    (run.path / ".hydra").mkdir()
    (run.path / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run.path / "sql.log").write_text("")
    assert run.is_empty_job_folder()
    (run.path / "notes.txt").write_text("mine")
    assert not run.is_empty_job_folder()
    (run.path / "notes.txt").unlink()
    run.start({}, HASH_A)
    assert not run.is_empty_job_folder()


def test_find_run_in_nested_folders(tmp_path):
    _write_summary(tmp_path / "sweep" / "0", config_hash=HASH_A, finished=False)
    _write_summary(tmp_path / "sweep" / "1" / "seed=1", config_hash=HASH_A, finished=True)
    _write_summary(tmp_path / "sweep" / "2", config_hash=HASH_B, finished=True)
    (tmp_path / "sweep" / "3").mkdir()
    (tmp_path / "sweep" / "3" / SUMMARY_FILE).write_text("{broken")
    # finished ones first, although the unfinished one is shallower and sorts first
    assert find_run(tmp_path, HASH_A) == tmp_path / "sweep" / "1" / "seed=1"
    assert find_run(tmp_path, HASH_B) == tmp_path / "sweep" / "2"
    assert find_run(tmp_path, "c" * 64) is None
    assert find_run(tmp_path / "missing", HASH_A) is None
    # without a finished one, the unfinished one
    (tmp_path / "sweep" / "1" / "seed=1" / SUMMARY_FILE).unlink()
    assert find_run(tmp_path, HASH_A) == tmp_path / "sweep" / "0"
    # the root itself counts; deeper than max_depth does not
    _write_summary(tmp_path, config_hash="d" * 64, finished=True)
    assert find_run(tmp_path, "d" * 64) == tmp_path
    _write_summary(tmp_path / "a" / "b" / "c" / "d", config_hash="e" * 64, finished=True)
    assert find_run(tmp_path, "e" * 64) is None
    assert find_run(tmp_path, "e" * 64, max_depth=4) == tmp_path / "a" / "b" / "c" / "d"


def test_find_run_finds_what_start_and_finish_wrote(tmp_path):
    _, digest = config_identity(_CONFIG, _RUN_ONLY)
    run = RunDirectory(tmp_path / "multirun" / "2026-01-01" / "7")
    run.start(_CONFIG, digest)
    assert find_run(tmp_path / "multirun", digest) == run.path
    run.finish({})
    assert find_run(tmp_path / "multirun", digest) == run.path


# ------------------------------------------------------------------------------------------------
# Config options: checks, run-only keys, presets
# ------------------------------------------------------------------------------------------------
@dataclass
class _ToyConfig(RunConfig):
    lr: float = option(3e-4, "Adam learning rate.", gt=0)
    mode: str = option("fast", "Which mode to run in.", choices=("fast", "slow"))
    steps: int = option(10, "How many steps.", ge=1, le=100)
    note: str | None = option(None, "A free-form note.")
    sizes: list = option([64, 64], "Hidden sizes.")
    watch: bool = option(False, "Print more.", run_only=True)
    sampler: Any = group("The policy sampler.")
    env: Any = group("The task.")


def test_option_requires_help():
    with pytest.raises(ValueError, match="help"):
        option(1, "")


def test_option_defaults_are_not_shared():
    a, b = _ToyConfig(), _ToyConfig()
    a.sizes.append(1)
    a.logger.backend = "tensorboard"
    assert b.sizes == [64, 64] and b.logger.backend == "csv"
    assert _ToyConfig().sampler == "???"


def test_validate_options_names_the_option():
    cfg = _ToyConfig()
    cfg.mode = "medium"
    with pytest.raises(ValueError, match=r"mode='medium'.*\['fast', 'slow'\]"):
        validate_options(cfg)
    with pytest.raises(ValueError, match=r"lr=-1.0 is invalid; expected a value > 0"):
        _ToyConfig(lr=-1.0)
    with pytest.raises(ValueError, match=r"steps=101 .* <= 100"):
        _ToyConfig(steps=101)
    with pytest.raises(ValueError, match=r"steps=0 .* >= 1"):
        _ToyConfig(steps=0)
    with pytest.raises(ValueError, match="finite"):
        _ToyConfig(lr=float("inf"))
    with pytest.raises(ValueError, match="finite"):
        _ToyConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="threads=0"):
        _ToyConfig(threads=0)
    with pytest.raises(ValueError, match="seed=-1"):
        _ToyConfig(seed=-1)
    # nested options are named by their dotted path
    with pytest.raises(ValueError, match=r"logger\.backend='bogus'"):
        _ToyConfig(logger=LoggerConfig(backend="bogus"))
    # valid values, a None without bounds, and a group placeholder pass
    validate_options(_ToyConfig(lr=1.0, steps=100, note=None, mode="slow"))


def test_a_logger_backend_whose_package_is_missing_is_refused_by_name(monkeypatch):
    import importlib.util

    from maxent_components.runs import LoggerConfig

    assert LoggerConfig("csv").backend == "csv"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ValueError, match=r"logger.backend=wandb needs the wandb package, which is not installed \(pip install wandb\)"):
        LoggerConfig("wandb")
    assert LoggerConfig("tensorboard").backend == "tensorboard"  # a dev dependency


def test_run_only_keys():
    keys = run_only_keys(RunConfig)
    assert {"threads", "progress", "logger.backend"} <= set(keys)
    assert "seed" not in keys and "logger" not in keys
    toy = run_only_keys(_ToyConfig)
    assert set(toy) == set(keys) | {"watch"}
    assert not {"lr", "mode", "steps", "sizes", "sampler", "env"} & set(toy)
    # the run-only keys of the schema leave the identity of its config unchanged
    config = OmegaConf.to_container(OmegaConf.structured(_ToyConfig(sampler={"num_particles": 8}, env="cartpole")))
    watched = {**config, "threads": 4, "progress": False, "watch": True, "logger": {"backend": "wandb"}}
    assert config_identity(watched, toy)[1] == config_identity(config, toy)[1]


@dataclass
class _PresetConfig(RunConfig):
    steps: int = option(10, "How many steps.", ge=1)
    width: int = option(64, "Layer width.", ge=1)
    demo: bool = option(False, "Demo preset.")
    sampler: dict = option({"num_particles": 32}, "The sampler's options.")


_PRESETS = {
    "smoke": {"steps": 2, "width": 8, "sampler.num_particles": 4, "temperature.anneal_steps": 5},
    "demo": {"steps": 90},
}


def _preset_cfg(**values):
    return OmegaConf.merge(OmegaConf.structured(_PresetConfig), values)


def test_apply_presets_applies_the_one_set():
    cfg = apply_presets(_preset_cfg(), _PRESETS, explicit=[])
    assert cfg == _preset_cfg()  # none set: unchanged
    cfg = apply_presets(_preset_cfg(smoke=True), _PRESETS, explicit=[])
    assert (cfg.steps, cfg.width, cfg.sampler.num_particles) == (2, 8, 4)
    # a key that does not exist (another group choice) is skipped, not created
    assert OmegaConf.select(cfg, "temperature") is None and "temperature" not in cfg
    cfg = apply_presets(_preset_cfg(demo=True), _PRESETS, explicit=[])
    assert (cfg.steps, cfg.width, cfg.sampler.num_particles) == (90, 64, 32)
    # a preset named by a key the config lacks is never active
    assert apply_presets(_preset_cfg(), {"fast": {"steps": 1}}, explicit=[]).steps == 10


def test_apply_presets_keeps_explicit_keys():
    cfg = apply_presets(_preset_cfg(smoke=True, steps=7), _PRESETS, explicit=["steps", "sampler.num_particles"])
    assert (cfg.steps, cfg.width, cfg.sampler.num_particles) == (7, 8, 32)
    # the typed schema still checks the values a preset sets
    with pytest.raises(Exception, match="width"):
        apply_presets(_preset_cfg(smoke=True), {"smoke": {"width": "wide"}}, explicit=[])


def test_apply_presets_refuses_two_active():
    with pytest.raises(ValueError, match="options smoke and demo are exclusive presets"):
        apply_presets(_preset_cfg(smoke=True, demo=True), _PRESETS, explicit=[])


# ------------------------------------------------------------------------------------------------
# Documentation from docstrings, --help
# ------------------------------------------------------------------------------------------------
class _Documented:
    """A part with documented arguments.

    A paragraph that mentions x: not an argument.

    Args:
        alpha: the temperature.
        beta (int): first line
            continued on a second line
            and a third.

    Keyword Args:
        num_cells (Sequence[int]): hidden sizes of
            the default network.
        mode: ``"fast"`` or ``"slow"`` (see :meth:`~maxent_components.Foo.run`).

    Returns:
        not_an_arg: a return value, not an argument.

    Examples:
        >>> x: 1
    """

    def __init__(self, alpha, beta, *, num_cells=(8,), mode="fast"):
        pass


def _shared(low, high, size):
    """Google style lets one entry document several arguments.

    Args:
        size: how many.
        low, high: the bounds
            of the interval.
        scale (float): after the shared entry.
    """


def test_argument_docs_sections_and_multi_line_entries():
    docs = argument_docs(_Documented)
    assert docs["alpha"] == "the temperature."
    assert docs["beta"] == "first line continued on a second line and a third."
    assert docs["num_cells"] == "hidden sizes of the default network."
    assert docs["mode"] == '"fast" or "slow" (see run).'
    assert set(docs) == {"alpha", "beta", "num_cells", "mode"}  # not Returns:, not prose, not Examples:


def test_argument_docs_shared_entries():
    docs = argument_docs(_shared)
    assert docs.get("low") == "the bounds of the interval."
    assert docs.get("high") == "the bounds of the interval."
    # the shared entry does not leak into the one before it, nor hide the one after it
    assert docs["size"] == "how many."
    assert docs["scale"] == "after the shared entry."
    assert set(docs) == {"size", "low", "high", "scale"}


def test_argument_docs_of_real_classes():
    from maxent_components.samplers import SVGDSampler

    docs = argument_docs(SVGDSampler)
    assert "particles" in docs["num_particles"]
    assert set(docs) >= {"num_particles", "fixed_fraction", "bandwidth", "min_bandwidth", "action_spec"}
    assert not any("``" in text for text in docs.values())
    assert argument_docs(lambda: None) == {}
    assert argument_docs(None) == {}


def _write_group(conf_dir: Path, group_name: str, files: dict[str, str]) -> None:
    (conf_dir / group_name).mkdir(parents=True, exist_ok=True)
    for stem, text in files.items():
        (conf_dir / group_name / f"{stem}.yaml").write_text(textwrap.dedent(text))


def test_render_help_lists_options_values_and_group_docs(tmp_path):
    conf_dir = tmp_path / "conf"
    _write_group(
        conf_dir,
        "sampler",
        {
            "svgd": """
                _target_: maxent_components.samplers.SVGDSampler
                num_particles: 32
                fixed_fraction: 0.5
                """,
            "other": "_target_: maxent_components.samplers.GaussianSampler\n",
        },
    )
    _write_group(conf_dir, "env", {"cartpole": "name: CartPole-v1\n"})
    cfg = OmegaConf.merge(
        OmegaConf.structured(_ToyConfig),
        {
            "sampler": {"_target_": "maxent_components.samplers.SVGDSampler", "num_particles": 32, "fixed_fraction": 0.5},
            "env": {"name": "CartPole-v1"},
            "steps": 42,
        },
    )
    text = render_help(
        "toy", "A toy recipe.", _ToyConfig, cfg, ["sampler", "env"], conf_dir, {"env": {"name": "Gymnasium id."}}
    )
    for f in fields(_ToyConfig):
        if f.name in ("sampler", "env"):
            continue
        assert f"  {f.name}=" in text or f"  {f.name}." in text, f.name
    for f in fields(_ToyConfig):
        if f.name not in ("sampler", "env", "logger"):
            assert f.metadata["help"].split()[0] in text, f.name
    assert "lr=0.0003" in text and "mode=fast" in text and "note=null" in text
    assert "steps=42" in text  # the composed value, not the schema default
    assert "sizes=[64,64]" in text and "progress=true" in text and "logger.backend=csv" in text
    assert "One of: fast, slow." in text
    assert "svgd" in text and "other" in text and "maxent_components.samplers.SVGDSampler" in text
    assert "sampler.num_particles=32" in text
    line = next(line for line in text.splitlines() if "sampler.num_particles=32" in line)
    assert "particles" in line.split("sampler.num_particles=32", 1)[1]  # documented by SVGDSampler
    assert "env.name=CartPole-v1" in text and "Gymnasium id." in text


# ------------------------------------------------------------------------------------------------
# Seeding, threads, RNG states
# ------------------------------------------------------------------------------------------------
def _draw():
    return torch.rand(3), torch.randn(2), np.random.rand(2), random.random()


def _same(a, b) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and a[3] == b[3]


def test_seed_everything_reproducible():
    seed_everything(5)
    a = _draw()
    seed_everything(5)
    b = _draw()
    seed_everything(6)
    c = _draw()
    assert _same(a, b) and not _same(a, c)
    seed_everything(2**40)  # larger than numpy's seed range
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(1.5)


def test_rng_state_round_trip(tmp_path):
    seed_everything(3)
    _draw()
    state = rng_state()
    # through a checkpoint, as the loop saves it
    run = RunDirectory(tmp_path)
    run.start({}, HASH_A)
    run.save_checkpoint({"rng": state}, step=1)
    expected = _draw()
    seed_everything(99)
    _draw()
    set_rng_state(run.load_checkpoint()["state"]["rng"])
    assert _same(_draw(), expected)


def test_rng_state_carries_each_cuda_devices_generator_once_cuda_is_in_use(monkeypatch):
    assert "cuda" not in rng_state() or torch.cuda.is_initialized()  # a CPU run does not start CUDA
    states = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3, 4], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # restored on a machine with fewer devices
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, device)))
    state = rng_state()
    assert state["cuda"] is states
    set_rng_state(state)
    assert restored == [(states[0], 0)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a GPU run resumed on a CPU machine
    set_rng_state(state)
    assert len(restored) == 1


def test_set_threads():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        set_threads(0)
