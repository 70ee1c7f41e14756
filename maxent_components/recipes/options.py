"""The option schema every off-policy recipe shares: the same names with the same meaning in each.

The pluggable parts are config groups (``env``, ``sampler``, ``soft_value``, ``temperature``); the
networks, the optimiser, the loss and the loop are plain options (``--help`` lists each with its
text). A recipe differs only by its defaults (``conf/<recipe>.yaml``) and by how it composes the parts
(:mod:`maxent_components.recipes.common`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from maxent_components.runs import RunConfig, group, option
from maxent_components.training.modes import AUTOCAST_DTYPES, COMPILE_MODES

__all__ = ["ENV_DOCS", "GROUPS", "SMOKE", "LossConfig", "NetworkConfig", "OffPolicyConfig", "OptimConfig"]

GROUPS = ("env", "sampler", "soft_value", "temperature")

#: the options of an ``env`` node (the other groups are documented by the classes they build)
ENV_DOCS = {
    "name": "Gymnasium id; module:Id-v0 imports the module that registers it.",
    "kwargs": "Keyword arguments of gym.make for training and evaluation.",
    "eval_kwargs": "Keyword arguments of gym.make for evaluation only.",
    "max_episode_steps": "Episode length (gym.make's TimeLimit) and the evaluation step limit.",
    "reward_scale": "Rewards are multiplied by it in the update (buffer and returns stay raw).",
    "solved_metric": "Evaluation metric of the solved bar (eval_return, or a task diagnostic).",
    "solved_threshold": "The bar: solved at the first evaluation whose metric reaches it (null: never).",
    "diagnostics": "Function of the evaluation rollouts returning the task's diagnostics (a dotted name, or a node with _target_ and its keyword arguments).",
}


@dataclasses.dataclass
class NetworkConfig:
    """The MLPs of the Q function and of the amortized samplers."""

    num_cells: list[int] = option([256, 256], "Hidden-layer widths of the Q and policy networks.")


@dataclasses.dataclass
class OptimConfig:
    """One Adam over loss.parameter_groups(): a learning rate per group (null: lr_qvalue)."""

    lr_qvalue: float = option(3e-4, "Adam learning rate of the Q ensemble.", gt=0)
    lr_actor: float | None = option(None, "Learning rate of the actor (and a trained proposal); null: lr_qvalue.", gt=0)
    lr_alpha: float | None = option(None, "Learning rate of a learned temperature; null: lr_qvalue.", gt=0)
    fused: bool = option(True, "Adam's fused kernel (one pass over all parameters per step; the same update up to "
                         "float rounding); false: PyTorch's default implementation.")


@dataclasses.dataclass
class LossConfig:
    """SoftQLoss and its targets."""

    num_qvalue_nets: int = option(1, "Q ensemble size; the target reduces the members' soft values.", ge=1)
    target_reduction: str = option("min", "Reduction of the members' soft values in the target.", choices=("min", "mean"))
    gamma: float = option(0.99, "Discount factor.", gt=0, le=1)
    loss_function: str = option("l2", "TD regression loss.", choices=("l2", "smooth_l1"))
    target_update: str = option(
        "soft", "Target parameters: Polyak averaging with tau, or a copy every hard_update_interval updates.",
        choices=("soft", "hard"),
    )
    tau: float = option(0.005, "Polyak rate of the soft target update.", gt=0, le=1)
    hard_update_interval: int = option(1000, "Updates between hard target copies.", ge=1)


@dataclasses.dataclass
class OffPolicyConfig(RunConfig):
    """The options of every off-policy recipe."""

    env: Any = group("The task (conf/env): its Gymnasium id, episode length, reward scale and solved bar.")
    sampler: Any = group("The policy sampler that acts and is trained towards exp(Q/alpha) (conf/sampler).")
    soft_value: Any = group("The soft-value estimator of the target V(s') (conf/soft_value).")
    temperature: Any = group("The temperature alpha: fixed, learned or annealed (conf/temperature).")
    alpha: float = option(
        1.0, "The temperature: its value (temperature=fixed) or its starting value (auto, annealed).", ge=0
    )
    network: NetworkConfig = option(NetworkConfig(), "Networks.")
    optim: OptimConfig = option(OptimConfig(), "Optimiser.")
    loss: LossConfig = option(LossConfig(), "Loss.")
    total_frames: int = option(100_000, "Environment-step budget.", ge=1)
    init_random_frames: int = option(1_000, "Uniformly random steps before the actor acts and learning starts.", ge=0)
    frames_per_batch: int = option(1, "Environment steps per collector batch (the updates owed follow each batch).", ge=1)
    num_envs: int = option(1, "Copies of the environment stepped together in this process (Gymnasium's SyncVectorEnv), "
                           "sharing each step's TorchRL and policy overhead; frames_per_batch must be a multiple.", ge=1,
                           neutral=True)
    population: int = option(1, "Members trained together in one process: seeds seed..seed+N-1 as one stacked set "
                             "of networks (torch.vmap), one environment each; every member writes the run folder "
                             "of its seed below this run's (seed=<s>/).", ge=1, neutral=True)
    utd_ratio: float = option(1.0, "Gradient updates per environment step (at most 1000: more would not finish a run).",
                              gt=0, le=1000)
    batch_size: int = option(256, "Minibatch size of each update.", ge=1)
    buffer_size: int = option(1_000_000, "Replay buffer capacity (uniform sampling).", ge=1)
    eval_interval: int = option(5_000, "Evaluate every this many environment steps (and at the end).", ge=1)
    eval_episodes: int = option(5, "Episodes per evaluation.", ge=1)
    eval_exploration: str = option(
        "deterministic", "Evaluation actions: the policy's mode or mean, or samples of it.",
        choices=("deterministic", "random"),
    )
    eval_random_episodes: int = option(
        0, "Further evaluation episodes with sampled actions, reported as eval_return_random.", ge=0
    )
    log_interval: int = option(1_000, "Log a row of metrics every this many environment steps.", ge=1, run_only=True)
    checkpoint_interval: int | None = option(
        None, "Environment steps between checkpoints a relaunch resumes from (null: a tenth of total_frames).",
        ge=1, run_only=True,
    )
    stop_when_solved: bool = option(False, "Stop at the first evaluation that meets the env's solved bar.")
    autocast: str = option("none", "Run each update's losses under torch.autocast in this dtype (bfloat16: faster "
                           "matrix multiplies on CPUs with bfloat16 units, coarser Q-values; acting and evaluation "
                           "stay float32).", choices=AUTOCAST_DTYPES)
    device: str = option("cpu", "Where the networks, the updates and the replay buffer live (cpu, cuda, cuda:N, mps); "
                         "the environments step on the CPU and hand their tensors over to it.")
    compile: str = option("none", "Compile each update (losses, backward, optimiser step, target update) with "
                          "torch.compile in this mode after one eager update (seconds to a minute of compiling).",
                          choices=COMPILE_MODES)
    init_from: str | None = option(
        None, "A finished run whose networks (Q, targets, actor) this run starts from (fine-tuning): its folder, "
        "or a sweep folder holding one finished run with this run's seed. Schedules are this run's own: an "
        "annealing sampler starts its schedule again (sampler.anneal_from=1 sampler.anneal_steps=0 keeps a "
        "pretrained sampler as trained).",
    )
    plots: bool = option(True, "Write the figures of the run (learning curve; task figures).", run_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_random_frames >= self.total_frames:
            raise ValueError(f"init_random_frames={self.init_random_frames} must be below total_frames={self.total_frames}: "
                             f"the run would make no update.")
        if self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size={self.buffer_size} must hold at least one minibatch (batch_size={self.batch_size}).")
        if any(width < 1 for width in self.network.num_cells):
            raise ValueError(f"network.num_cells={list(self.network.num_cells)} must hold positive widths "
                             f"([] for no hidden layer).")


#: ``smoke=true``: a few hundred steps with small networks (keys a chosen part lacks are skipped).
SMOKE = {
    "total_frames": 200,
    "init_random_frames": 100,
    "frames_per_batch": 50,
    "batch_size": 16,
    "buffer_size": 1_000,
    "eval_interval": 200,
    "eval_episodes": 2,
    "log_interval": 100,
    "network.num_cells": [32],
    "soft_value.num_samples": 4,
    "sampler.num_particles": 4,
    "sampler.num_steps": 2,
    "sampler.init.num_particles": 4,
    "progress": False,
}
