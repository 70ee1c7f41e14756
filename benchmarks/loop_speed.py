"""Whole training loops side by side: a library recipe's loop, a plain PyTorch loop and (for SAC) SB3.

A loop is more than its update: acting, stepping the environment, writing and sampling the replay
buffer, target updates, logging and checkpoints all cost time, and a TorchRL-native loop must not pay
a tax for its TensorDicts. Each contender trains ``--algo`` from scratch for ``--frames`` environment
steps (the first ``--learning-starts`` uniformly random) on the same task at the same settings, and
the contenders are run interleaved, round after round, so that machine noise hits all of them alike:

- ``library``: the recipe's own parts and loop (``recipes.<algo>.build`` and
  ``recipes.common.off_policy_loop``: TorchRL ``GymEnv``, collector and replay buffer, CSV logger,
  one checkpoint at the end). Its final evaluation is timed by the loop and left out.
- ``plain``: a hand-written loop in plain PyTorch and NumPy: the raw Gymnasium env the ``GymEnv``
  wraps, a NumPy ring buffer, ``nn.Sequential`` MLPs, the same losses and the library loop's schedule
  (batches of ``frames_per_batch`` steps, random while fewer than ``--learning-starts`` were taken,
  then ``utd_ratio`` updates per step); only ``terminated`` stops bootstrapping.
- ``sb3`` (SAC only; SB3 has no soft DQN or SQL): ``stable_baselines3.SAC(...).learn(frames)`` with
  ``train_freq=1, gradient_steps=1``.

The settings are the recipe's composed config (``conf/<algo>.yaml``), which the plain soft DQN and SQL
loops read too (refusing parts they do not implement):

- ``sac`` (Pendulum-v1, HalfCheetah-v5): one update per step, batch 256, 256×256 MLPs, twin critics,
  learned temperature, Polyak τ = 0.005, Adam 3e-4, γ = 0.99.
- ``soft_dqn`` (CartPole-v1): one 128×128 Q MLP (``num_qvalue_nets`` 1, target reduction min), fixed
  α = 0.01, γ = 0.99, batch 128, Adam 1e-3, Polyak τ = 0.005, batches of 8 steps then 8 updates. Acts
  by sampling ``softmax(min_i Q_i(s, ·)/α)``; target ``r + γ (1 − terminated) red_i α logsumexp(Q̄_i(s',
  ·)/α)``; squared TD errors summed over the members.
- ``sql`` (MultiGoal): one 128×128 Q MLP on ``[s, a]``, fixed α = 1, rewards × 0.1, γ = 0.99, batch 64,
  batches of 10 steps then 10 updates, a hard target copy every 1000 updates; ``V̂(s')`` from 16 uniform
  actions; an amortized SVGD sampler ``a = tanh(MLP([s, ξ]) + ξ)`` (128×128) trained with 32 particles
  per state (16 fixed), RBF kernel in pre-tanh space, reference median bandwidth (floor 1e-3); one Adam
  (3e-4) step on the summed Q and sampler losses, the sampler's target being the pre-step Q; the plain
  loop's arithmetic is ``maxent_components.functional``'s.

Reported: environment steps per second (the whole budget, random steps included, evaluation
excluded), the median over ``--rounds``, and the ratios library/plain and library/SB3 (higher is
faster), as a Markdown table and one JSON line prefixed ``RESULT``. Needs the ``bench`` extra.

Usage::

    python benchmarks/loop_speed.py --threads 1 --rounds 3 --frames 2000
    python benchmarks/loop_speed.py --algo soft_dqn --rounds 3 --frames 3000   # or --algo sql
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import itertools
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

CELLS, BATCH, GAMMA, TAU, LR, CONTENDERS = 256, 256, 0.99, 0.005, 3e-4, ("library", "plain", "sb3")  # sac's settings
#: per algo: its name, its tasks (conf/env, the first by default), contenders, default --learning-starts
ALGOS = {
    "sac": ("SAC", ("pendulum", "halfcheetah"), CONTENDERS, 256),
    "soft_dqn": ("Soft DQN", ("cartpole",), ("library", "plain"), None),
    "sql": ("SQL", ("multigoal",), ("library", "plain"), None),
}


def recipe_config(recipe, options: argparse.Namespace, seed: int | None = None):
    """The recipe's composed Hydra config on ``options.env`` (importing the recipe registered its schema);
    with a ``seed``, the one every contender of a round reads: with the budget, the seed and the cadences."""
    from hydra import compose, initialize_config_module

    overrides = [f"env={options.env}"]
    if seed is not None:
        overrides += [
            f"total_frames={options.frames}", f"init_random_frames={options.learning_starts}", f"seed={seed}",
            f"eval_interval={options.frames}", "eval_episodes=1", f"checkpoint_interval={options.frames}",
            f"log_interval={options.frames}", "stop_when_solved=false", "plots=false", "progress=false",
        ]
    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        return compose(recipe.NAME, overrides=overrides)


def library_loop(recipe, cfg) -> float:
    """Env steps per second of ``recipe``'s own build and loop (its evaluation time left out)."""
    from omegaconf import OmegaConf

    from maxent_components.recipes.common import off_policy_loop
    from maxent_components.runs import RunDirectory

    with tempfile.TemporaryDirectory() as folder:
        run = RunDirectory(folder)
        run.start(OmegaConf.to_container(cfg, resolve=True), f"loop-speed-{cfg.seed}")
        env, eval_env, loss, optimizer = recipe.build(cfg)
        loop = off_policy_loop(cfg, loss, optimizer, env=env, eval_env=eval_env, run=run, name=recipe.NAME)
        start = time.perf_counter()
        summary = loop.run()
        seconds = time.perf_counter() - start - summary["time_eval_s"]
        env.close()
        eval_env.close()
    return summary["env_steps"] / seconds


