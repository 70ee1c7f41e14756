"""Speed work changes no number a run produces: each recipe, at a fixed seed on one thread, logs the
metrics recorded in ``tests/golden/<recipe>.json``.

The records were written before the hot paths were made lean (MLP plans for the Q networks, and
what follows in ``benchmarks/RESULTS.md``), by this file run as a script::

    python tests/test_same_numbers.py            # rewrites tests/golden/*.json

Rewrite them only for a change that is *meant* to change the numbers (a new default, a fixed bug),
and say so in the commit. The comparison allows a relative difference of 1e-6: a different order of
floating-point operations shows as a tiny drift, a changed computation or random stream as a
large one.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_runner import run_recipe, summary_of  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
RUNS = {
    "sac": [],
    "sql": [],
    "soft_dqn": [],
    "discrete_sac": [],
    "pcl": [],
    "sql_importance_mala": ["sampler=svgd_mala", "soft_value=importance"],
}
COMMON = ["smoke=true", "plots=false", "progress=false", "threads=1", "total_frames=400", "log_interval=50",
          "eval_interval=200", "seed=3"]


def _numbers(name: str, folder: Path) -> dict:
    recipe = name.split("_importance")[0]
    out = run_recipe(recipe, *COMMON, *RUNS[name], f"hydra.run.dir={folder}", env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    summary = summary_of(folder)
    scalars = {}
    for path in sorted((folder / "logs/metrics/scalars").glob("*.csv")):
        if path.stem in ("fps", "updates_per_s"):  # timings, not results
            continue
        scalars[path.stem] = [[int(step), float(value)] for step, value in
                              (line.split(",") for line in path.read_text().splitlines())]
    keep = ("env_steps", "updates", "train_episodes", "eval_return_mean", "best_eval_return", "history")
    return {"summary": {key: summary[key] for key in keep}, "scalars": scalars}


def _close(a, b, path: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))} differ"
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: {len(a)} entries, recorded {len(b)}"
        for index, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{index}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), f"{path}: {a} against the recorded {b}"
    else:
        assert a == b, f"{path}: {a!r} against the recorded {b!r}"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_recipe_logs_the_numbers_recorded_before_the_speed_work(name, tmp_path):
    recorded = json.loads((GOLDEN / f"{name}.json").read_text())
    _close(_numbers(name, tmp_path / "run"), recorded, name)


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    for name in RUNS:
        with tempfile.TemporaryDirectory() as folder:
            numbers = _numbers(name, Path(folder) / "run")
        (GOLDEN / f"{name}.json").write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN / f'{name}.json'}")
