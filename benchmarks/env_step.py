"""What one environment transition costs through TorchRL, with one environment or several per step.

The loops collect with TorchRL's ``GymEnv`` (one TensorDict per step, ``step_and_maybe_reset``).
Stepping ``N`` copies at once spreads the per-step cost of the TensorDicts over ``N`` transitions:
``GymEnv(name, num_envs=N)`` does it through Gymnasium's ``AsyncVectorEnv`` (one subprocess each),
the recipes' ``num_envs=N`` (``training.make_env``) through a ``SyncVectorEnv`` in this process.
This script times, interleaved over ``--rounds``, microseconds per transition of:

- ``gymnasium``: the raw ``env.step`` with uniformly random actions, resetting at episode ends
  (what the plain loops pay);
- ``torchrl, N envs``: ``GymEnv(name, num_envs=N)`` (``N = 1``: the plain ``GymEnv``, without a
  device, as the recipes make it for the CPU) stepped with ``step_and_maybe_reset`` on random actions
  from its spec, for each ``N`` of ``--num-envs``;
- ``make_env, N envs in process``: the recipes' env with ``num_envs=N``, for each ``N > 1``;
- ``torchrl, device=cpu``: one ``GymEnv(name, device="cpu")``, which casts every step's output to its
  device, a cast a device-less env skips.

Usage::

    python benchmarks/env_step.py --threads 1
    python benchmarks/env_step.py --threads 1 --env Pendulum-v1 --num-envs 1 2
    python benchmarks/env_step.py --threads 1 --num-envs 1 2 4 8 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import gymnasium as gym
import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

from torchrl.envs import GymEnv  # noqa: E402

from maxent_components.runs.cli import quiet_torchrl  # noqa: E402
from maxent_components.training import make_env  # noqa: E402


def gymnasium_steps(name: str, steps: int) -> float:
    env = gym.make(name)
    env.reset(seed=0)
    env.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return seconds * 1e6 / steps


def torchrl_steps(name: str, num_envs: int, steps: int, device: str | None = None, in_process: bool = False) -> float:
    if in_process:
        env = make_env({"name": name}, seed=0, num_envs=num_envs)
    else:
        env = GymEnv(name, num_envs=num_envs) if num_envs > 1 else GymEnv(name, device=device)
    env.set_seed(0)
    td = env.reset()
    for _ in range(10):  # warm-up
        td["action"] = env.action_spec.rand()
        _, td = env.step_and_maybe_reset(td)
    start = time.perf_counter()
    for _ in range(steps):
        td["action"] = env.action_spec.rand()
        _, td = env.step_and_maybe_reset(td)
    seconds = time.perf_counter() - start
    env.close()
    return seconds * 1e6 / (steps * num_envs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium id (default CartPole-v1)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 4, 8], help="copies per step (default 1 4 8)")
    parser.add_argument("--steps", type=int, default=1000, help="steps per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    if min(args.num_envs) < 1 or min(args.steps, args.rounds, args.threads) < 1:
        parser.error("--num-envs, --steps, --rounds and --threads must all be >= 1")
    torch.set_num_threads(args.threads)
    quiet_torchrl()  # a vector env's spec check logs INFO lines
    contenders = {"gymnasium": lambda: gymnasium_steps(args.env, args.steps)}
    for n in args.num_envs:
        contenders[f"torchrl, {n} env{'s' if n > 1 else ''}"] = lambda n=n: torchrl_steps(args.env, n, args.steps)
    for n in (n for n in args.num_envs if n > 1):
        contenders[f"make_env, {n} envs in process"] = lambda n=n: torchrl_steps(args.env, n, args.steps, in_process=True)
    contenders["torchrl, device=cpu"] = lambda: torchrl_steps(args.env, 1, args.steps, device="cpu")
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            times[name].append(run())
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.env}, {args.threads} thread(s); µs per transition, median of {args.rounds} rounds of {args.steps} steps")
    print("| stepping | µs per transition | all rounds |")
    print("|---|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} | {', '.join(f'{v:.1f}' for v in times[name])} |")
    print("RESULT " + json.dumps({"env": args.env, "threads": args.threads, "median": median, "rounds": times}))


if __name__ == "__main__":  # the vector envs start subprocesses, which import this file
    main()
