"""The parts every off-policy recipe builds from its config: environments, loss, optimiser, loop.

The recipes import this module inside their ``build`` and ``train`` (it loads PyTorch, TorchRL and
the library's components), so that their command line answers ``--help`` and usage errors before
any of that is loaded. The options themselves (one schema for every off-policy recipe) live in
:mod:`maxent_components.recipes.options`; the command line in :mod:`maxent_components.recipes.common`.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from maxent_components.checks import check_device, check_positive_float
from maxent_components.objectives import SoftQLoss
from maxent_components.runs import RunDirectory
from maxent_components.training import (
    Evaluator,
    OffPolicyLoop,
    make_env,
    observation_dim,
    target_updater,
    task_diagnostics,
)
from maxent_components.training.warm_start import warm_start
from maxent_components.validation import EnvironmentDataError

__all__ = ["action_count", "adam", "check_task", "make_envs", "off_policy_loop", "soft_q_loss", "with_learning_curve"]


def make_envs(cfg: DictConfig):
    """``(env, eval_env, runtime arguments of the parts)``: the task's training envs (``cfg.num_envs``
    copies stepped together) and its evaluation env, their tensors on ``cfg.device``."""
    device = check_device("device", cfg.device)
    if cfg.frames_per_batch % cfg.num_envs:
        raise ValueError(
            f"frames_per_batch={cfg.frames_per_batch} must be a multiple of num_envs={cfg.num_envs}: "
            f"a collector batch holds the same number of steps of every environment."
        )
    env = make_env(cfg.env, seed=cfg.seed, device=device, num_envs=cfg.num_envs)
    eval_env = make_env(cfg.env, seed=cfg.seed, evaluation=True, device=device)
    context = {
        "action_spec": env.action_spec_unbatched,
        "observation_dim": observation_dim(env),
        "num_cells": tuple(cfg.network.num_cells),
    }
    return env, eval_env, context


def action_count(cfg: DictConfig, spec) -> int:
    """The number of actions of a finite action set, or a ``ValueError`` naming the task."""
    if not hasattr(spec.space, "n"):
        raise ValueError(f"env={cfg.env.name} has continuous actions; this recipe needs a finite action set "
                         f"(e.g. env=cartpole; the sql and sac recipes take continuous ones).")
    return int(spec.space.n)


def check_task(cfg: DictConfig, eval_env, actor) -> None:
    """The ``env`` options that only the loop reads: the reward scale, the diagnostics function (which
    must take the evaluation rollouts and return numbers) and the solved metric (which an evaluation
    must report); a two-step evaluation tells."""
    task = cfg.env
    check_positive_float("env.reward_scale", task.reward_scale)
    diagnostics = task_diagnostics(task)
    bar = task.solved_metric is not None and task.solved_threshold is not None
    if diagnostics is None and not bar:
        return
    evaluator = Evaluator(eval_env, actor, num_episodes=1, max_steps=2, diagnostics=_checked(task, diagnostics),
                          random_episodes=min(cfg.eval_random_episodes, 1))
    try:
        metrics, _ = evaluator()
    except EnvironmentDataError:
        return  # a faulty environment: the run reports it with its frame, as a failure of the run
    if bar and task.solved_metric not in metrics:
        raise ValueError(f"env.solved_metric={task.solved_metric!r} is not a metric of this task's evaluations; "
                         f"choose one of {', '.join(sorted(metrics))}.")


def _checked(task, diagnostics):
    """``diagnostics`` whose failure, or a result that is not ``{name: number}``, names ``env.diagnostics``."""
    if diagnostics is None:
        return None
    shown = task.diagnostics if isinstance(task.diagnostics, str) else task.diagnostics.get("_target_")

    def call(rollouts):
        try:
            result = diagnostics(rollouts)
        except Exception as err:
            raise ValueError(f"env.diagnostics={shown} failed on the evaluation rollouts ({type(err).__name__}: "
                             f"{err}); it must take the list of rollouts and return {{name: number}}.") from None
        if not isinstance(result, dict) or not all(isinstance(v, (int, float)) for v in result.values()):
            raise ValueError(f"env.diagnostics={shown} returned {type(result).__name__} {str(result)[:60]}; "
                             f"it must return {{name: number}}.")
        return result

    return call


def soft_q_loss(cfg: DictConfig, qnet, soft_value, actor, temperature) -> SoftQLoss:
    """The ``SoftQLoss`` of ``cfg.loss`` with its TD(0) estimator at ``cfg.loss.gamma``, on ``cfg.device``."""
    options = cfg.loss
    loss = SoftQLoss(
        qnet, soft_value, actor=actor, alpha=temperature, num_qvalue_nets=options.num_qvalue_nets,
        target_reduction=options.target_reduction, loss_function=options.loss_function,
    )
    loss.make_value_estimator(gamma=options.gamma)
    return loss.to(cfg.device)


def adam(cfg: DictConfig, loss) -> torch.optim.Adam:
    """One Adam over the loss's parameter groups (a ``SoftQLoss``'s Q, actor and α, or a
    ``PathConsistencyLoss``'s value and actor), a learning rate per group; fused with ``optim.fused``."""
    o, lr = cfg.optim, cfg.optim.lr_qvalue
    if isinstance(loss, SoftQLoss):
        groups = loss.parameter_groups(lr_actor=o.lr_actor or lr, lr_alpha=o.lr_alpha or lr)
    else:
        groups = loss.parameter_groups(lr_value=lr, lr_actor=o.lr_actor or lr)
    return torch.optim.Adam(groups, lr=lr, fused=True if o.fused else None)  # None: PyTorch's default for the device


