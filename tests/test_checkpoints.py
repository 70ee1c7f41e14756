"""Checkpoint integrity and run folders that are never a mixture (maxent_components.runs.checkpoint,
RunDirectory): damaged, truncated, empty and foreign files are named errors; a relaunch over them
resumes from the last good checkpoint or restarts and says which; a finished folder is finished only
if its files verify; files follow the umask; a full disk ends a run failed, with its results kept.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recipe_runner import ROOT, run_recipe, scalars, summary_of

from maxent_components.runs import (
    CHECKPOINT_FILE,
    SUMMARY_FILE,
    CheckpointError,
    RunDirectory,
    read_checkpoint,
    write_checkpoint,
)
from maxent_components.runs.checkpoint import MAGIC, verify_checkpoint
from maxent_components.runs.version import code_version

HASH = "c" * 64
PAYLOAD = {"w": torch.linspace(-1.0, 1.0, 64), "step": 3, "nested": {"a": [1, 2, 3]}}


def _file(tmp_path, payload=PAYLOAD, **fields):
    path = tmp_path / CHECKPOINT_FILE
    write_checkpoint(path, payload, **fields)
    return path


def test_round_trip_and_header(tmp_path):
    path = _file(tmp_path, config_hash=HASH, step=3)
    header = verify_checkpoint(path)
    assert header["config_hash"] == HASH and header["step"] == 3 and header["format"] == 1
    assert header["library"] == code_version()
    loaded = read_checkpoint(path)
    assert torch.equal(loaded["w"], PAYLOAD["w"]) and loaded["nested"] == PAYLOAD["nested"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: b"", "is empty"),
        (lambda raw: raw[: len(raw) // 2], "truncated"),
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw[: len(MAGIC) + 5], "damaged header"),
        (lambda raw: raw + b"\0", "more than its header says"),
        (lambda raw: raw[:-10] + bytes(b ^ 0xFF for b in raw[-10:]), "checksum"),
        (lambda raw: raw.replace(b'"step": 3', b'"step": 9'), "checksum"),
        (lambda raw: raw.replace(b'"format": 1', b'"format": 7'), "format 7"),
    ],
    ids=["empty", "half", "last-byte", "header-cut", "extra-byte", "payload-flip", "header-field", "future-format"],
)
def test_damaged_files_are_named_errors(tmp_path, damage, message):
    path = _file(tmp_path, step=3)
    path.write_bytes(damage(path.read_bytes()))
    for read in (read_checkpoint, verify_checkpoint):
        with pytest.raises(CheckpointError, match=message) as caught:
            read(path)
        assert str(path) in str(caught.value)


def test_foreign_and_missing_files_are_named_errors(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save(PAYLOAD, foreign)  # a plain torch.save file: not one of ours
    with pytest.raises(CheckpointError, match=f"{foreign}.*not a maxent_components checkpoint"):
        read_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pt")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0.0, 1.0, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_is_caught(tmp_path, where, bit):
    """Whatever byte of the file a flip hits (magic, header, payload), reading fails with a named error."""
    path = _file(tmp_path, config_hash=HASH, step=3)
    raw = bytearray(path.read_bytes())
    raw[int(where * len(raw))] ^= 1 << bit
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=str(path)):
        read_checkpoint(path)


def test_a_payload_that_verifies_but_does_not_load_is_a_named_error(tmp_path):
    path = _file(tmp_path)
    raw = path.read_bytes()
    head, _, data = raw[len(MAGIC) :].partition(b"\n")
    header = json.loads(head)
    bad = b"not a pickle"
    header["size"] = len(bad)
    from maxent_components.runs.checkpoint import _digest

    header["sha256"] = _digest(header, bad)
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + bad)
    with pytest.raises(CheckpointError, match="verifies but cannot be loaded"):
        read_checkpoint(path)


# ------------------------------------------------------------------------------------------------
# Run folders
# ------------------------------------------------------------------------------------------------
def _run_with_two_checkpoints(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.start({"seed": 0}, HASH)
    run.save_checkpoint({"w": 1}, step=10)
    run.save_checkpoint({"w": 2}, step=20)
    return run


def _flip(path):
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x10
    path.write_bytes(bytes(raw))


def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(tmp_path):
    run = _run_with_two_checkpoints(tmp_path)
    _flip(run.checkpoint_path)
    fresh = RunDirectory(run.path)
    assert fresh.status(HASH) == "resumable"
    assert any("checksum" in note for note in fresh.notes)
    assert any("checkpoint.prev.pt" in note for note in fresh.notes)
    assert fresh.load_checkpoint() == {"step": 10, "config_hash": HASH, "state": {"w": 1}}


def test_no_good_checkpoint_restarts_and_says_so(tmp_path):
    run = _run_with_two_checkpoints(tmp_path)
    _flip(run.checkpoint_path)
    run.previous_checkpoint_path.write_bytes(b"")
    fresh = RunDirectory(run.path)
    assert fresh.status(HASH) == "new"
    assert any("restarts" in note for note in fresh.notes)
    with pytest.raises(CheckpointError, match="checksum.*empty"):
        fresh.load_checkpoint()
    fresh.start({"seed": 0}, HASH)  # not a resume: the damaged files go
    assert not fresh.checkpoint_path.exists() and not fresh.previous_checkpoint_path.exists()


def test_a_kill_between_the_two_renames_resumes_from_the_previous_checkpoint(tmp_path):
    run = _run_with_two_checkpoints(tmp_path)
    run.checkpoint_path.unlink()  # moved to .prev, the new one not yet renamed into place
    assert RunDirectory(run.path).status(HASH) == "resumable"
    assert RunDirectory(run.path).load_checkpoint()["step"] == 10


@pytest.mark.parametrize("damage", ["checkpoint", "log"])
def test_a_finished_folder_with_damaged_files_is_run_again(tmp_path, damage):
    run = _run_with_two_checkpoints(tmp_path)
    log = run.log_dir / "metrics" / "scalars" / "eval_return.csv"
    log.parent.mkdir(parents=True)
    log.write_text("100,1.5\n200,2.5\n")
    run.finish({"eval_return_mean": 2.5})
    assert RunDirectory(run.path).status(HASH) == "finished"
    if damage == "checkpoint":
        _flip(run.checkpoint_path)
    else:
        log.write_text("100,1.5\n200,")  # the last row cut short
    fresh = RunDirectory(run.path)
    status = fresh.status(HASH)
    assert status == "resumable"  # from the good checkpoint it still has
    assert any("marked finished" in note for note in fresh.notes), fresh.notes


def test_start_invalidates_the_finished_mark_and_removes_leftovers(tmp_path):
    run = _run_with_two_checkpoints(tmp_path)
    (run.log_dir / "metrics").mkdir(parents=True)
    (run.log_dir / "metrics" / "old.csv").write_text("1,1\n")
    run.finish({"eval_return_mean": 1.0})
    (run.path / f".{CHECKPOINT_FILE}.abc.tmp").write_bytes(b"half")
    (run.path / f".{SUMMARY_FILE}.abc.tmp").write_bytes(b"{")
    forced = RunDirectory(run.path)
    forced.start({"seed": 0}, HASH)  # a forced rerun, not a resume
    assert forced.read_summary()["finished"] is False
    assert sorted(os.listdir(run.path)) == [SUMMARY_FILE]
    # a resume keeps its checkpoints and logs, and drops the temp files
    resumed = _run_with_two_checkpoints(tmp_path / "b")
    (resumed.path / f".{CHECKPOINT_FILE}.x.tmp").write_bytes(b"")
    RunDirectory(resumed.path).start({"seed": 0}, HASH, resume=True)
    assert sorted(os.listdir(resumed.path)) == sorted([CHECKPOINT_FILE, "checkpoint.prev.pt", SUMMARY_FILE])


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        run = _run_with_two_checkpoints(tmp_path)
    finally:
        os.umask(old)
    for path in (run.summary_path, run.checkpoint_path, run.previous_checkpoint_path):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


# ------------------------------------------------------------------------------------------------
# Recipes: relaunch over damage, full disk, unwritable folder
# ------------------------------------------------------------------------------------------------
RUN = ["smoke=true", "plots=false", "threads=1", "total_frames=400", "frames_per_batch=10", "checkpoint_interval=100"]


@pytest.mark.parametrize("envs", [1, 2])
def test_a_relaunch_over_a_damaged_checkpoint_resumes_from_the_previous_one(tmp_path, envs):
    # With two envs stepped together, each copy's state and unfinished episode is restored too.
    folder, run_options = tmp_path / "run", [*RUN, f"num_envs={envs}"]
    first = run_recipe("soft_dqn", *run_options, f"hydra.run.dir={folder}")
    assert first.returncode == 0, first.stderr[-2000:]
    expected = {name: scalars(folder, name) for name in ("loss_qvalue", "train_return")}
    run = RunDirectory(folder)
    assert read_checkpoint(run.previous_checkpoint_path)["step"] == 300
    _flip(run.checkpoint_path)
    again = run_recipe("soft_dqn", *run_options, f"hydra.run.dir={folder}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "marked finished but its last checkpoint does not verify" in again.stdout
    assert "resuming from checkpoint.prev.pt" in again.stdout
    summary = summary_of(folder)
    assert summary["finished"] is True and summary["env_steps"] == 400
    assert {name: scalars(folder, name) for name in expected} == expected  # the last 100 steps replayed exactly
    assert "not be saved" not in again.stderr
    assert verify_checkpoint(run.checkpoint_path)["step"] == 400


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_marks_the_run_failed_and_keeps_what_was_written(tmp_path):
    folder = tmp_path / "run"
    cmd = [sys.executable, "-m", "maxent_components.recipes.soft_dqn", *RUN, f"hydra.run.dir={folder}"]
    # Room for the summary, the config and the logs, not for a checkpoint with its replay buffer.
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size(40_000), check=False
    )
    assert out.returncode == 1, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"soft_dqn: error: could not write {folder / CHECKPOINT_FILE}: File too large"], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    summary = summary_of(folder)
    assert summary["finished"] is False and "File too large" in summary["failed"]
    assert summary["env_steps"] == 100 and summary["config_hash"]
    assert not RunDirectory(folder).checkpoint_path.exists()
    assert [name for name in os.listdir(folder) if name.endswith(".tmp")] == []
    assert scalars(folder, "loss_qvalue")  # the metrics so far are kept


def test_an_unwritable_run_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "run"
    (folder / SUMMARY_FILE).mkdir(parents=True)  # the summary cannot be written (even by root)
    out = run_recipe("soft_dqn", *RUN, f"hydra.run.dir={folder}")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"soft_dqn: error: cannot write into the run folder {folder}" in out.stderr
    assert not (folder / "logs").exists() and not (folder / CHECKPOINT_FILE).exists()


def test_checkpoint_bytes_do_not_depend_on_the_umask_or_the_path(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "sub" / "b.pt"
    write_checkpoint(a, PAYLOAD, step=1)
    write_checkpoint(b, PAYLOAD, step=1)
    assert verify_checkpoint(a) == verify_checkpoint(b)
    buffer = io.BytesIO()
    torch.save(PAYLOAD, buffer)
    assert verify_checkpoint(a)["size"] == len(buffer.getvalue())


def test_a_checkpoint_of_another_layout_is_one_line_not_a_traceback(tmp_path):
    folder = tmp_path / "run"
    first = run_recipe("soft_dqn", *RUN, "total_frames=200", f"hydra.run.dir={folder}")
    assert first.returncode == 0, first.stderr[-2000:]
    run = RunDirectory(folder)
    summary = summary_of(folder)
    # An unfinished run whose (verifying) checkpoint holds a state this version does not know.
    run.start(summary["config"], summary["config_hash"], resume=True)
    run.save_checkpoint({"loss": {}, "buffer": {"layout": "old"}}, step=100)
    again = run_recipe("soft_dqn", *RUN, "total_frames=200", f"hydra.run.dir={folder}")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    (line,) = [line for line in again.stderr.splitlines() if "error" in line]
    assert line.startswith(f"soft_dqn: error: the checkpoint in {folder} verifies but this library version cannot restore it")
    assert summary_of(folder)["finished"] is False and "cannot restore" in summary_of(folder)["failed"]
