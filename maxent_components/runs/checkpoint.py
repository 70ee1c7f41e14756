"""Checkpoint files that say when they cannot be trusted.

A checkpoint is one file: a magic line, a JSON header (format version, library version, payload size,
plain fields such as the config hash, and a SHA-256 of the other header fields and the payload) and
the payload (``torch.save`` bytes). :func:`read_checkpoint` checks all of them before unpickling
anything, so a truncated, empty, bit-flipped or foreign file is one
:class:`CheckpointError` naming the file and what is wrong, never a silently loaded state or a raw
unpickling error.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

from maxent_components.runs.errors import CheckpointError, RunWriteError
from maxent_components.runs.files import atomic_write_bytes
from maxent_components.runs.version import code_version

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "RunWriteError",
    "read_checkpoint",
    "verify_checkpoint",
    "write_checkpoint",
]

MAGIC = b"MAXENT-COMPONENTS-CHECKPOINT\n"
CHECKPOINT_FORMAT = 1


def write_checkpoint(
    path: str | os.PathLike, payload: Any, *, keep_previous: str | os.PathLike | None = None, **fields: Any
) -> dict[str, Any]:
    """Write ``payload`` to ``path`` atomically with its checksum (and ``fields``, plain JSON values
    readable without unpickling, such as the config hash); return the header. With ``keep_previous``,
    the checkpoint it replaces is moved there once the new one is on disk."""
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    header = {**fields, "format": CHECKPOINT_FORMAT, "library": code_version(), "size": len(data)}
    header["sha256"] = _digest(header, data)
    atomic_write_bytes(path, MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + data, keep_previous=keep_previous)
    return header


def _digest(header: dict[str, Any], data: bytes) -> str:
    """SHA-256 of the header (without its digest) and the payload: a changed field fails it too."""
    fields = {key: value for key, value in header.items() if key != "sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode() + b"\n" + data).hexdigest()


def _checked(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist.") from None
    except OSError as err:
        raise CheckpointError(f"{path} cannot be read: {err}.") from None
    if not raw:
        raise CheckpointError(f"{path} is empty.")
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a maxent_components checkpoint (a foreign or damaged file).")
    head, newline, data = raw[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(head)
        size, digest, version = int(header["size"]), header["sha256"], int(header["format"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{path} has a damaged header.") from None
    if not newline or len(data) < size:
        raise CheckpointError(f"{path} is truncated: {len(data)} of {size} payload bytes.")
    if len(data) > size:
        raise CheckpointError(f"{path} is damaged: {len(data) - size} bytes more than its header says.")
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {version}; this library reads up to {CHECKPOINT_FORMAT}.")
    if _digest(header, data) != digest:
        raise CheckpointError(f"{path} is damaged: its contents do not match its SHA-256 checksum.")
    return header, data


def verify_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The header of the checkpoint at ``path`` once its size and checksum are verified."""
    return _checked(Path(path))[0]


def read_checkpoint(path: str | os.PathLike, *, weights_only: bool = False) -> Any:
    """The verified payload of the checkpoint at ``path``.

    A training checkpoint holds pickled environments and RNG states, so by default it is unpickled
    with ``weights_only=False`` — only after its checksum is verified, and only for runs you made;
    ``weights_only=True`` reads payloads of tensors and plain containers (the tables of
    ``soft_q_iteration``) without unpickling arbitrary objects.
    """
    import torch

    _, data = _checked(Path(path))
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=weights_only)
    except Exception as err:  # a payload that verifies but does not unpickle (another library version)
        raise CheckpointError(f"{path} verifies but cannot be loaded: {err}.") from None
