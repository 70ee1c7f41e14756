"""The training loops printed in README.md and CONTRIBUTING.md run as written (at a smaller budget),
and the classes the documentation names import from where it says.

The documentation site's own pages (docs/**/*.md) are run by tests/test_docs_pages.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def example(document: str, name: str) -> str:
    """The Python block that follows ``<!-- example: NAME ... -->`` in ``document``."""
    text = (ROOT / document).read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(name)}\b[^>]*-->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"{document} has no example {name!r}"
    return match.group(1)


def run(code: str, *, frames: str, budget: str) -> str:
    assert code.count(frames) == 1, f"the example must set {frames!r} once"
    code = code.replace(frames, budget)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_readme_sac_example_is_20_lines_and_runs():
    code = example("README.md", "sac-pendulum")
    assert len([line for line in code.splitlines() if line.strip()]) <= 20
    out = run(code, frames="total_frames=10_000", budget="total_frames=2_000")
    assert re.search(r"step 2000: evaluation return -?\d+, alpha \d\.\d{3}", out), out


def test_contributing_sql_example_runs():
    code = example("CONTRIBUTING.md", "sql-multigoal")
    assert len(code.strip().splitlines()) <= 40
    out = run(code, frames="FRAMES = 6_000", budget="FRAMES = 1_000")
    assert re.search(r"1000 steps: [0-4] of 4 goals reached", out), out


@pytest.mark.parametrize("document", ["README.md", "CONTRIBUTING.md"])
def test_every_example_marker_names_a_python_block(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    for name in re.findall(r"<!-- example: ([\w-]+)", text):
        example(document, name)


def test_every_class_in_the_components_table_is_importable_where_users_look():
    """The parts a user composes (samplers, estimators, losses, temperatures) come from the package
    itself, as in the README's examples; the rest from the subpackage its docs name. The table is
    the site's Components page (docs/guide/components.md)."""
    import importlib

    import maxent_components

    text = (ROOT / "docs" / "guide" / "components.md").read_text(encoding="utf-8")
    table = text[text.index("| component |"):text.index("\n## Recipes")]
    names = set()
    for row in re.findall(r"^\| ([^|]+) \|", table, re.MULTILINE):
        names.update(re.findall(r"`([A-Z]\w+)`", row))
    assert {"SoftQLoss", "ClippedGaussianSampler", "MixtureSampler", "QFunction", "SteinSampler"} <= names
    parts = ("Sampler", "SoftValue", "Loss", "Temperature")
    subpackages = [importlib.import_module(f"maxent_components.{name}") for name in ("modules", "objectives", "envs")]
    missing = sorted(
        name for name in names
        if not hasattr(maxent_components, name)
        and (name.endswith(parts) or not any(hasattr(module, name) for module in subpackages))
    )
    assert not missing, f"the components table names {missing}, not importable where its kind is"
