"""Soft DQN (soft Q-learning over a discrete action set) on CartPole-v1.

Soft DQN regresses ``Q_θ(s, a)`` on the soft Bellman target

    y = r + γ (1 − terminated) · α log Σ_a' exp(Q_θ̄(s', a')/α)

(Haarnoja et al., 2017, "Reinforcement Learning with Deep Energy-Based Policies", eq. 11, in the
discrete form of Fox et al., 2016, "Taming the Noise in Reinforcement Learning via Soft Updates";
``θ̄`` is a Polyak-averaged target) and acts with the Boltzmann policy
``π(a|s) = softmax_a(Q_θ(s, a)/α)``. In this library it is the composition

    SoftQLoss(qnet, ExactSoftValue(qnet, alpha=α)) + BoltzmannSampler(qnet, alpha=α)

trained from a TorchRL collector and a uniform replay buffer, with ``SoftUpdate`` for the target.

Run ``python recipes/soft_dqn.py --help`` for every option. Examples::

    python recipes/soft_dqn.py seed=1 alpha=0.02
    python recipes/soft_dqn.py demo=true                  # train until solved, print a summary
    python recipes/soft_dqn.py -m seed=0,1,2 hydra.sweep.dir=sweeps/soft_dqn

CartPole returns oscillate after the task is first solved, so by default training stops at the
first evaluation whose mean return reaches ``target_return`` and records ``solved_at_step``.
"""

from __future__ import annotations

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
from maxent_components.samplers.boltzmann import BoltzmannSampler
from maxent_components.soft_value import ExactSoftValue
from maxent_components.training import (
    Cadence,
    PhaseTimer,
    RunningMeans,
    UpdateSchedule,
    off_policy_collector,
    solved_report,
    uniform_replay_buffer,
)

NAME = "soft_dqn"
DESCRIPTION = (
    "Soft DQN: SoftQLoss(ExactSoftValue) + BoltzmannSampler on a discrete-action Gymnasium task "
    "(CartPole-v1 by default), trained from a TorchRL collector and a uniform replay buffer. "
    "Stops at the first evaluation whose mean return reaches target_return."
)


@dataclass
class SoftDQNConfig(RunConfig):
    env_name: str = option("CartPole-v1", "Gymnasium environment id (discrete actions).")
    total_frames: int = option(50_000, "Environment-step budget.", gt=0)
    init_random_frames: int = option(1_000, "Steps of uniformly random actions before learning starts.", ge=0)
    frames_per_batch: int = option(8, "Environment steps per collector batch.", gt=0)
    utd_ratio: float = option(1.0, "Gradient updates per environment step.", gt=0)
    buffer_size: int = option(100_000, "Replay buffer capacity (uniform sampling).", gt=0)
    batch_size: int = option(128, "Minibatch size of each update.", gt=0)
    hidden_size: int = option(128, "Width of each hidden layer of the Q network.", gt=0)
    num_layers: int = option(2, "Number of hidden layers of the Q network.", gt=0)
    lr: float = option(1e-3, "Adam learning rate of the Q network.", gt=0)
    gamma: float = option(0.99, "Discount factor.", gt=0, le=1)
    alpha: float = option(0.01, "Temperature α of the soft value and of the Boltzmann policy.", ge=0)
    tau: float = option(0.005, "Polyak rate of the target network (SoftUpdate tau).", gt=0, le=1)
    num_qvalue_nets: int = option(1, "Q ensemble size; the target takes the min of the soft values.", gt=0)
    max_episode_steps: int = option(500, "Step cap of evaluation episodes.", gt=0)
    eval_interval: int = option(2_000, "Evaluate every this many environment steps.", gt=0)
    eval_episodes: int = option(5, "Episodes per evaluation.", gt=0)
    eval_exploration: str = option(
        "deterministic",
        "Evaluation policy: the greedy action (deterministic) or a Boltzmann sample (random).",
        choices=("deterministic", "random"),
    )
    target_return: float | None = option(
        475.0, "Stop at the first evaluation with mean return >= this (null: train for total_frames)."
    )
    log_interval: int = option(1_000, "Write a metrics.csv row every this many environment steps.", gt=0)
    checkpoint: bool = option(True, "Save checkpoint.pt (Q and target parameters, optimiser) at the end.")
    smoke: bool = option(False, "Tiny-budget preset for tests (a few hundred steps).")
    demo: bool = option(False, "Demo preset: train until solved (or 60k steps) and print a short summary.")


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
    "total_frames": 60_000,
    "target_return": 475.0,
}

register_config(NAME, SoftDQNConfig, description=DESCRIPTION)


def train(cfg: SoftDQNConfig, run: RunDirectory) -> dict:
    """Train soft DQN as configured by ``cfg``, writing into ``run``; return the summary."""
    set_threads(cfg.threads)
    env = GymEnv(cfg.env_name)
    eval_env = GymEnv(cfg.env_name)
    seed_everything(cfg.seed, env, eval_env)
    action_spec = env.action_spec
    observation_dim = env.observation_spec["observation"].shape[-1]
    num_actions = action_spec.space.n

    qnet = discrete_qvalue_network(
        observation_dim, num_actions, num_cells=[cfg.hidden_size] * cfg.num_layers
    )
    # Soft DQN: the exact soft value as target, the Boltzmann policy of the online Q ensemble acts.
    loss_module = SoftQLoss(
        qnet,
        ExactSoftValue(),
        actor=BoltzmannSampler(action_spec=action_spec),
        alpha=cfg.alpha,
        num_qvalue_nets=cfg.num_qvalue_nets,
        action_spec=action_spec,
    )
    loss_module.make_value_estimator(gamma=cfg.gamma)
    sampler = loss_module.actor
    target_update = SoftUpdate(loss_module, tau=cfg.tau)
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=cfg.lr)

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

    run.set_metrics_columns(["loss_qvalue", "soft_value", "alpha", "train_return", "eval_return", "updates", "fps"])
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
                    losses["loss_qvalue"].backward()
                    optimizer.step()
                    target_update.step()
                    updates += 1
                    logged.add(loss_qvalue=losses["loss_qvalue"], soft_value=losses["soft_value"])

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
        "run_dir": str(run.path),
        "config": asdict(cfg),
    }
    env.close()
    eval_env.close()
    return summary


@hydra.main(version_base=None, config_name=NAME)
def main(dict_cfg: DictConfig) -> dict | None:
    cfg: SoftDQNConfig = apply_presets(OmegaConf.to_object(dict_cfg), {"smoke": SMOKE, "demo": DEMO})
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
