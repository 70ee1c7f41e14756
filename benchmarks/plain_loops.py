"""The hand-written plain PyTorch/NumPy training loops that ``loop_speed.py`` times against the recipes.

Each ``plain_<algo>(cfg)`` trains the recipe's algorithm at the settings of its composed config
``cfg`` (SAC at fixed settings, see ``loop_speed.py``, but for ``optim.fused``) and returns its environment steps per second:
the raw Gymnasium env, a NumPy ring buffer (:class:`Ring`, :class:`SliceRing` for trajectory
slices), ``nn.Sequential`` MLPs, the same losses and the library loop's schedule (:func:`drive`).
Parts of a config a loop does not implement are refused (:func:`require`), not silently replaced.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from maxent_components import functional as fn

CELLS, BATCH, GAMMA, TAU, LR = 256, 256, 0.99, 0.005, 3e-4  # sac's settings
#: the update benchmarks' ``--adam`` choices: Adam's keyword arguments for each kernel
ADAM_KERNELS = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


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

    def end_episode(self) -> None:  # the last row ended its episode: nothing to record for uniform sampling
        pass

    def sample(self, batch: int) -> list[torch.Tensor]:
        index = np.random.randint(0, self.size, batch)
        return [torch.from_numpy(column[index]) for column in self.columns]


class SliceRing(Ring):
    """A :class:`Ring` recording episode ends (terminated or truncated), sampled in slices of one episode as
    TorchRL's ``SliceSampler(end_key=("next", "done"), strict_length=True)``: an episode of at least ``length``
    rows uniformly (the unfinished one ends at the newest row), then a start uniformly within it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ends = np.zeros(self.capacity, bool)
        self.episodes, self.length = None, None  # (oldest row, first rows and lengths in write order)

    def add(self, *row) -> None:
        self.ends[self.next] = False
        super().add(*row)
        self.episodes = None

    def end_episode(self) -> None:
        self.ends[self.next - 1] = True

    def slices(self, count: int, length: int):
        """``count`` slices of ``length`` rows: states ``[count, length + 1, obs]`` (the last row's next one
        too), actions ``[count, length, act]``, rewards ``[count, length]``, last row terminated ``[count]``."""
        if self.episodes is None or self.length != length:  # found again after writes, not at every sample
            oldest = self.next if self.size == self.capacity else 0  # full: the oldest row is the next written
            ends = np.roll(self.ends, -oldest)[: self.size]  # in write order (a copy)
            ends[-1] = True
            stops = np.flatnonzero(ends)
            starts = np.concatenate(([0], stops[:-1] + 1))
            lengths = stops - starts + 1
            keep = lengths >= length
            self.episodes, self.length = (oldest, starts[keep], lengths[keep]), length
        oldest, starts, lengths = self.episodes
        pick = np.random.randint(0, len(starts), count)  # raises when no episode is long enough, as TorchRL's
        first = starts[pick] + (np.random.rand(count) * (lengths[pick] - length + 1)).astype(np.int64)
        rows = (oldest + first[:, None] + np.arange(length)) % self.capacity
        o, a, r, o2, d = self.columns
        states = np.concatenate([o[rows], o2[rows[:, -1:]]], 1)
        return (torch.from_numpy(states), torch.from_numpy(a[rows]), torch.from_numpy(r[rows, 0]),
                torch.from_numpy(d[rows[:, -1], 0] > 0))


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
            if terminated or truncated:
                ring.end_episode()
                obs = env.reset()[0]
            else:
                obs = next_obs
        taken += steps
        if taken >= starts:
            credit += utd * steps
            while credit >= 1.0:
                credit -= 1.0
                update()
    seconds = time.perf_counter() - start
    env.close()
    return frames / seconds


def _mlp(inputs: int, outputs: int, cells=(CELLS, CELLS), activation=nn.ReLU) -> nn.Sequential:
    sizes = [inputs, *cells]
    hidden = [layer for i, o in itertools.pairwise(sizes) for layer in (nn.Linear(i, o), activation())]
    return nn.Sequential(*hidden, nn.Linear(sizes[-1], outputs))


