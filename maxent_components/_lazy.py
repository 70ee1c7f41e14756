"""Package namespaces whose public names are imported on first use (PEP 562).

``from maxent_components import SoftQLoss`` imports the objectives when it runs, not when the package
is imported: a recipe's ``--help`` then loads no PyTorch. Each package lists where its names come
from and gets its module ``__getattr__`` and ``__dir__`` from :func:`lazy_names`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the module it is
    imported from (the name itself is a submodule when that module is ``package.name``); a name is
    imported once, then kept in ``namespace`` (the package's ``globals()``)."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook of PEP 562
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        value = module if exports[name] == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
