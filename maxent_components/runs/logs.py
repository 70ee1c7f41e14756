"""A run's metrics through a TorchRL logger, resumed without a repeated or a missing step.

A run killed after its last checkpoint has logged steps that its resume computes again. Each
backend is resumed so that a reader sees every step once:

- ``csv`` and ``tensorboard`` keep their files in the run folder: the rows (CSV) and event records
  (TensorBoard's TFRecord files) logged after the checkpoint's step are cut away before the logger
  reopens, and the resumed run logs them again (so the logs are those of an uninterrupted run);
- ``wandb`` and ``mlflow`` send their metrics elsewhere, where nothing can be cut: the logger keeps
  the last step it has sent in ``logs/.sent_step`` and a resumed run sends only the steps after it,
  into the same W&B or MLflow run (TorchRL's ``resume="must"`` for W&B, the saved run id for MLflow).

:func:`damaged_logs` is the check a folder must pass to count as finished: every CSV line a whole
``step,value`` row, steps strictly increasing in every CSV file, and no TensorBoard scalar logged
twice at one step.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from maxent_components.runs.files import atomic_write_bytes, atomic_write_text

__all__ = ["BACKENDS", "EXPERIMENT", "RunLogger", "cut_csv_logs", "cut_event_files", "damaged_logs"]

BACKENDS = ("csv", "tensorboard", "wandb", "mlflow")
#: the experiment name: the metrics of a run live in ``logs/<EXPERIMENT>/``
EXPERIMENT = "metrics"
_LOCAL = ("csv", "tensorboard")
SENT_FILE = ".sent_step"


class RunLogger:
    """The metrics logger of one run folder (``log_dir``), in one of :data:`BACKENDS`.

    :meth:`open` creates TorchRL's logger (``resume``: the state :meth:`state_dict` saved, and the
    checkpoint's ``step``); :meth:`log` writes one row at one step. Logs are cut back or skipped on
    resume as the module docstring says. A write that fails (disk full) raises ``OSError``.
    """

    def __init__(self, backend: str, log_dir: str | os.PathLike) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"logger backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
        self.backend, self.log_dir = backend, Path(log_dir)
        self.logger = None
        self._sent_through: int | None = None  # remote backends: steps up to here were sent before a kill

    @property
    def local(self) -> bool:
        return self.backend in _LOCAL

    def open(self, *, resume: Mapping[str, Any] | None = None, step: int | None = None) -> RunLogger:
        from torchrl.record.loggers import get_logger

        self.log_dir.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if resume is not None:
            if step is None:
                raise ValueError("resuming a logger needs the checkpoint's step.")
            saved = resume.get("backend", "csv")
            if saved != self.backend:
                raise ValueError(f"the run logged with logger.backend={saved}; it cannot resume with {self.backend}.")
            if self.backend == "csv":
                cut_csv_logs(self.log_dir, step)
            elif self.backend == "tensorboard":
                cut_event_files(self.log_dir / EXPERIMENT, step)
            else:
                self._sent_through = _read_step(self.log_dir / SENT_FILE)
            if self.backend == "wandb":  # TorchRL reopens the saved W&B run (resume="must")
                kwargs["state_dict"] = resume["torchrl"]
        previous_run = os.environ.get("MLFLOW_RUN_ID")
        if self.backend == "mlflow":
            # MLflow's file store keeps the metrics in the run folder (newer MLflow asks to opt in to it).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            if resume is not None and resume.get("run_id"):
                os.environ["MLFLOW_RUN_ID"] = resume["run_id"]  # mlflow.start_run() reopens that run
        try:
            self.logger = get_logger(self.backend, logger_name=str(self.log_dir), experiment_name=EXPERIMENT, **kwargs)
        finally:
            if self.backend == "mlflow":
                os.environ.pop("MLFLOW_RUN_ID", None)
                if previous_run is not None:
                    os.environ["MLFLOW_RUN_ID"] = previous_run
        if resume is not None and self.backend != "wandb":  # counters (the folders are this run's own)
            self.logger.load_state_dict(resume["torchrl"])
        return self

    def log(self, row: Mapping[str, float], *, step: int) -> None:
        """Log ``row`` at ``step`` (skipped when a remote backend already received that step)."""
        if self._sent_through is not None and step <= self._sent_through:
            return
        self.logger.log_metrics(dict(row), step=step)
        if not self.local:
            atomic_write_text(self.log_dir / SENT_FILE, f"{step}\n")

    def state_dict(self) -> dict[str, Any]:
        state = {"backend": self.backend, "torchrl": self.logger.state_dict()}
        if self.backend == "mlflow":
            state["run_id"] = self.logger.experiment.info.run_id
        return state

    def close(self) -> None:
        """Flush and close what the backend keeps open (files, a W&B or MLflow run)."""
        logger, self.logger = self.logger, None
        if logger is None:
            return
        experiment = getattr(logger, "experiment", None)
        if self.backend == "csv":
            for handle in getattr(experiment, "files", {}).values():
                handle.close()
        elif self.backend == "tensorboard":
            experiment.close()
        elif self.backend == "wandb":
            experiment.finish()
        else:
            import mlflow

            mlflow.end_run()


def _read_step(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


# -- CSV -------------------------------------------------------------------------------------------
def _csv_row(line: str) -> tuple[int, float] | None:
    head, _, value = line.partition(",")
    try:
        return int(head), float(value)
    except ValueError:
        return None


def cut_csv_logs(log_dir: str | os.PathLike, step: int) -> None:
    """Keep the whole ``step,value`` rows logged at or before ``step`` (the CSV backend appends: a
    killed run leaves the rows after its checkpoint, and maybe a row cut short)."""
    for path in Path(log_dir).glob("*/scalars/*.csv"):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        kept = [line for line in lines if (row := _csv_row(line)) is not None and row[0] <= step]
        if kept != lines:
            atomic_write_text(path, "".join(line + "\n" for line in kept))


# -- TensorBoard event files ------------------------------------------------------------------------
_HEADER = struct.Struct("<Q")  # a TFRecord: uint64 length, uint32 CRC of it, data, uint32 CRC of the data


def _records(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """``(whole record, payload)`` of each complete record; a record cut short ends the file."""
    offset = 0
    while offset + 12 <= len(data):
        (length,) = _HEADER.unpack_from(data, offset)
        end = offset + 12 + length + 4
        if end > len(data):
            return
        yield data[offset:end], data[offset + 12 : end - 4]
        offset = end


def _event_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("events.out.tfevents.*"))


def cut_event_files(folder: str | os.PathLike, step: int) -> None:
    """Drop the events logged after ``step`` (and a record cut short) from the TensorBoard event
    files in ``folder``; the records kept are copied byte for byte (checksums included)."""
    from tensorboard.compat.proto.event_pb2 import Event

    for path in _event_files(Path(folder)):
        data = path.read_bytes()
        kept = []
        for record, payload in _records(data):
            event = Event.FromString(payload)
            if not event.HasField("summary") or event.step <= step:
                kept.append(record)
        new = b"".join(kept)
        if new != data:
            atomic_write_bytes(path, new)


def _scalar_steps(folder: Path) -> Iterator[tuple[str, int]]:
    from tensorboard.compat.proto.event_pb2 import Event

    for path in _event_files(folder):
        for _, payload in _records(path.read_bytes()):
            event = Event.FromString(payload)
            for value in event.summary.value:
                yield value.tag, event.step


# -- the finished check ----------------------------------------------------------------------------
def damaged_logs(log_dir: str | os.PathLike) -> str:
    """What is wrong with the logs under ``log_dir`` (a line cut short, a step logged twice or out of
    order), or ``""``: the check a folder must pass to count as finished."""
    log_dir = Path(log_dir)
    for path in sorted(log_dir.glob("*/scalars/*.csv")):
        last = None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            row = _csv_row(line)
            if row is None:
                return f"{path} holds a line that is not a step,value row"
            if last is not None and row[0] <= last:
                return f"{path} logs step {row[0]} after step {last}"
            last = row[0]
    if any(_event_files(log_dir / EXPERIMENT)):
        try:
            seen: set[tuple[str, int]] = set()
            for tag, step in _scalar_steps(log_dir / EXPERIMENT):
                if (tag, step) in seen:
                    return f"{log_dir / EXPERIMENT} logs {tag} twice at step {step}"
                seen.add((tag, step))
        except ImportError:  # TensorBoard's reader is not installed: the event files cannot be read
            return ""
        except Exception as err:  # a damaged event record
            return f"{log_dir / EXPERIMENT} holds a damaged event record ({type(err).__name__})"
    return ""
