"""Discrete soft actor-critic on CartPole-v1.

Discrete SAC (Christodoulou, 2019, "Soft Actor-Critic for Discrete Action Settings") trains

- a critic ``Q_θ`` (an ensemble of two, clipped double-Q) on the soft Bellman target of the policy,
  ``y = r + γ (1 − terminated) min_i Σ_a' π_φ(a'|s')(Q_θ̄_i(s', a') − α log π_φ(a'|s'))`` (eq. 10);
- an actor ``π_φ`` on ``J_π(φ) = E_s[Σ_a π_φ(a|s)(α log π_φ(a|s) − min_i Q_θ_i(s, a))]`` (eq. 12);
- the temperature on ``J(α) = E_s[log α · (H(π_φ(·|s)) − H̄)]`` (Haarnoja et al., 2018,
  "Soft Actor-Critic Algorithms and Applications", eq. 18) towards a target entropy ``H̄``.

In this library it is the composition

    sampler = CategoricalSampler(qnet, policy_net, alpha=AutoTemperature(H̄))
    SoftQLoss(qnet, PolicySoftValue(qnet, sampler), num_qvalue_nets=2) + sampler.loss

trained from a TorchRL collector and a uniform replay buffer, with ``SoftUpdate`` for the target.
With two actions a target entropy of ``0.6 log 2`` works; ``0.9 log 2`` or more makes ``α`` grow
without bound (the policy cannot be that random and still balance the pole).

Run ``python recipes/discrete_sac.py --help`` for every option. Examples::

    python recipes/discrete_sac.py seed=1
    python recipes/discrete_sac.py -m seed=0,1,2 hydra.sweep.dir=sweeps/discrete_sac

By default training stops at the first evaluation whose mean return reaches ``target_return`` and
records ``solved_at_step``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torchrl.envs import GymEnv
from torchrl.objectives import SoftUpdate

from maxent_components.modules.qvalue import discrete_qvalue_network
from maxent_components.objectives.soft_q import SoftQLoss
from maxent_components.runs import (
    EpisodeReturns,
    NonFiniteGuard,
    RunConfig,
    RunDirectory,
    apply_presets,
    evaluate,
    finished_summary,
    option,
    progress_bar,
    register_config,
    seed_everything,
    set_threads,
)
from maxent_components.samplers.categorical import (
    CategoricalSampler,
    categorical_policy_network,
)
from maxent_components.soft_value import PolicySoftValue
from maxent_components.temperature import AutoTemperature
from maxent_components.training import (
    Cadence,
    PhaseTimer,
    RunningMeans,
    UpdateSchedule,
    off_policy_collector,
    solved_report,
    uniform_replay_buffer,
)

NAME = "discrete_sac"
DESCRIPTION = (
    "Discrete SAC: SoftQLoss(PolicySoftValue(CategoricalSampler)) with a Q ensemble, the "
    "CategoricalSampler's actor loss and an AutoTemperature, on a discrete-action Gymnasium task "
    "(CartPole-v1 by default), trained from a TorchRL collector and a uniform replay buffer. "
    "Stops at the first evaluation whose mean return reaches target_return."
)


@dataclass
class DiscreteSACConfig(RunConfig):
    env_name: str = option("CartPole-v1", "Gymnasium environment id (discrete actions).")
    total_frames: int = option(100_000, "Environment-step budget.", gt=0)
    init_random_frames: int = option(1_000, "Steps of uniformly random actions before learning starts.", ge=0)
    frames_per_batch: int = option(8, "Environment steps per collector batch.", gt=0)
    utd_ratio: float = option(0.5, "Gradient updates (critic, actor and α) per environment step.", gt=0)
    buffer_size: int = option(100_000, "Replay buffer capacity (uniform sampling).", gt=0)
    batch_size: int = option(128, "Minibatch size of each update.", gt=0)
    hidden_size: int = option(128, "Width of each hidden layer of the Q and policy networks.", gt=0)
    num_layers: int = option(2, "Number of hidden layers of the Q and policy networks.", gt=0)
    qvalue_lr: float = option(1e-3, "Adam learning rate of the Q networks.", gt=0)
    actor_lr: float = option(3e-4, "Adam learning rate of the policy network.", gt=0)
    alpha_lr: float = option(3e-4, "Adam learning rate of log α.", gt=0)
    gamma: float = option(0.99, "Discount factor.", gt=0, le=1)
    alpha_init: float = option(1.0, "Initial temperature α.", gt=0)
    target_entropy_ratio: float = option(
        0.6, "Target entropy as a fraction of the maximum, H̄ = ratio · log |A|.", gt=0, le=1
    )
    tau: float = option(0.005, "Polyak rate of the target networks (SoftUpdate tau).", gt=0, le=1)
    num_qvalue_nets: int = option(2, "Q ensemble size; targets and actor use the ensemble minimum.", gt=0)
    max_episode_steps: int = option(500, "Step cap of evaluation episodes.", gt=0)
    eval_interval: int = option(2_000, "Evaluate every this many environment steps.", gt=0)
    eval_episodes: int = option(5, "Episodes per evaluation.", gt=0)
    eval_exploration: str = option(
        "deterministic",
        "Evaluation policy: the most probable action (deterministic) or a policy sample (random).",
        choices=("deterministic", "random"),
    )
    target_return: float | None = option(
        400.0, "Stop at the first evaluation with mean return >= this (null: train for total_frames)."
    )
    log_interval: int = option(1_000, "Write a metrics.csv row every this many environment steps.", gt=0)
    checkpoint: bool = option(True, "Save checkpoint.pt (Q, target, policy, temperature, optimisers) at the end.")
    smoke: bool = option(False, "Tiny-budget preset for tests (a few hundred steps).")
    demo: bool = option(False, "Demo preset: train until solved (or 100k steps) and print a short summary.")


SMOKE = {
    "total_frames": 600,
    "init_random_frames": 200,
    "frames_per_batch": 50,
    "batch_size": 32,
    "buffer_size": 1_000,
    "eval_interval": 300,
    "eval_episodes": 1,
    "log_interval": 100,
    "max_episode_steps": 100,
    "progress": False,
}
DEMO = {
    "total_frames": 100_000,
    "target_return": 400.0,
}

register_config(NAME, DiscreteSACConfig, description=DESCRIPTION)


def train(cfg: DiscreteSACConfig, run: RunDirectory) -> dict:
    """Train discrete SAC as configured by ``cfg``, writing into ``run``; return the summary."""
    set_threads(cfg.threads)
    env = GymEnv(cfg.env_name)
    eval_env = GymEnv(cfg.env_name)
    seed_everything(cfg.seed, env, eval_env)
    action_spec = env.action_spec
    observation_dim = env.observation_spec["observation"].shape[-1]
    num_actions = action_spec.space.n

    cells = [cfg.hidden_size] * cfg.num_layers
    qnet = discrete_qvalue_network(observation_dim, num_actions, num_cells=cells)
    policy_net = categorical_policy_network(observation_dim, num_actions, num_cells=cells)
    temperature = AutoTemperature(cfg.target_entropy_ratio * math.log(num_actions), alpha_init=cfg.alpha_init)
    # Discrete SAC: the policy soft value of the categorical actor as target; the actor, trained
    # towards softmax(min_i Q_i/α), acts; α is learned towards the target entropy.
    loss_module = SoftQLoss(
        qnet,
        PolicySoftValue(),
        actor=CategoricalSampler(policy_network=policy_net, action_spec=action_spec),
        alpha=temperature,
        num_qvalue_nets=cfg.num_qvalue_nets,
        action_spec=action_spec,
    )
    loss_module.make_value_estimator(gamma=cfg.gamma)
    sampler = loss_module.actor
    target_update = SoftUpdate(loss_module, tau=cfg.tau)
    optimizer = torch.optim.Adam(
        loss_module.parameter_groups(lr_qvalue=cfg.qvalue_lr, lr_actor=cfg.actor_lr, lr_alpha=cfg.alpha_lr)
    )

    collector = off_policy_collector(
        env,
        sampler,
        frames_per_batch=cfg.frames_per_batch,
        total_frames=cfg.total_frames,
        init_random_frames=cfg.init_random_frames,
    )
    buffer = uniform_replay_buffer(cfg.buffer_size, batch_size=cfg.batch_size)
    guard = NonFiniteGuard()
    episodes = EpisodeReturns()

    run.set_metrics_columns(
        ["loss_qvalue", "loss_actor", "soft_value", "entropy", "alpha", "train_return", "eval_return", "updates", "fps"]
    )
    # Where the wall time goes, reported in the summary: being TorchRL-native must not mean slow.
    timer = PhaseTimer("collect", "update", "eval")
    schedule = UpdateSchedule(utd_ratio=cfg.utd_ratio, learning_starts=cfg.init_random_frames)
    eval_cadence, log_cadence = Cadence(cfg.eval_interval), Cadence(cfg.log_interval)
    logged = RunningMeans()
    frames = updates = 0
    eval_return = None
    best_eval = float("-inf")
    solved_at = None

    with progress_bar(cfg.total_frames, enabled=cfg.progress, desc=NAME) as bar:
        for batch in timer.iterate(collector, "collect"):
            batch = batch.reshape(-1)
            frames += batch.numel()
            buffer.extend(batch)
            episodes.update(batch.get(("next", "reward")), batch.get(("next", "done")))

            with timer("update"):
                for _ in range(schedule.due(frames, batch.numel())):
                    losses = loss_module(buffer.sample())
                    optimizer.zero_grad(set_to_none=True)
                    (losses["loss_qvalue"] + losses["loss_actor"] + losses["loss_alpha"]).backward()
                    optimizer.step()
                    target_update.step()
                    updates += 1
                    logged.add(
                        loss_qvalue=losses["loss_qvalue"],
                        soft_value=losses["soft_value"],
                        loss_actor=losses["loss_actor"],
                        entropy=losses["entropy"],
                    )

            # The last batch is always evaluated, wherever it falls in the cadence.
            evaluated = eval_cadence.due(frames) or frames >= cfg.total_frames
            if evaluated:
                with timer("eval"):
                    eval_return = evaluate(
                        eval_env,
                        sampler,
                        num_episodes=cfg.eval_episodes,
                        max_steps=cfg.max_episode_steps,
                        exploration=cfg.eval_exploration,
                    )
                best_eval = max(best_eval, eval_return)
                if solved_at is None and cfg.target_return is not None and eval_return >= cfg.target_return:
                    solved_at = frames

            if log_cadence.due(frames) or evaluated:
                means = logged.pop()
                guard.check(means, step=frames)  # once per log interval: a NaN loss makes its mean NaN
                run.log(
                    frames,
                    **means,
                    alpha=float(sampler.alpha),
                    train_return=episodes.mean_recent(),
                    eval_return=eval_return if evaluated else None,
                    updates=updates,
                    fps=frames / max(timer.elapsed(), 1e-9),
                )
            bar.update(batch.numel(), eval=eval_return if eval_return is not None else float("nan"))
            if solved_at is not None:
                break
    collector.shutdown()
    wall_time = timer.elapsed()

    if cfg.checkpoint:
        run.save_checkpoint(
            {"loss_module": loss_module, "optimizer": optimizer},
            step=frames,
            extra={"config": asdict(cfg)},
        )
    summary = {
        "algorithm": NAME,
        "env_name": cfg.env_name,
        "seed": cfg.seed,
        "eval_return_mean": eval_return,
        "best_eval_return": best_eval if eval_return is not None else None,
        "target_return": cfg.target_return,
        "solved": solved_at is not None,
        "solved_at_step": solved_at,
        "env_steps": frames,
        "updates": updates,
        "train_episodes": episodes.count,
        "wall_time_s": wall_time,
        **timer.summary(),
        "alpha": float(sampler.alpha),
        "target_entropy": float(temperature.target_entropy),
        "run_dir": str(run.path),
        "config": asdict(cfg),
    }
    env.close()
    eval_env.close()
    return summary


@hydra.main(version_base=None, config_name=NAME)
def main(dict_cfg: DictConfig) -> dict | None:
    cfg: DiscreteSACConfig = apply_presets(OmegaConf.to_object(dict_cfg), {"smoke": SMOKE, "demo": DEMO})
    run = RunDirectory.from_hydra()
    if (finished := finished_summary(NAME, run, skip_finished=cfg.skip_finished)) is not None:
        return finished
    with run:
        summary = train(cfg, run)
        run.finish(summary)
    if cfg.demo or not cfg.progress:
        print(solved_report(summary))
    return summary


if __name__ == "__main__":
    main()