# -- what the plain loops share ---------------------------------------------------------------------
class Ring:
    """A NumPy ring buffer of ``(o, a, r, o2, terminated)`` rows, sampled uniformly as tensors."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, action_dtype=np.float32) -> None:
        dims = ((obs_dim, np.float32), (act_dim, action_dtype), (1, np.float32), (obs_dim, np.float32), (1, np.float32))
        self.columns = [np.zeros((capacity, dim), dtype) for dim, dtype in dims]
        self.capacity, self.size, self.next = capacity, 0, 0

    def add(self, *row) -> None:
        for column, value in zip(self.columns, row):
            column[self.next] = value
        self.next, self.size = (self.next + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, batch: int) -> list[torch.Tensor]:
        index = np.random.randint(0, self.size, batch)
        return [torch.from_numpy(column[index]) for column in self.columns]


def plain_env(cfg) -> gym.Env:
    """Seed torch and NumPy; return the Gymnasium env the library's ``GymEnv`` wraps (MultiGoal's too)."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    kwargs = dict(cfg.env.kwargs or {})
    if cfg.env.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.env.max_episode_steps
    return gym.make(cfg.env.name, **kwargs)


def drive(cfg, env: gym.Env, ring: Ring, act, update, encode=lambda action: action) -> float:
    """Env steps per second of a plain loop on the library loop's schedule: batches of ``frames_per_batch``
    steps (random at first), each followed by the ``utd_ratio`` updates it owes."""
    frames, starts, per_batch, utd = cfg.total_frames, cfg.init_random_frames, cfg.frames_per_batch, cfg.utd_ratio
    obs, _ = env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    taken, credit = 0, 0.0
    start = time.perf_counter()
    while taken < frames:
        random, steps = taken < starts, min(per_batch, frames - taken)
        for _ in range(steps):
            action = env.action_space.sample() if random else act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            ring.add(obs, encode(action), reward, next_obs, terminated)
            obs = env.reset()[0] if terminated or truncated else next_obs
        taken += steps
        if taken >= starts:
            credit += utd * steps
            while credit >= 1.0:
                credit -= 1.0
                update()
    seconds = time.perf_counter() - start
    env.close()
    return frames / seconds


