"""Continuous soft Q-learning (SQL), on MultiGoal by default.

Soft Q-learning (Haarnoja, Tang, Abbeel and Levine, 2017, "Reinforcement Learning with Deep
Energy-Based Policies") regresses ``Q_θ(s, a)`` on the soft Bellman target

    y = r + γ (1 − terminated) · V̂_θ̄(s'),     V(s') = α log ∫_A exp(Q_θ̄(s', a')/α) da'     (eq. 11)

and acts with a sampler of the energy-based policy ``π(a|s) ∝ exp(Q_θ(s, a)/α)``, trained towards
it. Here the algorithm is a composition chosen in the configuration:

- ``soft_value=uniform`` (the paper's eq. 10 with a uniform proposal), ``importance`` (a defensive
  mixture of the uniform box and the actor's density, or a Gaussian fitted next to a sampler that
  has none) or ``policy`` (``E_{a∼π}[Q − α log π]``, SAC's target; needs a density);
- ``sampler=svgd`` (the paper's amortized Stein variational gradient descent), ``langevin`` (MALA
  on ``Q/α`` at every action), ``svgd_mala`` (MALA refining the amortized sampler's samples) or
  ``gaussian`` (a tanh-Gaussian, SAC's actor);
- ``temperature=fixed|annealed|auto`` (``auto`` needs a sampler with a density).

Run ``python -m maxent_components.recipes.sql --help`` for every option. Examples::

    python -m maxent_components.recipes.sql demo=true              # MultiGoal with the paper's figures
    python -m maxent_components.recipes.sql env=pendulum stop_when_solved=true
    python -m maxent_components.recipes.sql -m sampler=svgd,langevin,gaussian soft_value=uniform,importance seed=0,1

On MultiGoal the run folder also holds the paper's figure 2: ``q_contours.png`` (``Q(s, ·)`` over
the action square at (−2.5, 0), (0, 0) and (2.5, 2.5) with sampled actions) and
``trajectories.png`` (evaluation episodes from the origin), plus ``learning_curve.png``.
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig

from maxent_components.envs.multigoal import ENV_ID as MULTIGOAL
from maxent_components.envs.multigoal import episode_paths
from maxent_components.recipes.common import off_policy_recipe
from maxent_components.recipes.options import OffPolicyConfig
from maxent_components.runs import RunDirectory, option

NAME = "sql"


@dataclasses.dataclass
class SQLConfig(OffPolicyConfig):
    demo: bool = option(
        False, "Demo preset: SQL on MultiGoal for 12k steps with a progress bar, then the figures.", run_only=True
    )


DEMO = {"total_frames": 12_000, "progress": True}


def build(cfg: DictConfig):
    """The parts of soft Q-learning: environments, Q network, sampler, soft value, loss, optimiser."""
    from maxent_components.modules import continuous_qvalue_network
    from maxent_components.recipes.parts import adam, make_envs, soft_q_loss
    from maxent_components.training import build_part

    env, eval_env, parts = make_envs(cfg)
    qnet = continuous_qvalue_network(
        parts["observation_dim"], parts["action_spec"].shape[-1], num_cells=parts["num_cells"]
    )
    actor = build_part(cfg.sampler, name="sampler", **parts)  # acts, and is trained towards exp(Q/α)
    soft_value = build_part(cfg.soft_value, name="soft_value", actor=actor, **parts)  # V̂(s') of the target
    temperature = build_part(cfg.temperature, name="temperature", **parts)
    loss = soft_q_loss(cfg, qnet, soft_value, actor, temperature)
    return env, eval_env, loss, adam(cfg, loss)


def train(cfg: DictConfig, run: RunDirectory, *, name: str = NAME) -> dict:
    from maxent_components.recipes.parts import off_policy_loop

    env, eval_env, loss, optimizer = build(cfg)
    loop = off_policy_loop(cfg, loss, optimizer, env=env, eval_env=eval_env, run=run, name=name)
    summary = loop.run()  # before reading last_rollouts: the run's evaluations replace that list
    return finish(cfg, run, loss, loop.last_rollouts, summary)


def finish(cfg: DictConfig, run: RunDirectory, loss, rollouts, summary: dict) -> dict:
    """``summary`` with the run's figures drawn into its folder (unless ``plots=false``)."""
    if cfg.plots:
        summary["figures"] = figures(cfg, run, loss, rollouts, summary["history"])
    return summary


def figures(cfg: DictConfig, run: RunDirectory, loss, rollouts, history) -> dict[str, str]:
    """The learning curve and, on MultiGoal, the paper's figure: Q contours and trajectories."""
    import torch

    from maxent_components.plotting import (
        plot_learning_curve,
        plot_multigoal_trajectories,
        plot_q_contours,
    )

    multigoal = cfg.env.name == MULTIGOAL
    keys = ["eval_return", "goals_reached"] if multigoal else ["eval_return"]
    if multigoal and cfg.env.solved_metric == "success_rate":
        keys.append("success_rate")
    written = {"learning_curve": plot_learning_curve(history, keys=keys, path=run.path / "learning_curve.png")}
    if multigoal:
        title = f"{cfg.sampler._target_.rsplit('.', 1)[-1]}: Q(s, ·) and sampled actions"
        written["q_contours"] = plot_q_contours(
            loss.qfunction(),
            loss.actor,
            action_spec=loss.actor.action_spec,
            path=run.path / "q_contours.png",
            generator=torch.Generator().manual_seed(cfg.seed),
            title=title,
        )
        written["trajectories"] = plot_multigoal_trajectories(
            episode_paths(rollouts), path=run.path / "trajectories.png", goals=(cfg.env.kwargs or {}).get("goals")
        )
    return {key: str(path) for key, path in written.items()}


recipe = off_policy_recipe(
    NAME,
    train,
    build,
    description="Continuous soft Q-learning: SoftQLoss with a pluggable soft value and a sampler of exp(Q/alpha) that acts.",
    schema=SQLConfig,
    presets={"demo": DEMO},
    # Added after runs were recorded, at the value they used: those runs keep their identity.
    neutral={"sampler.bandwidth_scale": 1.0, "sampler.init.bandwidth_scale": 1.0, "sampler.anneal_from": 1.0,
             "sampler.anneal_steps": 0, "sampler.init.anneal_from": 1.0, "sampler.init.anneal_steps": 0},
    action_space="continuous",
    finish=finish,
)
main = recipe.main

if __name__ == "__main__":
    main()
