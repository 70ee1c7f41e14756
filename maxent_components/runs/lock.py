"""One live process per run folder: an OS-level lock that dies with its holder.

A run folder holds one run. Two processes writing into it (the same command launched twice, or a
relaunch while the first still runs) would both train, double every logged row and mark the folder
finished twice. :class:`RunLock` takes an exclusive ``flock`` on ``<folder>/.lock`` before the run
writes anything. The kernel releases the lock when its holder exits, however it exits (``SIGKILL``
included), so a killed run never leaves a stale lock behind; the file itself only records the
holder's PID for the message another process prints.

Examples:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with RunLock(folder):
    ...     try:
    ...         RunLock(folder).acquire()
    ...     except RunLockedError as err:
    ...         print("held by this process:", err.pid == os.getpid())
    held by this process: True
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError"]

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run folder."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"{folder} is in use by {holder}, which is running this run; wait for it to end "
            f"(or stop it), then relaunch to resume or skip it."
        )
        self.folder, self.pid = folder, pid


class RunLock:
    """An exclusive lock on a run folder, held from :meth:`acquire` to :meth:`release` (or process exit).

    :meth:`acquire` never writes while another process holds the folder: it opens the existing lock
    file read-only, fails to lock it, reads the holder's PID and raises :class:`RunLockedError`.
    Only the holder writes its PID into the file. Re-acquiring a lock this object holds is a no-op.

    Args:
        folder: the run folder (created by :meth:`acquire` when missing).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> int | None:
        """The PID recorded by the current (or last) holder, or ``None``."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` (another process holds it) or ``OSError``
        (the folder cannot be made or written)."""
        if self._fd is not None:
            return self
        try:  # an existing lock file is opened without O_CREAT: a refused process writes nothing
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockedError(self.folder, self.holder()) from None
            raise
        try:
            with open(self.path, "w", encoding="ascii") as handle:  # the lock is ours: record who holds it
                handle.write(f"{os.getpid()}\n")
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (the file stays; its PID is stale once no one holds the lock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(folder={str(self.folder)!r}, held={self.held})"
