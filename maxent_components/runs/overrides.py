"""Hydra overrides: their keys, the jobs of a sweep, and the run folders they name."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from omegaconf import OmegaConf

__all__ = ["dotted_keys", "expand", "hydra_settings", "key_of", "one_line", "run_name"]


def run_name(overrides: str) -> str:
    """The folder name of a run from its overrides (``hydra.job.override_dirname``): ``default`` for
    none, and a path in a value (``init_from=runs/x``) kept in one folder level (``runs_x``)."""
    return overrides.replace("/", "_") if overrides else "default"


def hydra_settings(name: str, run_only: Sequence[str]) -> dict:
    """Run folders named by the overrides (run-only options left out): ``runs/<name>/<overrides>``.

    The same command therefore lands in the same folder, where a finished run is skipped and an
    interrupted one resumes; a sweep's cells are named by their own overrides. ``run_only``: the
    options left out of the folder name (the demo preset is run-only but names its folder,
    ``runs/sql/demo=true``, so that it does not occupy the folder of the recipe's default run).
    """
    OmegaConf.register_new_resolver("maxent_run_name", run_name, replace=True)
    folder = "${maxent_run_name:${hydra.job.override_dirname}}"
    return {
        # Hydra writes nothing of its own: the job writes .hydra/ and its log once the run goes ahead.
        "output_subdir": None,
        "job": {"name": name, "config": {"override_dirname": {"exclude_keys": list(run_only)}}},
        "run": {"dir": f"runs/{name}/{folder}"},
        "sweep": {"dir": f"runs/{name}", "subdir": folder},
    }


def key_of(override: str) -> str:
    """The dotted key of an override (``+a.b=1`` → ``a.b``; a group choice ``sampler=svgd`` → ``sampler``)."""
    return override.split("=", 1)[0].lstrip("+~").replace("/", ".")


def expand(overrides: Sequence[str]) -> Iterable[list[str]]:
    """Every job of a ``-m`` sweep: the product of the comma lists, ``choice(...)`` and ``range(...)``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    options = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override():
            try:
                values = list(override.sweep_string_iterator())
            except Exception:  # glob sweeps need the config repository: left to Hydra
                values = []
            key = override.get_key_element()
            options.append([f"{key}={v}" for v in values] or [None])
        else:
            options.append([override.input_line])
    for job in itertools.product(*options):
        yield [o for o in job if o is not None]


def dotted_keys(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    keys = []
    for key, value in node.items():
        keys.append(prefix + str(key))
        keys += dotted_keys(value, f"{prefix}{key}.")
    return keys


def one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "invalid configuration"
