"""Whole SAC training loops side by side: the library's recipe loop, a plain PyTorch loop and SB3.

A loop is more than its update: acting, stepping the environment, writing and sampling the replay
buffer, target updates, logging and checkpoints all cost time, and a TorchRL-native loop must not pay
a tax for its TensorDicts. Each contender trains SAC from scratch for ``--frames`` environment steps
on the same task at the same settings — one environment, one gradient update per step after
``--learning-starts`` uniformly random steps, batch 256, 256×256 MLPs, twin critics, learned
temperature, Polyak τ = 0.005, Adam 3e-4 — and the contenders are run interleaved, round after
round, so that machine noise hits all of them alike:

- ``library``: the ``sac`` recipe's own parts and loop (``recipes.sac.build`` and
  ``recipes.common.off_policy_loop``: TorchRL ``GymEnv``, collector and replay buffer, CSV logger,
  one checkpoint at the end). Its final evaluation is timed by the loop and left out.
- ``plain``: a hand-written loop in plain PyTorch and NumPy (Gymnasium env, NumPy ring buffer,
  the same networks and losses, ``torch._foreach_lerp_`` Polyak update).
- ``sb3``: ``stable_baselines3.SAC(...).learn(frames)`` with ``train_freq=1, gradient_steps=1``.

Reported: environment steps per second (the whole budget, random steps included, evaluation
excluded), the median over ``--rounds``, and the ratios library/plain and library/SB3 (higher is
faster), as a Markdown table and one JSON line prefixed ``RESULT``. Needs the ``bench`` extra.

Usage::

    python benchmarks/loop_speed.py --threads 1 --rounds 3 --frames 2000
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import tempfile
import time
import warnings

import gymnasium as gym
import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore", category=DeprecationWarning)

CELLS, BATCH, GAMMA, TAU, LR = 256, 256, 0.99, 0.005, 3e-4
CONTENDERS = ("library", "plain", "sb3")
ENV_IDS = {"pendulum": "Pendulum-v1", "halfcheetah": "HalfCheetah-v5"}


def library_loop(options: argparse.Namespace, seed: int) -> float:
    """Env steps per second of the ``sac`` recipe's loop (its evaluation time left out)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from maxent_components.recipes import sac
    from maxent_components.recipes.common import off_policy_loop
    from maxent_components.runs import RunDirectory

    overrides = [
        f"env={options.env}", f"total_frames={options.frames}", f"init_random_frames={options.learning_starts}",
        f"eval_interval={options.frames}", "eval_episodes=1", f"checkpoint_interval={options.frames}",
        f"log_interval={options.frames}", "plots=false", "progress=false", f"seed={seed}",
    ]
    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        cfg = compose(sac.NAME, overrides=overrides)
    with tempfile.TemporaryDirectory() as folder:
        run = RunDirectory(folder)
        run.start(OmegaConf.to_container(cfg, resolve=True), f"loop-speed-{seed}")
        env, eval_env, loss, optimizer = sac.build(cfg)
        loop = off_policy_loop(cfg, loss, optimizer, env=env, eval_env=eval_env, run=run, name=sac.NAME)
        start = time.perf_counter()
        summary = loop.run()
        seconds = time.perf_counter() - start - summary["time_eval_s"]
        env.close()
        eval_env.close()
    return summary["env_steps"] / seconds


def _mlp(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, CELLS), nn.ReLU(), nn.Linear(CELLS, CELLS), nn.ReLU(), nn.Linear(CELLS, outputs))


