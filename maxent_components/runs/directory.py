"""A run folder, identified by the config it runs, never by its name.

A run writes into one folder:

- ``summary.json``: written at the start (``"finished": false``) and at the end (``true``), always
  with the resolved ``config``, its ``config_hash`` and the ``code_version`` (the package version and
  a digest of its sources);
- ``checkpoint.pt`` (and the one before, ``checkpoint.prev.pt``): everything needed to continue the
  run (see :class:`~maxent_components.training.loop.OffPolicyLoop`), written atomically with a
  checksum every N env steps;
- ``logs/``: the metrics, through a TorchRL logger (``logger.backend``).

The identity of a run is the hash of its resolved config minus the run-only options (those that
change how a run is watched, not what it computes: ``progress``, ``threads``, ``logger``, ...).
:meth:`RunDirectory.status` compares it with what a folder holds: a finished run of the same config
is skipped, an interrupted one is resumed from its checkpoint, and a folder holding *another* config
is refused (:class:`RunConflictError`) rather than overwritten or mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from maxent_components.runs.checkpoint import (
    CheckpointError,
    read_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)
from maxent_components.runs.files import atomic_write_json, json_safe
from maxent_components.runs.lock import LOCK_FILE
from maxent_components.runs.logs import damaged_logs
from maxent_components.runs.version import code_version

__all__ = [
    "CHECKPOINT_FILE",
    "SUMMARY_FILE",
    "RunConflictError",
    "RunDirectory",
    "config_differences",
    "config_identity",
    "find_run",
    "folder_problem",
]

SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.pt"
LOG_DIR = "logs"


class RunConflictError(RuntimeError):
    """A run folder holds a run of another config; it is neither overwritten nor mixed."""


def config_identity(
    config: Mapping[str, Any], run_only: Iterable[str] = (), neutral: Mapping[str, Any] | None = None
) -> tuple[dict, str]:
    """``(config without the run-only keys, hex SHA-256 of its canonical JSON)``.

    Run-only keys are top-level names (``"progress"``) or dotted paths (``"logger.backend"``).
    ``neutral``: keys left out only at the value given (``{"num_envs": 1}``), options added later
    whose default is what earlier runs did: a config recorded before such an option has the same
    identity as one holding it at its default.
    """
    identity = json.loads(json.dumps(json_safe(config), sort_keys=True))
    dropped = [(dotted, None) for dotted in run_only] + [(k, json_safe(v)) for k, v in (neutral or {}).items()]
    for dotted, only_at in dropped:
        *parents, leaf = dotted.split(".")
        node = identity
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node and (only_at is None or node[leaf] == only_at):
            del node[leaf]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return identity, digest


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], *, limit: int = 6) -> str:
    """The options whose values differ between two configs, ``key: old → new`` (``-`` for a missing
    key), at most ``limit`` of them and a count of the rest.

    Examples:
        >>> config_differences({"seed": 0, "env": {"name": "A"}}, {"seed": 1, "env": {"name": "A"}, "x": 2})
        'seed: 0 → 1, x: - → 2'
    """
    flat_old, flat_new = _flatten(old), _flatten(new)
    changed = [
        f"{key}: {json.dumps(flat_old.get(key, '-')).strip(chr(34))} → {json.dumps(flat_new.get(key, '-')).strip(chr(34))}"
        for key in sorted(flat_old.keys() | flat_new.keys())
        if flat_old.get(key, _MISSING) != flat_new.get(key, _MISSING)
    ]
    more = f" and {len(changed) - limit} more" if len(changed) > limit else ""
    return ", ".join(changed[:limit]) + more


_MISSING = object()


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, Mapping) or not node:
        return {prefix[:-1]: node} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return content if isinstance(content, dict) else None


class RunDirectory:
    """The folder of one run: its summary, its checkpoints and its logs.

    Checkpoints carry a checksum (:mod:`maxent_components.runs.checkpoint`); the previous one is kept
    beside the last (``checkpoint.prev.pt``), so a damaged last checkpoint falls back to the one before.
    A folder holds a *finished* run only if its summary says so and its last checkpoint and CSV logs
    verify; anything else is resumed (from the newest good checkpoint) or restarted, and
    :attr:`notes` says which and why.

    Args:
        path: the folder (created on :meth:`start`).

    Examples:
        >>> import tempfile
        >>> run = RunDirectory(tempfile.mkdtemp())
        >>> _, digest = config_identity({"seed": 0, "progress": True}, run_only=["progress"])
        >>> run.status(digest)
        'new'
        >>> run.start({"seed": 0}, digest)
        >>> _ = run.save_checkpoint({"w": 1}, step=10)
        >>> run.finish({"eval_return_mean": 12.0})
        >>> run.status(digest)
        'finished'
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config: dict | None = None
        self.config_hash: str | None = None
        self.code_version: str | None = None
        self.run_only: list[str] = []
        self.neutral: dict[str, Any] = {}
        self.notes: list[str] = []

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def previous_checkpoint_path(self) -> Path:
        return self.path / PREVIOUS_CHECKPOINT_FILE

    @property
    def log_dir(self) -> Path:
        return self.path / LOG_DIR

    def read_summary(self) -> dict | None:
        """The summary, or ``None`` when there is none (or it is not valid JSON)."""
        return _read_json(self.summary_path)

    def _checkpoints(self) -> list[tuple[Path, dict | None, str | None]]:
        """``(path, verified header or None, error or None)`` of the last and the previous checkpoint."""
        found = []
        for path in (self.checkpoint_path, self.previous_checkpoint_path):
            if path.exists():
                try:
                    found.append((path, verify_checkpoint(path), None))
                except CheckpointError as err:
                    found.append((path, None, str(err)))
        return found

    def status(self, config_hash: str, config: Mapping[str, Any] | None = None) -> Literal["new", "finished", "resumable"]:
        """What this folder holds for the config with hash ``config_hash``.

        ``"finished"``: a finished run of that config whose last checkpoint and logs verify (every
        row whole, no step logged twice); ``"resumable"``: a good checkpoint of that config;
        ``"new"``: nothing usable (damaged files are listed in :attr:`notes`). A summary or a good
        checkpoint of another config raises :class:`RunConflictError`, which names the options that
        differ (``old → new``) when ``config`` (the new run's, with the same run-only and neutral
        options as the recorded one) is given.
        """
        self.notes = []
        summary = self.read_summary()
        if summary is not None and summary.get("config_hash") != config_hash:
            differ = ""
            if config is not None and isinstance(summary.get("config"), dict):
                old = config_identity(summary["config"], summary.get("run_only") or (), summary.get("neutral"))[0]
                new = config_identity(config, summary.get("run_only") or (), summary.get("neutral"))[0]
                differ = f": {config_differences(old, new)}" if old != new else ""
            raise RunConflictError(
                f"{self.path} holds a run of another config (hash {str(summary.get('config_hash'))[:12]}, "
                f"this one {config_hash[:12]}){differ}; choose another hydra.run.dir or hydra.sweep.dir."
            )
        checkpoints = self._checkpoints()
        for path, header, _ in checkpoints:
            if header is not None and header.get("config_hash") != config_hash:
                raise RunConflictError(
                    f"{path} belongs to another config (hash {str(header.get('config_hash'))[:12]}, this one "
                    f"{config_hash[:12]}); choose another hydra.run.dir or hydra.sweep.dir."
                )
        self.notes = [error for _, _, error in checkpoints if error is not None]
        if summary is not None and summary.get("finished") is True:
            last = checkpoints[0] if checkpoints and checkpoints[0][0] == self.checkpoint_path else None
            damaged = damaged_logs(self.log_dir)
            if last is not None and last[1] is not None and not damaged:
                return "finished"
            why = f"its logs are damaged: {damaged}" if damaged else "its last checkpoint does not verify"
            self.notes.append(f"{self.path} is marked finished but {why}; it is run again.")
        good = [path for path, header, _ in checkpoints if header is not None]
        if good:
            if good[0] != self.checkpoint_path:
                self.notes.append(f"resuming from {good[0].name}, the checkpoint before the damaged last one.")
            return "resumable"
        if checkpoints:
            self.notes.append("no checkpoint verifies: the run restarts from the beginning.")
        return "new"

    # -- writing ---------------------------------------------------------------------------------
    def start(
        self, config: Mapping[str, Any], config_hash: str, *, run_only: Iterable[str] = (),
        neutral: Mapping[str, Any] | None = None, resume: bool = False,
    ) -> None:
        """Mark the folder as holding an unfinished run of ``config`` (which invalidates an old
        finished mark at once). Left-over temporary files of a killed write are removed; without
        ``resume``, so are old checkpoints and logs (a restarted run never mixes with the old one). ``run_only``
        and ``neutral``: the options left out of the run's identity (:func:`config_identity`),
        recorded so that a study can compare configs the same way. The summary names the code
        that ran (:func:`code_version`); a run resumed under other code names each, ``"A → B"``."""
        self.path.mkdir(parents=True, exist_ok=True)
        for leftover in self.path.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        if not resume:
            for path in (self.checkpoint_path, self.previous_checkpoint_path):
                path.unlink(missing_ok=True)
            shutil.rmtree(self.log_dir, ignore_errors=True)
        earlier = (self.read_summary() or {}).get("code_version") if resume else None
        version = code_version()
        if earlier:  # resumed: the versions it ran under so far, and this one unless it is the last
            version = str(earlier) if str(earlier).rsplit(" → ", 1)[-1] == version else f"{earlier} → {version}"
        self.config, self.config_hash, self.code_version = json_safe(config), config_hash, version
        self.run_only, self.neutral = sorted(run_only), json_safe(dict(neutral or {}))
        self._write_summary({}, finished=False)

    def check_writable(self) -> None:
        """Raise an ``OSError`` naming the folder unless a file can be written there (before training)."""
        probe = self.path / ".write-check.tmp"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise OSError(err.errno, err.strerror or str(err), str(probe)) from None

    def _write_summary(self, summary: Mapping[str, Any], *, finished: bool) -> None:
        if "finished" in summary:
            raise ValueError("summary must not contain 'finished'; it is set by start() and finish().")
        atomic_write_json(
            self.summary_path,
            {
                **summary,
                "config": self.config,
                "config_hash": self.config_hash,
                "run_only": self.run_only,
                "neutral": self.neutral,
                "code_version": self.code_version,
                "finished": finished,
            },
        )

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Write the final summary, marking the run finished."""
        if self.config_hash is None:
            raise RuntimeError("RunDirectory.finish() before start().")
        self._write_summary(summary, finished=True)

    def fail(self, summary: Mapping[str, Any], cause: str) -> None:
        """Write the summary so far, marked failed with ``cause`` (and not finished)."""
        self._write_summary({**summary, "failed": cause}, finished=False)

    def save_checkpoint(self, state: Mapping[str, Any], *, step: int) -> Path:
        """Save ``state`` atomically with its step, config hash and checksum; the last checkpoint
        becomes the previous one."""
        payload = {"step": int(step), "config_hash": self.config_hash, "state": dict(state)}
        write_checkpoint(
            self.checkpoint_path, payload, keep_previous=self.previous_checkpoint_path,
            config_hash=self.config_hash, step=int(step),
        )
        return self.checkpoint_path

    def load_checkpoint(self) -> dict[str, Any]:
        """The payload (``step``, ``config_hash``, ``state``) of the newest checkpoint that verifies and loads.

        A newer checkpoint passed over (it verifies but cannot be unpickled) is named in
        :attr:`notes` with the reason. Raises
        :class:`~maxent_components.runs.checkpoint.CheckpointError` naming every file and what is
        wrong with it when none loads.
        """
        errors = []
        for path in (self.checkpoint_path, self.previous_checkpoint_path):
            if path.exists():
                try:
                    payload = read_checkpoint(path)
                except CheckpointError as err:
                    errors.append(str(err))
                    continue
                if errors:
                    self.notes.append(f"{errors[-1]} Resuming from {path.name}.")
                return payload
        raise CheckpointError(" ".join(errors) or f"{self.path} holds no checkpoint.")

    def last_checkpoint_step(self) -> int | None:
        """The step of the newest checkpoint that verifies, or ``None``."""
        return next((header["step"] for _, header, _ in self._checkpoints() if header is not None), None)

    def has_checkpoint(self) -> bool:
        return any(header is not None for _, header, _ in self._checkpoints())

    def is_empty_job_folder(self) -> bool:
        """Whether the folder holds only what Hydra writes before a job starts (``.hydra``, the job log)."""
        if not self.path.is_dir():
            return True
        return all(p.name in (".hydra", LOCK_FILE) or p.suffix == ".log" for p in self.path.iterdir())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why no run can be written at ``path`` (a file in the way, a read-only or forbidden folder),
    or ``None``; checked before Hydra makes the folder. Nothing is written."""
    path = Path(path).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is read-only or not writable"
    return None


def find_run(root: str | os.PathLike, config_hash: str, *, max_depth: int = 3) -> Path | None:
    """A folder below ``root`` whose summary records ``config_hash`` (finished ones first), else ``None``.

    A sweep relaunched with other overrides names its folders differently; looking runs up by their
    recorded config lets it finish exactly the missing cells.
    """
    root = Path(root)
    found = []
    for depth in range(max_depth + 1):
        for summary in root.glob("/".join(["*"] * depth + [SUMMARY_FILE])):
            content = _read_json(summary)
            if content is not None and content.get("config_hash") == config_hash:
                found.append((content.get("finished") is not True, str(summary.parent)))
    return Path(sorted(found)[0][1]) if found else None
