"""Where a training loop's time goes, phase by phase: a recipe's loop beside its plain PyTorch loop.

``loop_speed.py`` says how fast each loop is; this script says where each spends its time. It runs
the same two contenders as ``loop_speed.py`` (the recipe's own build and loop, and the hand-written
loop of ``plain_loops.py``, at the recipe's composed settings) with timers wrapped around the calls
that make up a step, and reports milliseconds per environment step in each phase:

- ``acting``: the policy's call for one step (the library's actor in the collector; ``act`` in the
  plain loop);
- ``environment``: Gymnasium's own ``step`` and ``reset`` (the raw simulator, the same in both);
- ``env wrapper + collector``: what TorchRL adds around them and the policy (``GymEnv``'s spec
  bookkeeping, the collector's TensorDicts; zero in the plain loop, which has neither);
- ``replay write`` and ``replay sample``: the buffer's ``extend`` and ``sample`` (TorchRL's
  ``ReplayBuffer``; the plain loop's NumPy ring);
- ``loss forward``: everything of an update before its backward (the loss's forward with its checks);
- ``backward``, ``optimiser`` (``Optimizer.step`` and ``zero_grad``), ``target update``
  (``torch._foreach_lerp_`` / ``_foreach_copy_`` of the target parameters);
- ``bookkeeping``: the rest of the loop (schedules, logging, running means, the non-finite guard,
  the data checks of collected batches, the checkpoint at the end).

A phase is timed *exclusively*: time spent in a phase entered inside another (the environment
inside the collector) counts for the inner one only. The evaluation is left out. Timers add about
a microsecond per wrapped call; compare phases, not totals, with ``loop_speed.py``'s rates.

Usage::

    python benchmarks/loop_phases.py --algo sac --frames 1500 --threads 1
    python benchmarks/loop_phases.py --algo soft_dqn --frames 3000 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import json
import time
import warnings

import gymnasium as gym
import torch

# benchmarks/ is on sys.path when this file is run as a script
from loop_speed import ALGOS, library_loop, recipe_config
from plain_loops import PLAIN, Ring

warnings.filterwarnings("ignore", category=DeprecationWarning)

PHASES = ("acting", "environment", "env wrapper + collector", "replay write", "replay sample", "loss forward",
          "backward", "optimiser", "target update", "bookkeeping")


class Timers:
    """Exclusive wall time per phase: a phase entered inside another is subtracted from the outer one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self._stack: list[list] = []  # [phase, start, time of the phases nested in it]

    def wrap(self, function, phase: str):
        def timed(*args, **kwargs):
            entry = [phase, time.perf_counter(), 0.0]
            self._stack.append(entry)
            try:
                return function(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.perf_counter() - entry[1]
                self.seconds[phase] += spent - entry[2]
                if self._stack:
                    self._stack[-1][2] += spent

        return timed

    def wrap_iterator(self, function, phase: str):
        """``function`` returning an iterator whose every ``next`` is timed as ``phase``."""
        def timed(*args, **kwargs):
            iterator = iter(function(*args, **kwargs))
            step = self.wrap(lambda: next(iterator, _DONE), phase)
            while (item := step()) is not _DONE:
                yield item

        return timed


_DONE = object()


@contextlib.contextmanager
def patched(timers: Timers, targets):
    """Wrap each ``(owner, attribute, phase)`` of ``targets`` for the duration of the block
    (``(owner, attribute, phase, "iterator")``: each ``next`` of the iterator it returns)."""
    saved = []
    try:
        for owner, name, phase, *iterator in targets:
            original = getattr(owner, name)
            saved.append((owner, name, original))
            setattr(owner, name, (timers.wrap_iterator if iterator else timers.wrap)(original, phase))
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def _common_targets():
    """What both loops call the same way: Gymnasium, backward, the optimiser, the target update."""
    from torch.optim import Optimizer

    return [
        (gym.Wrapper, "step", "environment"), (gym.Wrapper, "reset", "environment"),
        (torch.Tensor, "backward", "backward"),
        (Optimizer, "zero_grad", "optimiser"), (torch.optim.Adam, "step", "optimiser"),
        (torch, "_foreach_lerp_", "target update"), (torch, "_foreach_copy_", "target update"),
    ]


def library_phases(recipe, cfg) -> tuple[dict[str, float], float]:
    """Seconds per phase of the recipe's loop, and its env steps (evaluation left out)."""
    from torchrl.collectors import Collector
    from torchrl.data import ReplayBuffer

    from maxent_components.training import Evaluator, UpdateStep
    from maxent_components.training.loop import OffPolicyLoop

    timers = Timers()
    built = {}
    build = recipe.build

    def build_and_wrap(config):
        parts = build(config)
        loss = parts[2]
        loss.actor.forward = timers.wrap(loss.actor.forward, "acting")
        built["loss"] = loss
        return parts

    targets = [
        *_common_targets(),
        (Collector, "iterator", "env wrapper + collector", "iterator"),
        (ReplayBuffer, "extend", "replay write"), (ReplayBuffer, "sample", "replay sample"),
        (UpdateStep, "_forward_backward", "loss forward"),
        (Evaluator, "__call__", "evaluation"),
        (OffPolicyLoop, "run", "bookkeeping"),
    ]
    recipe.build = build_and_wrap
    try:
        with patched(timers, targets):
            library_loop(recipe, cfg)
    finally:
        recipe.build = build
    timers.seconds.pop("evaluation", None)
    return dict(timers.seconds), cfg.total_frames


def plain_phases(algo: str, cfg) -> tuple[dict[str, float], float]:
    """Seconds per phase of the plain loop (its ``act`` and ``update`` found by wrapping ``drive``)."""
    import plain_loops

    timers = Timers()
    drive = plain_loops.drive

    def timed_drive(config, env, ring, act, update, *args, **kwargs):
        return drive(config, env, ring, timers.wrap(act, "acting"), timers.wrap(update, "loss forward"), *args, **kwargs)

    targets = [*_common_targets(), (Ring, "add", "replay write"), (Ring, "sample", "replay sample")]
    if hasattr(plain_loops, "SliceRing"):
        targets += [(plain_loops.SliceRing, "add", "replay write"), (plain_loops.SliceRing, "slices", "replay sample")]
    plain_loops.drive = timers.wrap(timed_drive, "bookkeeping")
    try:
        with patched(timers, targets):
            PLAIN[algo](cfg)
    finally:
        plain_loops.drive = drive
    return dict(timers.seconds), cfg.total_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=sorted(ALGOS), default="sac", help="the recipe (default sac)")
    parser.add_argument("--frames", type=int, default=1500, help="environment steps per loop (default 1500)")
    parser.add_argument("--learning-starts", type=int, help="random steps before updates (default: as loop_speed.py)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the loops' seed (default 0)")
    options = parser.parse_args()
    title, envs, _, learning_starts = ALGOS[options.algo]
    options.env, options.override, options.compile, options.num_envs = envs[0], [], "none", 1
    recipe = importlib.import_module(f"maxent_components.recipes.{options.algo}")
    defaults = recipe_config(recipe, options)
    if options.learning_starts is None:
        starts = min(defaults.init_random_frames, options.frames // 2)
        options.learning_starts = learning_starts or starts - starts % defaults.frames_per_batch
    if options.frames <= options.learning_starts or options.threads < 1:
        parser.error("need --frames > --learning-starts and --threads >= 1")
    torch.set_num_threads(options.threads)
    cfg = recipe_config(recipe, options, seed=options.seed)
    rows = {"library": library_phases(recipe, cfg), "plain": plain_phases(options.algo, cfg)}
    print(f"{title} loop on {cfg.env.name}: {options.frames} env steps ({options.learning_starts} random), "
          f"{options.threads} thread(s); milliseconds per env step")
    print("| phase | library | plain | library − plain |")
    print("|---|---|---|---|")
    per_step = {name: {phase: 1e3 * seconds.get(phase, 0.0) / frames for phase in PHASES}
                for name, (seconds, frames) in rows.items()}
    for phase in PHASES:
        lib, plain = per_step["library"][phase], per_step["plain"][phase]
        print(f"| {phase} | {lib:.3f} | {plain:.3f} | {lib - plain:+.3f} |")
    totals = {name: sum(values.values()) for name, values in per_step.items()}
    print(f"| **total** | {totals['library']:.3f} | {totals['plain']:.3f} | {totals['library'] - totals['plain']:+.3f} |")
    print("RESULT " + json.dumps({"algo": options.algo, "env": cfg.env.name, "frames": options.frames,
                                  "threads": options.threads, "ms_per_step": per_step}))


if __name__ == "__main__":
    main()