def require(cfg, parts: dict[str, str]) -> None:
    """Refuse a config whose ``parts`` (config group: class name) are other classes."""
    for group, name in parts.items():
        if not cfg[group]._target_.endswith("." + name):
            raise ValueError(f"the plain {cfg.env.name} loop implements {group}={name}, not {cfg[group]._target_}")


def soft_q_parts(cfg, inputs: int, outputs: int, parts: dict[str, str], actor: nn.Module | None = None,
                 log_alpha: torch.Tensor | None = None):
    """``cfg.loss``'s Q ensemble of MLPs, its frozen targets, the reduction of the members' soft values,
    the TD loss, and ``step(loss)``: one Adam step over the Q ensemble, ``actor`` and ``log_alpha`` (a
    learning rate per group, as ``recipes.common.adam``), then the target update (Polyak, or a hard copy
    every ``hard_update_interval`` updates). Refuses a config whose ``parts`` are not the given classes."""
    require(cfg, parts)
    qs = nn.ModuleList(_mlp(inputs, outputs, cfg.network.num_cells) for _ in range(cfg.loss.num_qvalue_nets))
    targets = copy.deepcopy(qs).requires_grad_(False)
    params, target_params = list(qs.parameters()), list(targets.parameters())
    lr, loss_cfg = cfg.optim.lr_qvalue, cfg.loss
    actor_group = [] if actor is None else [{"params": actor.parameters(), "lr": cfg.optim.lr_actor or lr}]
    alpha_group = [] if log_alpha is None else [{"params": [log_alpha], "lr": cfg.optim.lr_alpha or lr}]
    optimizer = adam([{"params": params}, *actor_group, *alpha_group], cfg)
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


def adam(groups: list[dict], cfg) -> torch.optim.Adam:
    """Adam over ``groups`` at ``cfg.optim.lr_qvalue``, with the fused kernel when ``cfg.optim.fused``
    (the recipes' optimiser, ``recipes.common.adam``)."""
    return torch.optim.Adam(groups, lr=cfg.optim.lr_qvalue, fused=True if cfg.optim.fused else None)


