"""SAC on HalfCheetah-v5 end to end: the recipe's command against Stable-Baselines3's ``learn``, wall time.

Each contender is a fresh Python process timed from its start to its exit (imports, building,
training and writing included), on one thread, at the same settings: 15,000 environment steps, the
first 5,000 uniformly random, then one update per step (10,000 updates), batch 256, 256×256 MLPs,
twin critics, learned temperature, Polyak τ = 0.005, Adam 3e-4, γ = 0.99.

- ``recipe``: ``python -m maxent_components.recipes.sac env=halfcheetah total_frames=15000
  init_random_frames=5000 ...`` with one evaluation episode at the end (its run folder, logs and
  checkpoints written as usual; plots and the progress bar off).
- ``sb3``: ``stable_baselines3.SAC("MlpPolicy", ...).learn(15000)`` with ``learning_starts=5000``,
  ``train_freq=1``, ``gradient_steps=1`` (no evaluation).

The contenders run at the same time, one per core (``--together``, the default), so that both see
the same machine, or one after the other (``--one-after-the-other``). Reported: seconds per
contender and the ratio ``sb3 / recipe`` (above 1: the recipe is faster), as a JSON line prefixed
``RESULT``.

Usage::

    python benchmarks/end_to_end.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

FRAMES, RANDOM = 15_000, 5_000

SB3 = f"""
import torch, gymnasium as gym
from stable_baselines3 import SAC
torch.set_num_threads(1)
model = SAC("MlpPolicy", gym.make("HalfCheetah-v5"), learning_rate=3e-4, buffer_size={FRAMES},
            learning_starts={RANDOM}, batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1,
            ent_coef="auto", policy_kwargs={{"net_arch": [256, 256]}}, seed=0, device="cpu", verbose=0)
model.learn(total_timesteps={FRAMES})
"""


def commands(folder: str) -> dict[str, list[str]]:
    recipe = [sys.executable, "-m", "maxent_components.recipes.sac", "env=halfcheetah", f"total_frames={FRAMES}",
              f"init_random_frames={RANDOM}", f"eval_interval={FRAMES}", "eval_episodes=1", "eval_random_episodes=0",
              "threads=1", "progress=false", "plots=false", "seed=0", f"hydra.run.dir={folder}/recipe"]
    return {"recipe": recipe, "sb3": [sys.executable, "-c", SB3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one-after-the-other", action="store_true",
                        help="run the contenders in turn instead of at the same time")
    options = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        pending = {}
        for name, command in commands(folder).items():
            err = open(f"{folder}/{name}.err", "w+")  # noqa: SIM115 (closed when its process is done)
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
            pending[name] = (time.perf_counter(), process, err)
            if options.one_after_the_other:
                _wait(pending, seconds)
        _wait(pending, seconds)
    result = {"benchmark": "end_to_end", "together": not options.one_after_the_other, "seconds": seconds,
              "sb3_over_recipe": seconds["sb3"] / seconds["recipe"]}
    print(f"recipe {seconds['recipe']:.1f} s, SB3 {seconds['sb3']:.1f} s, SB3 / recipe {result['sb3_over_recipe']:.2f}")
    print("RESULT " + json.dumps(result))


def _wait(pending: dict, seconds: dict[str, float]) -> None:
    """Wait for every pending contender, recording each one's wall time when it exits (or failing)."""
    while pending:
        time.sleep(0.05)
        for name in [name for name, (_, process, _) in pending.items() if process.poll() is not None]:
            _done(name, *pending.pop(name), seconds)


def _done(name: str, start: float, process: subprocess.Popen, err, seconds: dict[str, float]) -> None:
    seconds[name] = time.perf_counter() - start
    err.seek(0)
    message = err.read()
    err.close()
    if process.returncode != 0:
        raise SystemExit(f"{name} failed ({process.returncode}):\n{message[-2000:]}")


if __name__ == "__main__":
    main()
