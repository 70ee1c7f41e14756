"""Every off-policy recipe end to end on one device: the check to run first on a GPU machine.

The unit tests run on the CPU. This script runs what they cannot: each recipe's ``smoke`` preset
with ``device=--device`` (collection, replay, updates, target updates, evaluation, checkpoint,
figures), soft Q-learning with each of its samplers, and one run killed mid-way and relaunched
(its checkpoint restored onto the device). Each run is a fresh ``python -m
maxent_components.recipes.<name>`` process, as a user starts it. Reported: one row per run with its
status, wall time and, for a failure, the last line of its error output; one JSON line prefixed
``RESULT``. The exit status is 1 when any run failed.

Exactness of the resumed run is reported, not required: a resumed CPU run repeats the uninterrupted
one exactly (the lifecycle tests check it); checkpoints carry the CUDA generators' states too, but
some CUDA kernels (atomic adds in backward passes) are not deterministic.

Usage::

    python benchmarks/device_smoke.py --device cuda
    python benchmarks/device_smoke.py --device cpu --skip-resume
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ``smoke=true`` runs with these options (a few hundred steps each)
RUNS = [
    ("soft_dqn", []),
    ("discrete_sac", []),
    ("sac", []),
    ("pcl", []),
    ("pcl", ["env=pendulum", "sampler=clipped_gaussian"]),
    *[("sql", [f"sampler={sampler}"]) for sampler in ("svgd", "langevin", "svgd_mala", "gaussian")],
    ("sql", ["sampler=gaussian", "soft_value=importance"]),
    ("soft_dqn", ["num_envs=5"]),
    ("sac", ["num_envs=5"]),
]
#: the killed-and-resumed run: checkpoints every 100 steps, killed past step 400 of 1500
RESUMED = ["smoke=true", "plots=false", "total_frames=1500", "frames_per_batch=10", "checkpoint_interval=100"]


def _command(recipe: str, overrides: list[str], run_dir: Path, device: str) -> list[str]:
    return [sys.executable, "-m", f"maxent_components.recipes.{recipe}", *overrides, f"device={device}",
            f"hydra.run.dir={run_dir}"]


def _run(recipe: str, overrides: list[str], run_dir: Path, device: str, timeout: float) -> dict:
    start = time.monotonic()
    try:
        out = subprocess.run(_command(recipe, overrides, run_dir, device), cwd=ROOT, capture_output=True, text=True,
                             timeout=timeout, check=False)
        code, error = out.returncode, (out.stderr.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        code, error = None, f"timed out after {timeout:.0f} s"
    summary = _summary(run_dir)
    ok = code == 0 and summary.get("finished") is True
    return {"recipe": recipe, "overrides": overrides, "ok": ok, "seconds": round(time.monotonic() - start, 1),
            "error": "" if ok else error or f"exit status {code}, summary finished={summary.get('finished')}"}


def _summary(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _checkpoint_step(run_dir: Path) -> int:
    from maxent_components.runs import CheckpointError
    from maxent_components.runs.checkpoint import verify_checkpoint

    try:
        return verify_checkpoint(run_dir / "checkpoint.pt")["step"]
    except CheckpointError:  # not written yet, or being replaced at this very moment
        return 0


def _resume(folder: Path, device: str, timeout: float) -> dict:
    """An uninterrupted run, and the same run SIGKILLed past its step-400 checkpoint and relaunched."""
    full = _run("sql", RESUMED, folder / "full", device, timeout)
    killed = folder / "killed"
    process = subprocess.Popen(_command("sql", RESUMED, killed, device), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while _checkpoint_step(killed) < 400 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    step = _checkpoint_step(killed)
    resumed = _run("sql", RESUMED, killed, device, timeout)
    a, b = _summary(folder / "full"), _summary(killed)
    same = full["ok"] and resumed["ok"] and all(a.get(k) == b.get(k) for k in ("env_steps", "updates", "history"))
    ok = full["ok"] and resumed["ok"] and 0 < step < 1500 and b.get("env_steps") == 1500
    error = full["error"] or resumed["error"] or ("" if ok else f"killed at checkpoint step {step}")
    return {"recipe": "sql", "overrides": [*RESUMED, f"killed at step {step}, relaunched"], "ok": ok,
            "seconds": resumed["seconds"], "error": error, "same_as_uninterrupted": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="the recipes' device option (default cuda)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per run (default 300)")
    parser.add_argument("--skip-resume", action="store_true", help="leave out the killed-and-resumed run")
    options = parser.parse_args()
    from maxent_components.checks import check_device

    try:
        check_device("--device", options.device)
    except ValueError as err:
        parser.error(str(err))
    rows = []
    print("| recipe | options | status | seconds | error |\n|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        jobs = [lambda r=recipe, o=["smoke=true", *overrides], i=index: _run(r, o, Path(folder) / str(i), options.device, options.timeout)
                for index, (recipe, overrides) in enumerate(RUNS)]
        if not options.skip_resume:
            jobs.append(lambda: _resume(Path(folder) / "resume", options.device, options.timeout))
        for job in jobs:
            row = job()
            rows.append(row)
            status = "ok" if row["ok"] else "FAILED"
            if "same_as_uninterrupted" in row:
                status += ", same as uninterrupted" if row["same_as_uninterrupted"] else ", differs from uninterrupted"
            print(f"| {row['recipe']} | {' '.join(row['overrides']) or '–'} | {status} | {row['seconds']} | {row['error']} |",
                  flush=True)
    print("RESULT " + json.dumps({"device": options.device, "runs": rows}))
    sys.exit(0 if all(row["ok"] for row in rows) else 1)


if __name__ == "__main__":
    main()
