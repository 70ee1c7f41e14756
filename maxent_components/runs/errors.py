"""The errors a run ends with when it cannot be trusted to go on."""

from __future__ import annotations

__all__ = ["CheckpointError", "RunFailure", "RunInterrupted", "RunWriteError"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, empty, truncated, damaged or not one of ours."""


class RunFailure(RuntimeError):
    """A run stopped on a fault it cannot recover from (non-finite data, an unwritable file).

    Carries the run's summary so far, which the command line writes marked ``failed`` (never
    ``finished``) before it exits with one line naming the cause.
    """

    def __init__(self, message: str, summary: dict | None = None) -> None:
        super().__init__(message)
        self.summary = summary or {}


class RunWriteError(RunFailure, OSError):
    """A run could not write one of its files (disk full, read-only folder)."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal (``SIGTERM``; ``SIGINT`` is Python's own ``KeyboardInterrupt``)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
