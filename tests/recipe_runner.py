"""Running recipes as a user would, for the recipe and learning tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_recipe(name: str, *overrides: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m maxent_components.recipes.<name> <overrides>`` in a fresh interpreter; output captured."""
    return subprocess.run(
        [sys.executable, "-m", f"maxent_components.recipes.{name}", *overrides],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def summary_of(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def scalars(run_dir: Path, name: str) -> list[tuple[int, float]]:
    """The ``(step, value)`` rows of a metric logged by the CSV logger backend."""
    path = Path(run_dir) / "logs" / "metrics" / "scalars" / f"{name}.csv"
    return [(int(step), float(value)) for step, value in (line.split(",") for line in path.read_text().splitlines())]
