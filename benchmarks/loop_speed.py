"""Whole training loops side by side: a library recipe's loop, a plain PyTorch loop and (for SAC) SB3.

A loop is more than its update: acting, stepping the environment, writing and sampling the replay
buffer, target updates, logging and checkpoints all cost time, and a TorchRL-native loop must not pay
a tax for its TensorDicts. Each contender trains ``--algo`` from scratch for ``--frames`` environment
steps (the first ``--learning-starts`` uniformly random) on the same task at the same settings, and
the contenders are run interleaved, round after round, so that machine noise hits all of them alike:

- ``library``: the recipe's own parts and loop (``recipes.<algo>.build`` and
  ``recipes.common.off_policy_loop``: TorchRL ``GymEnv``, collector and replay buffer, CSV logger,
  one checkpoint at the end). Its final evaluation is timed by the loop and left out. With
  ``--compile MODE`` the recipe runs with ``compile=MODE``; its compiling (the first compiled
  update, ``time_compile_s`` in the summary) is left out too, so the rate is the steady one. With
  ``--num-envs N`` it steps ``N`` environments together (``num_envs=N``), the other contenders one.
- ``plain`` (``plain_loops.py``): a hand-written loop in plain PyTorch and NumPy: the raw Gymnasium
  env the ``GymEnv`` wraps, a NumPy ring buffer, ``nn.Sequential`` MLPs, the same losses and the library
  loop's schedule (batches of ``frames_per_batch`` steps, random while fewer than ``--learning-starts``
  were taken, then ``utd_ratio`` updates per step); only ``terminated`` stops bootstrapping.
- ``sb3`` (SAC only; SB3 has none of the others): ``stable_baselines3.SAC(...).learn(frames)`` on the
  same schedule: ``train_freq=frames_per_batch`` steps, then ``gradient_steps=frames_per_batch ×
  utd_ratio`` updates (1 and 1 at the recipe's defaults).

The settings are the recipe's composed config (``conf/<algo>.yaml``, with the ``--override`` options),
which every plain loop but SAC's reads too (refusing parts it does not implement; SAC's reads only
``optim.fused``, so all contenders but SB3 step the same Adam kernel):

- ``sac`` (Pendulum-v1, HalfCheetah-v5): one update per step, batch 256, 256×256 MLPs, twin critics,
  learned temperature, Polyak τ = 0.005, Adam 3e-4, γ = 0.99.
- ``soft_dqn`` (CartPole-v1): one 128×128 Q MLP (``num_qvalue_nets`` 1, target reduction min), fixed
  α = 0.01, γ = 0.99, batch 128, Adam 1e-3, Polyak τ = 0.005, batches of 8 steps then 8 updates. Acts
  by sampling ``softmax(min_i Q_i(s, ·)/α)``; target ``r + γ (1 − terminated) red_i α logsumexp(Q̄_i(s',
  ·)/α)``; squared TD errors summed over the members.
- ``sql`` (MultiGoal): one 128×128 Q MLP on ``[s, a]``, fixed α = 1, rewards × 0.1, γ = 0.99, batch 64,
  batches of 10 steps then 10 updates, a hard target copy every 1000 updates; ``V̂(s')`` from 16 uniform
  actions; an amortized SVGD sampler ``a = tanh(MLP([s, ξ]) + ξ)`` (128×128) trained with 32 particles
  per state (16 fixed), RBF kernel in pre-tanh space, reference median bandwidth (floor 1e-3; with several
  ``sampler.bandwidth_scale`` factors, the mean of the kernels at those multiples); one Adam
  (3e-4) step on the summed Q and sampler losses, the sampler's target being the pre-step Q; the plain
  loop's arithmetic is ``maxent_components.functional``'s.
- ``discrete_sac`` (CartPole-v1): twin 128×128 Q MLPs and a 128×128 categorical actor, learned α (from 1,
  target entropy 0.6 log 2), γ = 0.99, batch 128, one Adam (Q 1e-3, actor 3e-4, log α 3e-4), Polyak
  τ = 0.005, batches of 8 steps then 4 updates. Acts by sampling ``π(·|s)``; target ``r + γ (1 −
  terminated) min_i Σ_a' π(a'|s')(Q̄_i(s', a') − α log π(a'|s'))``; actor loss ``Σ_a π(a|s)(α log π(a|s) −
  min_i Q_i(s, a))`` (Q and α detached), ``log α · (H(π) − H̄)``; one step on the sum.
- ``pcl`` (CartPole-v1, ``variant=pcl``): a 128×128 Tanh value MLP and a 128×128 ReLU categorical actor,
  fixed α = 0.01, γ = 0.99, one Adam (V 1e-3, actor 7e-4) on ``½ C²`` of every suffix of 32 slices of 10
  steps of one episode (an episode of at least 10 steps uniformly, then a start uniformly, as TorchRL's
  ``SliceSampler(strict_length=True)`` on ``done``; no bootstrap after a termination), batches of 8
  steps then 2 updates; ``C`` is ``maxent_components.functional.path_consistency``.

Reported: environment steps per second (the whole budget, random steps included, evaluation
excluded), the median over ``--rounds``, and the ratios library/plain and library/SB3 (higher is
faster), as a Markdown table and one JSON line prefixed ``RESULT``. Needs the ``bench`` extra.

Usage::

    python benchmarks/loop_speed.py --threads 1 --rounds 3 --frames 2000
    python benchmarks/loop_speed.py --algo soft_dqn --rounds 3 --frames 3000   # or sql, discrete_sac, pcl
    python benchmarks/loop_speed.py --algo soft_dqn --rounds 3 --frames 10000 --compile default
    python benchmarks/loop_speed.py --algo soft_dqn --rounds 3 --frames 10000 --num-envs 8
    python benchmarks/loop_speed.py --algo soft_dqn --rounds 3 --frames 10000 --override optim.fused=false
    python benchmarks/loop_speed.py --algo sac --contenders library sb3 --override device=cuda   # a GPU machine
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import statistics
import tempfile
import time
import warnings

import gymnasium as gym
import torch

from maxent_components.checks import check_device
from maxent_components.training.update import COMPILE_MODES

# benchmarks/ is on sys.path when this file is run as a script
from plain_loops import BATCH, CELLS, GAMMA, LR, PLAIN, TAU

warnings.filterwarnings("ignore", category=DeprecationWarning)

CONTENDERS = ("library", "plain", "sb3")
#: per algo: its name, its tasks (conf/env, the first by default), contenders, default --learning-starts
ALGOS = {
    "sac": ("SAC", ("pendulum", "halfcheetah"), CONTENDERS, 256),
    "soft_dqn": ("Soft DQN", ("cartpole",), ("library", "plain"), None),
    "sql": ("SQL", ("multigoal",), ("library", "plain"), None),
    "discrete_sac": ("Discrete SAC", ("cartpole",), ("library", "plain"), None),
    "pcl": ("PCL", ("cartpole",), ("library", "plain"), None),
}


def recipe_config(recipe, options: argparse.Namespace, seed: int | None = None):
    """The recipe's composed Hydra config on ``options.env`` (importing the recipe registered its schema);
    with a ``seed``, the one every contender of a round reads: with the budget, the seed and the cadences."""
    from hydra import compose, initialize_config_module

    overrides = [f"env={options.env}", *options.override]
    if seed is not None:
        overrides += [
            f"total_frames={options.frames}", f"init_random_frames={options.learning_starts}", f"seed={seed}",
            f"eval_interval={options.frames}", "eval_episodes=1", f"checkpoint_interval={options.frames}",
            f"log_interval={options.frames}", "stop_when_solved=false", "plots=false", "progress=false",
            f"compile={options.compile}", f"num_envs={options.num_envs}",
        ]
    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        return compose(recipe.NAME, overrides=overrides)


def library_loop(recipe, cfg) -> float:
    """Env steps per second of ``recipe``'s own build and loop (its evaluation time left out; trajectory
    slices of ``horizon`` steps for PCL, as its ``train``)."""
    from omegaconf import OmegaConf

    from maxent_components.recipes.parts import off_policy_loop
    from maxent_components.runs import RunDirectory

    with tempfile.TemporaryDirectory() as folder:
        run = RunDirectory(folder)
        run.start(OmegaConf.to_container(cfg, resolve=True), f"loop-speed-{cfg.seed}")
        env, eval_env, loss, optimizer = recipe.build(cfg)
        slice_len = cfg.horizon if "horizon" in cfg else None
        loop = off_policy_loop(cfg, loss, optimizer, env=env, eval_env=eval_env, run=run, name=recipe.NAME,
                               slice_len=slice_len)
        start = time.perf_counter()
        summary = loop.run()
        seconds = time.perf_counter() - start - summary["time_eval_s"] - (summary["time_compile_s"] or 0.0)
        env.close()
        eval_env.close()
    return summary["env_steps"] / seconds


def sb3_loop(cfg) -> float:
    """Env steps per second of ``stable_baselines3.SAC.learn`` at the same settings."""
    from stable_baselines3 import SAC

    env = gym.make(cfg.env.name)
    model = SAC(
        "MlpPolicy", env, learning_rate=LR, buffer_size=cfg.total_frames, learning_starts=cfg.init_random_frames,
        batch_size=BATCH, tau=TAU, gamma=GAMMA, train_freq=cfg.frames_per_batch,
        gradient_steps=round(cfg.frames_per_batch * cfg.utd_ratio), ent_coef="auto",
        policy_kwargs={"net_arch": [CELLS, CELLS]}, seed=cfg.seed, device=cfg.device, verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=cfg.total_frames)
    seconds = time.perf_counter() - start
    env.close()
    return cfg.total_frames / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=sorted(ALGOS), default="sac", help="the recipe to time (default sac)")
    parser.add_argument("--env", choices=sorted({e for _, envs, *_ in ALGOS.values() for e in envs}),
                        help="the task (default: pendulum for sac, multigoal for sql, cartpole for the others)")
    parser.add_argument("--frames", type=int, default=2000, help="environment steps per loop (default 2000)")
    parser.add_argument("--learning-starts", type=int, help="random steps before updates (default: 256 for sac; "
                        "the recipe's init_random_frames, at most half of --frames, in whole collector batches: "
                        "1000 for soft_dqn, discrete_sac and pcl, 100 for sql)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, help="loops to time (default: all of the algo's)")
    parser.add_argument("--compile", default="none", choices=COMPILE_MODES,
                        help="the library recipe's compile option (its compiling is left out; default none)")
    parser.add_argument("--num-envs", type=int, default=1,
                        help="the library recipe's num_envs: environments stepped together (the plain loops and SB3 "
                        "step one; default 1)")
    parser.add_argument("--override", nargs="+", default=[], metavar="KEY=VALUE",
                        help="recipe options for every contender that reads them, e.g. optim.fused=false")
    options = parser.parse_args()
    if any(o.split("=")[0] in ("num_envs", "compile") for o in options.override):
        parser.error("the library's num_envs and compile are --num-envs and --compile (the plain loops do not read them)")
    title, envs, available, learning_starts = ALGOS[options.algo]
    options.env, options.contenders = options.env or envs[0], options.contenders or list(available)
    if options.env not in envs or not set(options.contenders) <= set(available):
        parser.error(f"--algo {options.algo} runs on {', '.join(envs)} with the contenders {', '.join(available)}")
    recipe = importlib.import_module(f"maxent_components.recipes.{options.algo}")
    defaults = recipe_config(recipe, options)
    if options.learning_starts is None:  # the recipe's, at most half the budget, in whole collector batches
        starts = min(defaults.init_random_frames, options.frames // 2)
        options.learning_starts = learning_starts or starts - starts % defaults.frames_per_batch
    try:
        check_device("device", defaults.device)
    except ValueError as err:
        parser.error(str(err))
    if defaults.device != "cpu" and "plain" in options.contenders:
        parser.error(f"the plain loops run on the CPU; with device={defaults.device} time --contenders library sb3")
    batch = defaults.batch_size
    if options.frames <= options.learning_starts or options.learning_starts < batch or options.rounds < 1 or options.threads < 1:
        parser.error(f"need --frames > --learning-starts >= {batch} (one batch), --rounds >= 1 and --threads >= 1")
    if options.num_envs < 1 or defaults.frames_per_batch % options.num_envs:
        parser.error(f"--num-envs must divide frames_per_batch={defaults.frames_per_batch} (set it with --override)")
    updates_per_batch = defaults.frames_per_batch * defaults.utd_ratio
    if "sb3" in options.contenders and (updates_per_batch < 1 or updates_per_batch != round(updates_per_batch)):
        parser.error(f"SB3 takes whole updates per batch: frames_per_batch × utd_ratio = {updates_per_batch:g} "
                     "must be a positive whole number (set them with --override)")
    torch.set_num_threads(options.threads)
    loops = {"library": functools.partial(library_loop, recipe), "plain": PLAIN[options.algo], "sb3": sb3_loop}
    rates: dict[str, list[float]] = {name: [] for name in options.contenders}
    for index in range(options.rounds):
        cfg = recipe_config(recipe, options, seed=index)
        for name in options.contenders:
            rates[name].append(loops[name](cfg))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{title} loop on {defaults.env.name}, {options.frames} env steps ({options.learning_starts} random), "
          f"{options.threads} thread(s), library compile={options.compile} num_envs={options.num_envs}, median of {options.rounds}"
          + (f", {' '.join(options.override)}" if options.override else ""))
    print("| loop | env steps/s | all rounds |")
    print("|---|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} | {', '.join(f'{v:.1f}' for v in rates[name])} |")
    result = {"algo": options.algo, "env": defaults.env.name, "frames": options.frames, "learning_starts": options.learning_starts,
              "threads": options.threads, "compile": options.compile, "num_envs": options.num_envs, "override": options.override, "median": median, "rounds": rates}
    for other in ("plain", "sb3"):
        if "library" in median and other in median:
            result[f"library_over_{other}"] = median["library"] / median[other]
            print(f"library / {other}: {result[f'library_over_{other}']:.2f}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
