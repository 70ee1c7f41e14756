"""Every ```python block of the documentation site's pages (docs/**/*.md) runs as written.

A page's blocks run in order in one fresh interpreter, sharing one namespace as a reader going down
the page would (a later block uses what an earlier one built), on one thread, in a scratch folder.
Blocks meant as illustration only use another fence (```text, ```bash). The site itself is built in
strict mode by ``make docs``, which ``make test`` runs first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)

RUNNER = """
import json, sys
import torch
torch.set_num_threads(1)
page, blocks = json.loads(sys.argv[1])
namespace = {"__name__": "__main__"}
for line, code in blocks:
    exec(compile(code, f"{page}, the block at line {line}", "exec"), namespace)
"""


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of every ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in BLOCK.finditer(text)]


PAGES = sorted(
    path.relative_to(ROOT).as_posix()
    for path in DOCS.rglob("*.md")
    if "_mkdocs" not in path.parts and python_blocks(path)
)


def test_the_pages_hold_examples():
    assert {"docs/guide/concepts.md", "docs/guide/compose.md", "docs/guide/runs.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_of_the_page_run(page, tmp_path):
    blocks = python_blocks(ROOT / page)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps([page, blocks])],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