def _mlp(inputs: int, outputs: int, cells=(CELLS, CELLS)) -> nn.Sequential:
    sizes = [inputs, *cells]
    hidden = [layer for i, o in itertools.pairwise(sizes) for layer in (nn.Linear(i, o), nn.ReLU())]
    return nn.Sequential(*hidden, nn.Linear(sizes[-1], outputs))


def soft_q_parts(cfg, inputs: int, outputs: int, parts: dict[str, str], actor: nn.Module | None = None):
    """``cfg.loss``'s Q ensemble of MLPs, its frozen targets, the reduction of the members' soft values,
    the TD loss, and ``step(loss)``: one Adam step over the Q ensemble and ``actor`` (a learning rate per
    group, as ``recipes.common.adam``), then the target update (Polyak, or a hard copy every
    ``hard_update_interval`` updates). Refuses a config whose ``parts`` are not the given classes."""
    for group, name in parts.items():
        if not cfg[group]._target_.endswith("." + name):
            raise ValueError(f"the plain {cfg.env.name} loop implements {group}={name}, not {cfg[group]._target_}")
    qs = nn.ModuleList(_mlp(inputs, outputs, cfg.network.num_cells) for _ in range(cfg.loss.num_qvalue_nets))
    targets = copy.deepcopy(qs).requires_grad_(False)
    params, target_params = list(qs.parameters()), list(targets.parameters())
    lr, loss_cfg = cfg.optim.lr_qvalue, cfg.loss
    actor_group = [] if actor is None else [{"params": actor.parameters(), "lr": cfg.optim.lr_actor or lr}]
    optimizer = torch.optim.Adam([{"params": params}, *actor_group], lr=lr)
    soft, tau, interval, count = loss_cfg.target_update == "soft", loss_cfg.tau, loss_cfg.hard_update_interval, itertools.count(1)

    def step(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            if soft:
                torch._foreach_lerp_(target_params, params, tau)
            elif next(count) % interval == 0:
                torch._foreach_copy_(target_params, params)

    reduce = (lambda v: v.amin(0)) if cfg.loss.target_reduction == "min" else (lambda v: v.mean(0))
    td_loss = nn.functional.mse_loss if cfg.loss.loss_function == "l2" else nn.functional.smooth_l1_loss
    return qs, targets, reduce, td_loss, step


def plain_sac(cfg) -> float:
    """Env steps per second of a hand-written SAC loop doing the same arithmetic."""
    env = plain_env(cfg)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    scale = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    actor, critics = _mlp(obs_dim, 2 * act_dim), nn.ModuleList([_mlp(obs_dim + act_dim, 1) for _ in range(2)])
    target_critics = copy.deepcopy(critics).requires_grad_(False)
    log_alpha = torch.zeros((), requires_grad=True)
    optimizers = [torch.optim.Adam(m, lr=LR) for m in (actor.parameters(), critics.parameters(), [log_alpha])]
    ring = Ring(cfg.total_frames, obs_dim, act_dim)

    def policy(obs: torch.Tensor):
        mean, log_std = actor(obs).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        u = mean + std * torch.randn_like(mean)
        a = torch.tanh(u)
        log_prob = (-0.5 * ((u - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        return a, log_prob - torch.log1p(-a.pow(2) + 1e-6).sum(-1)

    @torch.no_grad()
    def act(obs):
        return (policy(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0][0] * scale).numpy()

    def update() -> None:
        o, a, r, o2, d = ring.sample(BATCH)
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

    return drive(cfg, env, ring, act, update, encode=lambda action: action / scale.numpy())


def plain_soft_dqn(cfg) -> float:
    """Env steps per second of a hand-written soft DQN loop at the recipe's settings."""
    env = plain_env(cfg)
    obs_dim, num_actions = env.observation_space.shape[0], int(env.action_space.n)
    parts = {"sampler": "BoltzmannSampler", "soft_value": "ExactSoftValue", "temperature": "FixedTemperature"}
    qs, targets, reduce, td_loss, step = soft_q_parts(cfg, obs_dim, num_actions, parts)
    alpha, gamma, reward_scale, batch = cfg.alpha, cfg.loss.gamma, cfg.env.reward_scale, cfg.batch_size
    ring = Ring(min(cfg.total_frames, cfg.buffer_size), obs_dim, 1, action_dtype=np.int64)

    @torch.no_grad()
    def act(obs) -> int:
        x = torch.as_tensor(obs, dtype=torch.float32)
        q = torch.stack([net(x) for net in qs]).amin(0)  # the sampler acts with the min over the ensemble
        return int(torch.multinomial(torch.softmax(q / alpha, -1), 1))

    def update() -> None:
        o, a, r, o2, d = ring.sample(batch)
        with torch.no_grad():
            v2 = reduce(torch.stack([alpha * torch.logsumexp(net(o2) / alpha, -1, keepdim=True) for net in targets]))
            y = reward_scale * r + gamma * (1 - d) * v2
        step(sum(td_loss(net(o).gather(-1, a), y) for net in qs))

    return drive(cfg, env, ring, act, update)


def plain_sql(cfg) -> float:
    """Env steps per second of a hand-written SQL loop at the recipe's settings (arithmetic: ``functional``)."""
    from maxent_components import functional as fn

    env = plain_env(cfg)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = (torch.as_tensor(b, dtype=torch.float32) for b in (env.action_space.low, env.action_space.high))
    sampler_net = _mlp(obs_dim + act_dim, act_dim, cfg.network.num_cells)  # u = MLP([s, ξ]) + ξ, ξ ∈ R^D
    parts = {"sampler": "SVGDSampler", "soft_value": "UniformSoftValue", "temperature": "FixedTemperature"}
    qs, targets, reduce, td_loss, step = soft_q_parts(cfg, obs_dim + act_dim, 1, parts, actor=sampler_net)
    alpha, gamma, reward_scale, batch = cfg.alpha, cfg.loss.gamma, cfg.env.reward_scale, cfg.batch_size
    value_samples, log_uniform = cfg.soft_value.num_samples, -(high - low).log().sum()  # log U(A)
    sampler = cfg.sampler
    num_fixed = round(sampler.num_particles * sampler.fixed_fraction)
    num_updated, bandwidth, min_bandwidth = sampler.num_particles - num_fixed, sampler.bandwidth, sampler.min_bandwidth
    ring = Ring(min(cfg.total_frames, cfg.buffer_size), obs_dim, act_dim)

    def particles(obs: torch.Tensor, n: int) -> torch.Tensor:  # u [n, *B, D]
        noise = torch.randn(n, *obs.shape[:-1], act_dim)
        return sampler_net(torch.cat([obs.expand(n, *obs.shape), noise], -1)) + noise

    def q_values(nets, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:  # [N, K, B] for actions [K, B, D]
        x = torch.cat([obs.expand(*actions.shape[:-1], obs.shape[-1]), actions], -1)
        return torch.stack([net(x).squeeze(-1) for net in nets])

    @torch.no_grad()
    def act(obs):
        return fn.tanh_squash(particles(torch.as_tensor(obs, dtype=torch.float32), 1)[0], low, high).numpy()

    def update() -> None:
        o, a, r, o2, d = ring.sample(batch)
        with torch.no_grad():
            uniform = low + (high - low) * torch.rand(value_samples, batch, act_dim)
            v2 = reduce(fn.importance_sampled_soft_value(q_values(targets, o2, uniform), log_uniform, alpha, dim=1))
            y = reward_scale * r.squeeze(-1) + gamma * (1 - d.squeeze(-1)) * v2
        loss = sum(td_loss(net(torch.cat([o, a], -1)).squeeze(-1), y) for net in qs)
        # Amortized SVGD (Haarnoja et al., 2017, eqs. 13-14) on log p_u(u) = min_i Q_i(s, a(u))/α + log|da/du|.
        with torch.no_grad():
            fixed = particles(o, num_fixed)
        updated = particles(o, num_updated)
        fixed.requires_grad_(True)
        log_p = q_values(qs, o, fn.tanh_squash(fixed, low, high)).amin(0) / alpha
        log_p = log_p + fn.tanh_log_abs_det_jacobian(fixed, low, high).sum(-1)
        (score,) = torch.autograd.grad(log_p.sum(), fixed)
        fixed_b, score_b, updated_b = (t.detach().movedim(0, -2) for t in (fixed, score, updated))
        distances = fn.squared_distances(fixed_b, updated_b)
        h = fn.median_bandwidth(distances, formula=bandwidth, num_particles=num_fixed, min_bandwidth=min_bandwidth)
        direction = fn.svgd_direction(updated_b, score_b, fixed_b, h).movedim(-2, 0)
        step(loss - (direction * updated).sum(-1).mean())

    return drive(cfg, env, ring, act, update)


def sb3_loop(cfg) -> float:
    """Env steps per second of ``stable_baselines3.SAC.learn`` at the same settings."""
    from stable_baselines3 import SAC

    env = gym.make(cfg.env.name)
    model = SAC(
        "MlpPolicy", env, learning_rate=LR, buffer_size=cfg.total_frames, learning_starts=cfg.init_random_frames,
        batch_size=BATCH, tau=TAU, gamma=GAMMA, train_freq=1, gradient_steps=1, ent_coef="auto",
        policy_kwargs={"net_arch": [CELLS, CELLS]}, seed=cfg.seed, device="cpu", verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=cfg.total_frames)
    seconds = time.perf_counter() - start
    env.close()
    return cfg.total_frames / seconds


PLAIN = {"sac": plain_sac, "soft_dqn": plain_soft_dqn, "sql": plain_sql}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=sorted(ALGOS), default="sac", help="the recipe to time (default sac)")
    parser.add_argument("--env", choices=sorted({e for _, envs, *_ in ALGOS.values() for e in envs}),
                        help="the task (default: pendulum for sac, cartpole for soft_dqn, multigoal for sql)")
    parser.add_argument("--frames", type=int, default=2000, help="environment steps per loop (default 2000)")
    parser.add_argument("--learning-starts", type=int, help="random steps before updates (default: 256 for sac; "
                        "the recipe's init_random_frames, at most half of --frames, for soft_dqn (1000) and sql (100))")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, help="loops to time (default: all of the algo's)")
    options = parser.parse_args()
    title, envs, available, learning_starts = ALGOS[options.algo]
    options.env, options.contenders = options.env or envs[0], options.contenders or list(available)
    if options.env not in envs or not set(options.contenders) <= set(available):
        parser.error(f"--algo {options.algo} runs on {', '.join(envs)} with the contenders {', '.join(available)}")
    recipe = importlib.import_module(f"maxent_components.recipes.{options.algo}")
    defaults = recipe_config(recipe, options)
    if options.learning_starts is None:  # the recipe's, at most half the budget, in whole collector batches
        starts = min(defaults.init_random_frames, options.frames // 2)
        options.learning_starts = learning_starts or starts - starts % defaults.frames_per_batch
    batch = defaults.batch_size
    if options.frames <= options.learning_starts or options.learning_starts < batch or options.rounds < 1 or options.threads < 1:
        parser.error(f"need --frames > --learning-starts >= {batch} (one batch), --rounds >= 1 and --threads >= 1")
    torch.set_num_threads(options.threads)
    loops = {"library": functools.partial(library_loop, recipe), "plain": PLAIN[options.algo], "sb3": sb3_loop}
    rates: dict[str, list[float]] = {name: [] for name in options.contenders}
    for index in range(options.rounds):
        cfg = recipe_config(recipe, options, seed=index)
        for name in options.contenders:
            rates[name].append(loops[name](cfg))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{title} loop on {defaults.env.name}, {options.frames} env steps ({options.learning_starts} random), "
          f"{options.threads} thread(s), median of {options.rounds}")
    print("| loop | env steps/s | all rounds |")
    print("|---|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} | {', '.join(f'{v:.1f}' for v in rates[name])} |")
    result = {"algo": options.algo, "env": defaults.env.name, "frames": options.frames, "learning_starts": options.learning_starts,
              "threads": options.threads, "median": median, "rounds": rates}
    for other in ("plain", "sb3"):
        if "library" in median and other in median:
            result[f"library_over_{other}"] = median["library"] / median[other]
            print(f"library / {other}: {result[f'library_over_{other}']:.2f}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
