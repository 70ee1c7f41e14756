"""Running recipe scripts as a user would, for the recipe and learning tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_recipe(name: str, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``recipes/<name>.py`` with Hydra overrides in a fresh interpreter; output captured."""
    return subprocess.run(
        [sys.executable, str(RECIPES / f"{name}.py"), *overrides],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