@contextlib.contextmanager
def _frozen(params: list[torch.Tensor]):
    """The block runs with ``params`` not requiring gradients (a loss in it does not train them)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def sac_update(obs_dim: int, act_dim: int, *, cells=(CELLS, CELLS), device=None, autocast=contextlib.nullcontext,
               fused: bool = False):
    """SAC written by hand on plain tensors, as the library composes it: a tanh-Gaussian actor with
    TorchRL's ``NormalParamExtractor`` scale head, twin critics with Polyak targets (one
    ``torch._foreach_lerp_``), learned ``log α`` towards the entropy ``−act_dim``, and one Adam over
    critics, actor and ``log α`` stepping ``critic + actor + α`` losses. Returns ``(update, policy)``:
    ``update(o, a, r, o2, terminated)`` on a batch of float tensors (actions in [−1, 1]) and
    ``policy(o) -> (a, log π(a|o))``; ``autocast()`` wraps the forward; ``fused``: Adam's fused kernel."""
    actor = _mlp(obs_dim, 2 * act_dim, cells).to(device)
    critics = nn.ModuleList([_mlp(obs_dim + act_dim, 1, cells) for _ in range(2)]).to(device)
    target_critics = [copy.deepcopy(c).requires_grad_(False) for c in critics]
    online, target_leaves = list(critics.parameters()), [p for c in target_critics for p in c.parameters()]
    log_alpha = torch.zeros((), device=device, requires_grad=True)
    optimiser = torch.optim.Adam([*online, *actor.parameters(), log_alpha], lr=LR, fused=fused or None)

    def policy(o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw = actor(o).chunk(2, -1)
        scale = nn.functional.softplus(raw + 0.5413) + 1e-4  # NormalParamExtractor's biased softplus
        u = loc + scale * torch.randn_like(loc)
        log_prob = (-0.5 * ((u - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
        return torch.tanh(u), log_prob - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)

    def update(o, a, r, o2, d) -> None:
        alpha = log_alpha.exp().detach()
        with autocast():
            with torch.no_grad():
                a2, logp2 = policy(o2)
                x2 = torch.cat([o2, a2], -1)
                y = r + GAMMA * (1 - d) * (torch.min(*[c(x2) for c in target_critics]) - alpha * logp2.unsqueeze(-1))
            x = torch.cat([o, a], -1)
            critic_loss = sum(((c(x) - y) ** 2).mean() for c in critics)
            a_new, logp = policy(o)
            x_new = torch.cat([o, a_new], -1)
            with _frozen(online):  # the actor's loss must not train the critics
                q_new = torch.min(*[c(x_new) for c in critics]).squeeze(-1)
            actor_loss = (alpha * logp - q_new).mean()
            alpha_loss = -(log_alpha * (logp.detach() - act_dim)).mean()
        optimiser.zero_grad(set_to_none=True)
        (critic_loss + actor_loss + alpha_loss).backward()
        optimiser.step()
        torch._foreach_lerp_(target_leaves, online, TAU)

    return update, policy


def plain_sac(cfg) -> float:
    """Env steps per second of a hand-written SAC loop doing the same arithmetic (:func:`sac_update`)."""
    env = plain_env(cfg)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    scale = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    update, policy = sac_update(obs_dim, act_dim, fused=cfg.optim.fused)
    ring = Ring(cfg.total_frames, obs_dim, act_dim)

    @torch.no_grad()
    def act(obs):
        return (policy(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0][0] * scale).numpy()

    return drive(cfg, env, ring, act, lambda: update(*ring.sample(BATCH)), encode=lambda action: action / scale.numpy())


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
    scale = sampler.get("bandwidth_scale", 1.0)
    scales = [float(c) for c in scale] if isinstance(scale, Sequence) else [float(scale)]  # κ: the mean over scales
    top = max(scales)
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
        rule = fn.median_bandwidth(distances, formula=bandwidth, num_particles=num_fixed, min_bandwidth=min_bandwidth / top)
        hs = [c * rule if c == top else (c * rule).clamp_min(min_bandwidth) for c in scales]  # max(c · rule, floor)
        direction = fn.svgd_direction(updated_b, score_b, fixed_b, hs[0])
        if len(hs) > 1:
            direction = (direction + sum(fn.svgd_direction(updated_b, score_b, fixed_b, h) for h in hs[1:])) / len(hs)
        direction = direction.movedim(-2, 0)
        step(loss - (direction * updated).sum(-1).mean())

    return drive(cfg, env, ring, act, update)


@torch.no_grad()
def _sample_categorical(net: nn.Module, obs) -> int:  # the categorical actor acting: a ∼ softmax(net(s))
    return int(torch.multinomial(torch.softmax(net(torch.as_tensor(obs, dtype=torch.float32)), -1), 1))


def plain_discrete_sac(cfg) -> float:
    """Env steps per second of a hand-written discrete SAC loop at the recipe's settings: twin Q MLPs
    on the exact policy soft value of a categorical actor, learned ``log α`` (arithmetic: ``functional``)."""
    env = plain_env(cfg)
    obs_dim, num_actions = env.observation_space.shape[0], int(env.action_space.n)
    temperature, actor = cfg.temperature, _mlp(obs_dim, num_actions, cfg.network.num_cells)  # logits of π(·|s)
    if cfg.sampler.get("use_action_mask") or temperature.get("min_alpha") or temperature.get("max_alpha"):
        raise ValueError("the plain discrete SAC loop implements no action mask and no clamp on alpha")
    log_alpha = torch.tensor(math.log(temperature.alpha_init), requires_grad=True)
    target_entropy = temperature.target_entropy  # "auto": a fraction of the largest entropy log |A|
    target_entropy = temperature.entropy_ratio * math.log(num_actions) if target_entropy == "auto" else target_entropy
    parts = {"sampler": "CategoricalSampler", "soft_value": "PolicySoftValue", "temperature": "AutoTemperature"}
    qs, targets, reduce, td_loss, step = soft_q_parts(cfg, obs_dim, num_actions, parts, actor=actor, log_alpha=log_alpha)
    gamma, reward_scale, batch = cfg.loss.gamma, cfg.env.reward_scale, cfg.batch_size
    ring = Ring(min(cfg.total_frames, cfg.buffer_size), obs_dim, 1, action_dtype=np.int64)

    def update() -> None:
        o, a, r, o2, d = ring.sample(batch)
        alpha = log_alpha.detach().exp()
        with torch.no_grad():  # y = r + γ (1 − terminated) red_i Σ_a' π(a'|s')(Q̄_i(s', a') − α log π(a'|s'))
            log_pi2 = torch.log_softmax(actor(o2), -1)
            v2 = reduce(fn.expected_soft_value(torch.stack([net(o2) for net in targets]), log_pi2, alpha))
            y = reward_scale * r + gamma * (1 - d) * v2.unsqueeze(-1)
        q = [net(o) for net in qs]
        loss = sum(td_loss(q_i.gather(-1, a), y) for q_i in q)
        # The actor against min_i Q_i (no gradient to Q), α detached; log α towards the target entropy.
        log_pi = torch.log_softmax(actor(o), -1)
        q_min = torch.stack([q_i.detach() for q_i in q]).amin(0)
        loss = loss + (log_pi.exp() * (alpha * log_pi - q_min)).sum(-1).mean()
        step(loss + log_alpha * (fn.entropy(log_pi.detach()).mean() - target_entropy))

    return drive(cfg, env, ring, lambda obs: _sample_categorical(actor, obs), update)


def plain_pcl(cfg) -> float:
    """Env steps per second of a hand-written PCL loop at the recipe's settings (``variant=pcl``): a value
    MLP and a categorical actor on ``½ C²`` of every suffix of slices of ``horizon`` steps (``functional``)."""
    if cfg.variant != "pcl":
        raise ValueError(f"the plain PCL loop implements variant=pcl, not {cfg.variant}")
    require(cfg, {"sampler": "CategoricalSampler", "temperature": "FixedTemperature"})
    if cfg.sampler.get("use_action_mask"):
        raise ValueError("the plain PCL loop implements no action mask")
    env = plain_env(cfg)
    obs_dim, num_actions = env.observation_space.shape[0], int(env.action_space.n)
    value = _mlp(obs_dim, 1, cfg.network.num_cells, activation=nn.Tanh)  # the recipe's TorchRL MLP: Tanh
    actor = _mlp(obs_dim, num_actions, cfg.network.num_cells)  # categorical_policy_network: ReLU
    lr = cfg.optim.lr_qvalue
    groups = [{"params": value.parameters(), "lr": lr}, {"params": actor.parameters(), "lr": cfg.optim.lr_actor or lr}]
    optimizer = adam(groups, cfg)
    alpha, gamma, reward_scale = cfg.temperature.alpha, cfg.loss.gamma, cfg.env.reward_scale
    batch, horizon = cfg.batch_size, cfg.horizon
    ring = SliceRing(min(cfg.total_frames, cfg.buffer_size), obs_dim, 1, action_dtype=np.int64)

    def update() -> None:
        states, a, r, terminated = ring.slices(batch, horizon)
        values = value(states).squeeze(-1)  # V(s_0), …, V(s_L)
        log_pi = torch.log_softmax(actor(states[:, :-1]), -1).gather(-1, a).squeeze(-1)
        c = fn.path_consistency(values, reward_scale * r, log_pi, alpha, gamma, terminated=terminated)
        # loss_value + loss_actor: each ½ C² with the other network's term detached, so together they
        # have the gradient of ½ C² in both networks, which is what one backward of ½ C² gives.
        loss = 0.5 * c.square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return drive(cfg, env, ring, lambda obs: _sample_categorical(actor, obs), update)


PLAIN = {"sac": plain_sac, "soft_dqn": plain_soft_dqn, "sql": plain_sql, "discrete_sac": plain_discrete_sac,
         "pcl": plain_pcl}
