"""``population=N``: a recipe's members, seeds ``seed … seed+N−1``, trained together in one process.

:func:`train_population` builds each member's parts as a single run of its seed would (the same
initial networks), stacks them (:class:`~maxent_components.training.population.Population`) and
trains them with :class:`~maxent_components.training.population_loop.PopulationLoop` on ``N``
environments stepped together, member ``k``'s seeded as its own run's. Each member writes a run
folder of its own below the population's (``seed=<s>/``: summary, logs, figures and a checkpoint of
its networks, so that the study tool, ``init_from`` and ``compose`` read it as a run); the
population's folder holds the shared checkpoint a killed population resumes from. A member's
config is its seed's with ``population`` recorded, so its run is never mistaken for one trained alone.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from maxent_components.runs import RunDirectory, RunFailure, RunLock, config_identity, seed_everything
from maxent_components.training import Evaluator, make_env, target_updater, task_diagnostics
from maxent_components.training.population import Population
from maxent_components.training.population_loop import PopulationLoop
from maxent_components.training.warm_start import warm_start

__all__ = ["member_config", "population_adam", "train_population"]


def member_config(cfg: DictConfig, index: int) -> DictConfig:
    """Member ``index``'s config: the population's with the seed ``cfg.seed + index``."""
    config = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    config.seed = cfg.seed + index
    return config


def population_adam(cfg: DictConfig, population: Population) -> torch.optim.Adam:
    """One Adam over the stacked parameters, with the learning rate of each member tensor's group
    (``optim.lr_qvalue``, ``lr_actor``, ``lr_alpha``) as for a single run (:func:`recipes.parts.adam`)."""
    from tensordict import TensorDict

    o, lr = cfg.optim, cfg.optim.lr_qvalue
    template = population.template
    keys = {id(leaf): key for key, leaf in TensorDict.from_module(template).items(include_nested=True, leaves_only=True)}
    groups = []
    for group in template.parameter_groups(lr_actor=o.lr_actor or lr, lr_alpha=o.lr_alpha or lr):
        params = [population.params.get(keys[id(p)]) for p in group["params"] if id(p) in keys]
        params = [p for p in params if isinstance(p, torch.nn.Parameter)]
        if params:
            groups.append({**group, "params": params})
    return torch.optim.Adam(groups, lr=lr, fused=True if o.fused else None)


def train_population(cfg: DictConfig, run: RunDirectory, *, build, name: str, finish) -> dict:
    """Train the ``cfg.population`` members of the recipe whose parts ``build(cfg)`` makes; ``finish(cfg,
    run, loss, rollouts, summary)`` draws a member's figures into its folder. Returns the population's
    summary (its members' folders); each member's run folder is finished with its own."""
    n, task = cfg.population, cfg.env
    configs = [member_config(cfg, k) for k in range(n)]
    resuming = run.has_checkpoint()
    runs, locks = [], []
    try:
        for member in configs:
            folder = RunDirectory(run.path / f"seed={member.seed}")
            locks.append(RunLock(folder.path).acquire())
            config = OmegaConf.to_container(member, resolve=True)
            _, digest = config_identity(config, run.run_only, run.neutral)
            folder.status(digest, config)  # a folder of another config is refused, never overwritten
            folder.start(config, digest, run_only=run.run_only, neutral=run.neutral, resume=resuming)
            runs.append(folder)
        return _train(cfg, run, configs, runs, build=build, name=name, finish=finish, task=task)
    finally:
        for lock in locks:
            lock.release()


def _train(cfg, run, configs, runs, *, build, name, finish, task) -> dict:
    losses, eval_envs, started = [], [], []
    for member in configs:  # each member's parts as its own run would build them
        seed_everything(member.seed)
        env, eval_env, loss, _ = build(member)
        env.close()
        if member.get("init_from"):
            started.append(warm_start(loss, member.init_from, seed=member.seed))
        losses.append(loss)
        eval_envs.append(eval_env)
    seed_everything(cfg.seed)
    population = Population(losses)
    env = make_env(task, seed=cfg.seed, device=cfg.device, num_envs=cfg.population)  # copy k seeded seed + k
    diagnostics = task_diagnostics(task)
    evaluators = [Evaluator(eval_env, population.template.actor, num_episodes=cfg.eval_episodes,
                            max_steps=task.max_episode_steps, exploration=cfg.eval_exploration, diagnostics=diagnostics,
                            random_episodes=cfg.eval_random_episodes) for eval_env in eval_envs]
    updater = target_updater(population.template, kind=cfg.loss.target_update, tau=cfg.loss.tau,
                             interval=cfg.loss.hard_update_interval)
    loop = PopulationLoop(
        population, population_adam(cfg, population), env=env, target_updater=updater, evaluators=evaluators,
        runs=runs, run=run, seeds=[member.seed for member in configs], total_frames=cfg.total_frames,
        frames_per_batch=cfg.frames_per_batch, init_random_frames=cfg.init_random_frames, utd_ratio=cfg.utd_ratio,
        batch_size=cfg.batch_size, buffer_size=cfg.buffer_size, eval_interval=cfg.eval_interval,
        log_interval=cfg.log_interval, checkpoint_interval=cfg.checkpoint_interval, reward_scale=task.reward_scale,
        solved_metric=task.solved_metric, solved_threshold=task.solved_threshold, stop_when_solved=cfg.stop_when_solved,
        logger_backend=cfg.logger.backend, progress=cfg.progress, name=name, env_name=task.name, autocast=cfg.autocast,
    )
    try:
        summaries = loop.run()["members"]
    except (RunFailure, KeyboardInterrupt) as err:
        members = (getattr(err, "summary", None) or {}).get("members") or [{}] * len(runs)
        for folder, summary in zip(runs, members):
            folder.fail(summary, f"the population stopped: {err}")
        raise
    finally:
        env.close()
        for eval_env in eval_envs:
            eval_env.close()
    for index, (member, folder, summary) in enumerate(zip(configs, runs, summaries)):
        if started:
            summary["started_from"] = started[index]
        with population.member(index) as loss:
            summary = finish(member, folder, loss, loop.members[index].last_rollouts, summary)
        folder.save_checkpoint({"loss": population.member_state_dict(index)}, step=summary["env_steps"])
        folder.finish({"recipe": name, **summary})
    return {"population": {"size": len(runs), "seeds": [m.seed for m in configs], "members": [str(f.path) for f in runs]},
            "env_steps": summaries[0]["env_steps"], "wall_time_s": summaries[0]["wall_time_s"]}
