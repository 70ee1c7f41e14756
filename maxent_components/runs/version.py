"""The code a run ran: the package version and a digest of its sources.

Kept in a module of its own, importing nothing of the package, so that the run folder
(:mod:`~maxent_components.runs.directory`) and the checkpoint files
(:mod:`~maxent_components.runs.checkpoint`) both read it without importing each other or the
package's top level.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from maxent_components._version import __version__

__all__ = ["PACKAGE_ROOT", "code_version", "source_digest"]

#: the folder of the package's sources
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def source_digest(root: str | os.PathLike) -> str:
    """Hex SHA-256 of the code below ``root``: every ``.py`` and ``.yaml`` file's path and bytes, in
    path order (compiled caches left out). Equal digests mean the same code and configs, whatever
    git says; a change to any of them, committed or not, changes it."""
    root = Path(root)
    digest = hashlib.sha256()
    files = sorted(p for suffix in ("*.py", "*.yaml") for p in root.rglob(suffix) if "__pycache__" not in p.parts)
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def code_version() -> str:
    """``<package version>+<first 12 hex digits of the package's source_digest>``: the code a run
    ran. The study tool does not mix runs of different code versions, and a version number alone
    stays the same across changes to the code."""
    return f"{__version__}+{source_digest(PACKAGE_ROOT)[:12]}"