def off_policy_loop(
    cfg: DictConfig, loss, optimizer, *, env, eval_env, run: RunDirectory, name: str, slice_len: int | None = None
) -> OffPolicyLoop:
    """The library's loop with the options of ``cfg`` (evaluation, cadences, the env's solved bar);
    target updates for a loss with target parameters, trajectory slices of ``slice_len`` when given.
    With ``init_from``, the loss starts from that finished run's networks (a resumed run then
    restores its own checkpoint over them)."""
    task = cfg.env
    started_from = warm_start(loss, cfg.init_from, seed=cfg.seed) if cfg.get("init_from") else None
    diagnostics = task_diagnostics(task)
    evaluator = Evaluator(
        eval_env, loss.actor, num_episodes=cfg.eval_episodes, max_steps=task.max_episode_steps,
        exploration=cfg.eval_exploration, diagnostics=diagnostics, random_episodes=cfg.eval_random_episodes,
    )
    updater = None
    if isinstance(loss, SoftQLoss):  # the losses with target parameters
        updater = target_updater(loss, kind=cfg.loss.target_update, tau=cfg.loss.tau, interval=cfg.loss.hard_update_interval)
    loop = OffPolicyLoop(
        loss, optimizer, env=env, target_updater=updater, evaluator=evaluator, run=run,
        total_frames=cfg.total_frames, frames_per_batch=cfg.frames_per_batch,
        init_random_frames=cfg.init_random_frames, utd_ratio=cfg.utd_ratio, batch_size=cfg.batch_size,
        buffer_size=cfg.buffer_size, slice_len=slice_len, eval_interval=cfg.eval_interval, log_interval=cfg.log_interval,
        checkpoint_interval=cfg.checkpoint_interval, reward_scale=task.reward_scale,
        solved_metric=task.solved_metric, solved_threshold=task.solved_threshold,
        stop_when_solved=cfg.stop_when_solved, logger_backend=cfg.logger.backend, progress=cfg.progress, name=name,
        env_name=task.name,
        autocast=cfg.autocast, compile=cfg.compile,
    )
    loop.started_from = started_from  # recorded in the summary: the run (and its env steps) it started from
    return loop


def with_learning_curve(cfg: DictConfig, run: RunDirectory, summary: dict) -> dict:
    """``summary`` with ``learning_curve.png`` drawn into the run folder (unless ``plots=false``)."""
    if cfg.plots:
        from maxent_components.plotting import plot_learning_curve

        curve = plot_learning_curve(summary["history"], keys=["eval_return"], path=run.path / "learning_curve.png")
        summary["figures"] = {"learning_curve": str(curve)}
    return summary
