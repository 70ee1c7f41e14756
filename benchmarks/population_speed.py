"""Populations against separate runs: environment steps per second summed over the members.

A population of ``N`` members (``population=N``) against the same ``N`` seeds run one after another
as separate runs, each of the recipe's own loop at the same settings and budget per member. Both are
timed from the first collected step to the last (building the parts and the final evaluation are left
out: the loop's ``time_eval_s`` is subtracted), in one process, one thread unless ``--threads`` says
otherwise, interleaved round by round. Reported: summed env steps per second of each and the ratio
population / separate (higher is better), per ``N``, as a Markdown table and one JSON line prefixed
``RESULT``.

Tasks (``--task``): ``soft_dqn`` (CartPole-v1, 2×128), ``sac_pendulum`` (Pendulum-v1, 2×256),
``sql_multigoal`` (MultiGoal, 2×128 and 32 SVGD particles), ``sac_halfcheetah`` (HalfCheetah-v5,
2×256, batch 256).

Usage::

    python benchmarks/population_speed.py --task soft_dqn --members 1 2 4 8 16 --frames 2000
    python benchmarks/population_speed.py --task sac_halfcheetah --members 1 4 8 --frames 600
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

TASKS = {  # recipe, overrides (the recipe's defaults otherwise)
    "soft_dqn": ("soft_dqn", ["env=cartpole"]),
    "sac_pendulum": ("sac", ["env=pendulum"]),
    "sql_multigoal": ("sql", ["env=multigoal"]),
    "sac_halfcheetah": ("sac", ["env=halfcheetah"]),
}


def _config(recipe, overrides, frames, learning_starts, population=1, seed=0):
    from hydra import compose, initialize_config_module

    options = [*overrides, f"total_frames={frames}", f"init_random_frames={learning_starts}", f"seed={seed}",
               f"eval_interval={frames}", "eval_episodes=1", f"checkpoint_interval={frames}", f"log_interval={frames}",
               "stop_when_solved=false", "plots=false", "progress=false", f"population={population}"]
    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        return compose(recipe.NAME, overrides=options)


def _steps_per_second(recipe, cfg) -> float:
    """Summed env steps per second of one run (or population) of ``cfg``, evaluation left out."""
    from omegaconf import OmegaConf

    from maxent_components.runs import RunDirectory, config_identity

    with tempfile.TemporaryDirectory() as folder:
        run = RunDirectory(Path(folder) / "run")
        config = OmegaConf.to_container(cfg, resolve=True)
        run.start(config, config_identity(config)[1])
        summary = recipe.recipe.train(cfg, run)
        if cfg.population > 1:
            members = [json.loads((Path(p) / "summary.json").read_text()) for p in summary["population"]["members"]]
            seconds = members[0]["wall_time_s"] - members[0]["time_eval_s"]
            return sum(m["env_steps"] for m in members) / seconds
        return summary["env_steps"] / (summary["wall_time_s"] - summary["time_eval_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(TASKS), default="soft_dqn", help="the recipe and task (default soft_dqn)")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="population sizes N")
    parser.add_argument("--frames", type=int, default=2000, help="env steps per member (default 2000)")
    parser.add_argument("--learning-starts", type=int, default=500, help="random steps per member first (default 500)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians reported (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    if min(args.members) < 1 or args.frames <= args.learning_starts or args.rounds < 1:
        parser.error("need --members >= 1, --frames > --learning-starts and --rounds >= 1")
    torch.set_num_threads(args.threads)
    import importlib

    name, overrides = TASKS[args.task]
    recipe = importlib.import_module(f"maxent_components.recipes.{name}")
    rows = {}
    for n in args.members:
        population, separate = [], []
        for _ in range(args.rounds):
            population.append(_steps_per_second(recipe, _config(recipe, overrides, args.frames, args.learning_starts,
                                                                population=n)) if n > 1 else None)
            total_steps, total_seconds = 0, 0.0
            for seed in range(n):
                rate = _steps_per_second(recipe, _config(recipe, overrides, args.frames, args.learning_starts, seed=seed))
                total_steps += args.frames
                total_seconds += args.frames / rate
            separate.append(total_steps / total_seconds)
        sep = statistics.median(separate)
        pop = statistics.median(population) if n > 1 else sep
        rows[n] = {"population": pop, "separate": sep, "ratio": pop / sep}
    print(f"{args.task}: {args.frames} env steps per member ({args.learning_starts} random), {args.threads} thread(s), "
          f"median of {args.rounds}; summed env steps per second")
    print("| N | population | separate runs | population / separate |")
    print("|---|---|---|---|")
    for n, row in rows.items():
        print(f"| {n} | {row['population']:.1f} | {row['separate']:.1f} | {row['ratio']:.2f} |")
    print("RESULT " + json.dumps({"task": args.task, "frames": args.frames, "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
