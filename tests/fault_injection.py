"""Run a recipe with system calls that fail on purpose: ``python tests/fault_injection.py [FAULT...] -- RECIPE [OVERRIDE...]``.

A fault is ``write:<suffix>:<n>`` (the ``n``-th write to a file opened with ``open()`` whose name
ends with ``<suffix>`` fails, and every later one) or ``replace:<name>:<n>`` (the ``n``-th
``os.replace`` onto a file named ``<name>`` fails, the later ones succeed); each fails with
``OSError(ENOSPC)``, as on a full disk.
"""

from __future__ import annotations

import builtins
import errno
import os
import runpy
import sys


def _install(faults: list[str]) -> None:
    counts: dict[str, int] = {}
    real_open, real_replace = builtins.open, os.replace

    def failing(kind: str, target: str, after: int) -> bool:
        key = f"{kind}:{target}"
        counts[key] = counts.get(key, 0) + 1
        return counts[key] >= after if kind == "write" else counts[key] == after

    for fault in faults:
        kind, target, after = fault.split(":")
        if kind == "write":

            def patched_open(file, mode="r", *args, _target=target, _after=int(after), **kwargs):
                handle = real_open(file, mode, *args, **kwargs)
                if isinstance(file, (str, os.PathLike)) and str(file).endswith(_target) and any(m in mode for m in "wa+"):
                    write = handle.write

                    def failing_write(data, _write=write):
                        if failing("write", _target, _after):
                            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
                        return _write(data)

                    handle.write = failing_write
                return handle

            builtins.open = patched_open
        elif kind == "replace":

            def patched_replace(src, dst, *args, _target=target, _after=int(after), **kwargs):
                if os.path.basename(os.fspath(dst)) == _target and failing("replace", _target, _after):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(dst))
                return real_replace(src, dst, *args, **kwargs)

            os.replace = patched_replace
        else:
            raise SystemExit(f"unknown fault {fault!r}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's package
    split = sys.argv.index("--")
    _install(sys.argv[1:split])
    recipe, *overrides = sys.argv[split + 1 :]
    sys.argv = [recipe, *overrides]
    runpy.run_module(f"maxent_components.recipes.{recipe}", run_name="__main__", alter_sys=True)