def plain_loop(options: argparse.Namespace, seed: int) -> float:
    """Env steps per second of a hand-written SAC loop doing the same arithmetic."""
    torch.manual_seed(seed)
    env = gym.make(ENV_IDS[options.env])
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    scale = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    actor, critics = _mlp(obs_dim, 2 * act_dim), nn.ModuleList([_mlp(obs_dim + act_dim, 1) for _ in range(2)])
    target_critics = copy.deepcopy(critics).requires_grad_(False)
    log_alpha = torch.zeros((), requires_grad=True)
    optimizers = [torch.optim.Adam(m, lr=LR) for m in (actor.parameters(), critics.parameters(), [log_alpha])]
    n = options.frames
    store = {k: np.zeros((n, d), dtype=np.float32) for k, d in (("o", obs_dim), ("a", act_dim), ("r", 1), ("o2", obs_dim), ("d", 1))}

    def policy(obs: torch.Tensor):
        mean, log_std = actor(obs).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        u = mean + std * torch.randn_like(mean)
        a = torch.tanh(u)
        log_prob = (-0.5 * ((u - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        return a, log_prob - torch.log1p(-a.pow(2) + 1e-6).sum(-1)

    obs, _ = env.reset(seed=seed)
    start = time.perf_counter()
    for step in range(n):
        if step < options.learning_starts:
            action = env.action_space.sample()
        else:
            with torch.no_grad():
                action = (policy(torch.as_tensor(obs).unsqueeze(0))[0][0] * scale).numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in (("o", obs), ("a", action / scale.numpy()), ("r", reward), ("o2", next_obs), ("d", terminated)):
            store[key][step] = value
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step + 1 < options.learning_starts:
            continue
        index = np.random.randint(0, step + 1, BATCH)
        o, a, r, o2, d = (torch.from_numpy(store[k][index]) for k in ("o", "a", "r", "o2", "d"))
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = policy(o2)
            x2 = torch.cat([o2, a2], -1)
            q2 = torch.min(*[c(x2) for c in target_critics])
            y = r + GAMMA * (1 - d) * (q2 - alpha * logp2.unsqueeze(-1))
        x = torch.cat([o, a], -1)
        critic_loss = sum(((c(x) - y) ** 2).mean() for c in critics)
        a_new, logp = policy(o)
        x_new = torch.cat([o, a_new], -1)
        q_new = torch.min(*[c(x_new) for c in critics]).squeeze(-1)
        actor_loss = (alpha * logp - q_new).mean()
        alpha_loss = -(log_alpha * (logp.detach() - act_dim)).mean()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        actor_loss.backward(inputs=list(actor.parameters()))  # the actor's loss does not train the critics
        alpha_loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(target_critics.parameters()), list(critics.parameters()), TAU)
    seconds = time.perf_counter() - start
    env.close()
    return n / seconds


def sb3_loop(options: argparse.Namespace, seed: int) -> float:
    """Env steps per second of ``stable_baselines3.SAC.learn`` at the same settings."""
    from stable_baselines3 import SAC

    env = gym.make(ENV_IDS[options.env])
    model = SAC(
        "MlpPolicy", env, learning_rate=LR, buffer_size=options.frames, learning_starts=options.learning_starts,
        batch_size=BATCH, tau=TAU, gamma=GAMMA, train_freq=1, gradient_steps=1, ent_coef="auto",
        policy_kwargs={"net_arch": [CELLS, CELLS]}, seed=seed, device="cpu", verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=options.frames)
    seconds = time.perf_counter() - start
    env.close()
    return options.frames / seconds


LOOPS = {"library": library_loop, "plain": plain_loop, "sb3": sb3_loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", choices=sorted(ENV_IDS), default="pendulum", help="the task (default pendulum)")
    parser.add_argument("--frames", type=int, default=2000, help="environment steps per loop (default 2000)")
    parser.add_argument("--learning-starts", type=int, default=256, help="random steps before updates (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS), help="loops to time")
    options = parser.parse_args()
    if options.frames <= options.learning_starts or options.learning_starts < BATCH or options.rounds < 1 or options.threads < 1:
        parser.error("need --frames > --learning-starts >= 256 (one batch), --rounds >= 1 and --threads >= 1")
    torch.set_num_threads(options.threads)
    rates: dict[str, list[float]] = {name: [] for name in options.contenders}
    for index in range(options.rounds):
        for name in options.contenders:
            rates[name].append(LOOPS[name](options, seed=index))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"SAC loop on {ENV_IDS[options.env]}, {options.frames} env steps, {options.threads} thread(s), median of {options.rounds}")
    print("| loop | env steps/s | all rounds |")
    print("|---|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} | {', '.join(f'{v:.1f}' for v in rates[name])} |")
    result = {"env": ENV_IDS[options.env], "frames": options.frames, "threads": options.threads, "median": median, "rounds": rates}
    for other in ("plain", "sb3"):
        if "library" in median and other in median:
            result[f"library_over_{other}"] = median["library"] / median[other]
            print(f"library / {other}: {result[f'library_over_{other}']:.2f}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
