"""Files that are never half-written: a temporary file in the same folder, ``fsync``, then ``os.replace``.

Readers see either the previous complete file or the new one. On any exception (also
``KeyboardInterrupt``) the temporary file is removed and the target is left untouched.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "json_safe",
]


@contextmanager
def _atomic_file(path: str | os.PathLike, *, keep_previous: str | os.PathLike | None = None) -> Iterator[io.BufferedWriter]:
    """A binary file that replaces ``path`` only once the ``with`` block has completed.

    The temporary file lives in the target's folder because ``os.replace`` is atomic only within
    one file system.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600, widened to what the umask allows, as open() would
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)  # the old file stays whole, under its new name
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder, hence best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, keep_previous: str | os.PathLike | None = None) -> None:
    """Write ``data`` to ``path`` atomically; with ``keep_previous``, the file it replaces is moved there
    (only once the new one is complete on disk)."""
    with _atomic_file(path, keep_previous=keep_previous) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Serialise ``obj`` as JSON and write it atomically (non-finite floats become ``null``)."""
    # Serialise first: an unserialisable object must fail before any file is touched.
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_text(path, text)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomically."""
    import torch

    with _atomic_file(path) as handle:
        torch.save(obj, handle)


def json_safe(obj: Any) -> Any:
    """``obj`` with tensors, numpy scalars and paths as plain JSON values; NaN and ±Inf as ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    torch, np = sys.modules.get("torch"), sys.modules.get("numpy")  # no tensor exists before torch is imported
    if torch is not None and isinstance(obj, torch.Tensor):
        return json_safe(obj.tolist())
    if np is not None and isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
