"""A run folder, identified by the config it runs, never by its name.

A run writes into one folder:

- ``summary.json``: written at the start (``"finished": false``) and at the end (``true``), always
  with the resolved ``config``, its ``config_hash`` and the ``code_version``;
- ``checkpoint.pt``: everything needed to continue the run (see
  :class:`~maxent_components.training.loop.OffPolicyLoop`), written atomically every N env steps;
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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from maxent_components.runs.files import atomic_torch_save, atomic_write_json, json_safe

__all__ = [
    "CHECKPOINT_FILE",
    "SUMMARY_FILE",
    "RunConflictError",
    "RunDirectory",
    "code_version",
    "config_identity",
    "find_run",
]

SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_DIR = "logs"


class RunConflictError(RuntimeError):
    """A run folder holds a run of another config; it is neither overwritten nor mixed."""


def config_identity(config: Mapping[str, Any], run_only: Iterable[str] = ()) -> tuple[dict, str]:
    """``(config without the run-only keys, hex SHA-256 of its canonical JSON)``.

    Run-only keys are top-level names (``"progress"``) or dotted paths (``"logger.backend"``).
    """
    identity = json.loads(json.dumps(json_safe(config), sort_keys=True))
    for dotted in run_only:
        *parents, leaf = dotted.split(".")
        node = identity
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return identity, digest


def code_version() -> str:
    """The package version (runs of different code versions are not mixed by the study tool)."""
    from maxent_components import __version__

    return __version__


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return content if isinstance(content, dict) else None


class RunDirectory:
    """The folder of one run: its summary, its checkpoint and its logs.

    Args:
        path: the folder (created on :meth:`start`).

    Examples:
        >>> import tempfile
        >>> run = RunDirectory(tempfile.mkdtemp())
        >>> _, digest = config_identity({"seed": 0, "progress": True}, run_only=["progress"])
        >>> run.status(digest)
        'new'
        >>> run.start({"seed": 0}, digest)
        >>> run.finish({"eval_return_mean": 12.0})
        >>> run.status(digest)
        'finished'
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config: dict | None = None
        self.config_hash: str | None = None
        self.run_only: list[str] = []

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def log_dir(self) -> Path:
        return self.path / LOG_DIR

    def read_summary(self) -> dict | None:
        """The summary, or ``None`` when there is none (or it is not valid JSON)."""
        return _read_json(self.summary_path)

    def status(self, config_hash: str) -> Literal["new", "finished", "resumable"]:
        """What this folder holds for the config with hash ``config_hash``.

        ``"finished"``: a finished run of that config; ``"resumable"``: a checkpoint of that config;
        ``"new"``: nothing. A summary or checkpoint of another config raises :class:`RunConflictError`.
        """
        summary = self.read_summary()
        if summary is not None and summary.get("config_hash") != config_hash:
            raise RunConflictError(
                f"{self.path} holds a run of another config (hash {str(summary.get('config_hash'))[:12]}, "
                f"this one {config_hash[:12]}); choose another hydra.run.dir or hydra.sweep.dir."
            )
        if summary is not None and summary.get("finished") is True and summary.get("config_hash") == config_hash:
            return "finished"
        if self.checkpoint_path.exists():
            held = self.checkpoint_hash()
            if held != config_hash:
                raise RunConflictError(
                    f"{self.checkpoint_path} belongs to another config (hash {str(held)[:12]}, this one "
                    f"{config_hash[:12]}); choose another hydra.run.dir or hydra.sweep.dir."
                )
            return "resumable"
        return "new"

    def checkpoint_hash(self) -> str | None:
        """The config hash recorded in the checkpoint."""
        return self.load_checkpoint().get("config_hash")

    # -- writing ---------------------------------------------------------------------------------
    def start(self, config: Mapping[str, Any], config_hash: str, *, run_only: Iterable[str] = ()) -> None:
        """Mark the folder as holding an unfinished run of ``config`` (``run_only``: the options left
        out of its identity, recorded so that a study can compare configs the same way)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.config, self.config_hash = json_safe(config), config_hash
        self.run_only = sorted(run_only)
        self._write_summary({}, finished=False)

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
                "code_version": code_version(),
                "finished": finished,
            },
        )

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Write the final summary, marking the run finished."""
        if self.config_hash is None:
            raise RuntimeError("RunDirectory.finish() before start().")
        self._write_summary(summary, finished=True)

    def save_checkpoint(self, state: Mapping[str, Any], *, step: int) -> Path:
        """Save ``state`` (state dicts, RNG states, counters) atomically with the step and config hash."""
        payload = {"step": int(step), "config_hash": self.config_hash, "state": dict(state)}
        atomic_torch_save(payload, self.checkpoint_path)
        return self.checkpoint_path

    def load_checkpoint(self) -> dict[str, Any]:
        """The payload written by :meth:`save_checkpoint` (``step``, ``config_hash``, ``state``).

        The checkpoint holds pickled environments and RNG states, so it is loaded with
        ``weights_only=False``: load only checkpoints of runs you made.
        """
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)

    def is_empty_job_folder(self) -> bool:
        """Whether the folder holds only what Hydra writes before a job starts (``.hydra``, the job log)."""
        if not self.path.is_dir():
            return True
        return all(p.name == ".hydra" or p.suffix == ".log" for p in self.path.iterdir())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"


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
