"""Continuous soft Q-learning (SQL) on MultiGoal or Pendulum-v1.

Soft Q-learning (Haarnoja, Tang, Abbeel and Levine, 2017, "Reinforcement Learning with Deep
Energy-Based Policies") regresses ``Q_θ(s, a)`` on the soft Bellman target

    y = r + γ (1 − terminated) · V̂_θ̄(s'),     V(s') = α log ∫_A exp(Q_θ̄(s', a')/α) da'     (eq. 11)

and acts with a sampler of the energy-based policy ``π(a|s) ∝ exp(Q_θ(s, a)/α)``. In this library
the algorithm is a composition, every part chosen in the configuration:

    SoftQLoss(qnet, UniformSoftValue | ImportanceSoftValue | PolicySoftValue)
        + SVGDSampler | LangevinSampler | GaussianSampler

- ``soft_value=uniform``: ``V̂ = α[logsumexp_k Q(s, a_k)/α − log K + log vol(A)]``, ``a_k ∼ U(A)``
  (the paper's eq. 10 with a uniform proposal, as in its reference code);
- ``soft_value=importance``: the same log-mean-exp with the proposal ``q = w U(A) + (1 − w) π``
  (a defensive mixture) when the sampler has a tractable density (``gaussian``), else ``q = U(A)``;
- ``soft_value=policy``: ``V̂^π = E_{a∼π}[Q(s, a) − α log π(a|s)]`` (SAC's critic target), which needs
  a tractable ``log π``: only with ``sampler=gaussian``.

``sampler=svgd`` is the paper's amortized Stein variational gradient descent sampler (section 3.2),
``langevin`` runs (Metropolis-adjusted) Langevin dynamics on ``Q/α`` at every action, and
``gaussian`` is a tanh-Gaussian trained on the reparameterised KL, as SAC's actor.

Training uses TorchRL parts: ``GymEnv`` (MultiGoal is registered as
``maxent_components/MultiGoal-v0``), a ``Collector``, a uniform ``ReplayBuffer`` over a
``LazyTensorStorage`` and ``HardUpdate`` / ``SoftUpdate`` for the target parameters.

Run ``python recipes/sql.py --help`` for every option. Examples::

    python recipes/sql.py demo=true                      # MultiGoal in a few minutes, with the figures
    python recipes/sql.py env=pendulum stop_when_solved=true
    python recipes/sql.py sampler=langevin soft_value=uniform seed=3
    python recipes/sql.py -m sampler=svgd,gaussian seed=0,1,2

On MultiGoal the run directory also holds the paper's figure (figure 2): ``q_contours.png``
(``Q(s, ·)`` over the action square at (−2.5, 0), (0, 0) and (2.5, 2.5) with sampled actions) and
``trajectories.png`` (evaluation episodes from the origin), plus ``learning_curve.png``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torchrl.envs import GymEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.objectives import HardUpdate, SoftUpdate

from maxent_components.envs.multigoal import ENV_ID as MULTIGOAL_ID
from maxent_components.envs.multigoal import goals_reached, register_envs
from maxent_components.modules import (
    continuous_qvalue_network,
    noise_input_policy_network,
    tanh_normal_actor_network,
)
from maxent_components.objectives import SoftQLoss
from maxent_components.samplers import (
    GaussianSampler,
    LangevinSampler,
    MixtureSampler,
    SVGDSampler,
    UniformSampler,
)
from maxent_components.soft_value import ImportanceSoftValue, PolicySoftValue, UniformSoftValue
from maxent_components.runs import (
    EpisodeReturns,
    NonFiniteGuard,
    RunConfig,
    RunDirectory,
    apply_presets,
    finished_summary,
    option,
    progress_bar,
    register_config,
    seed_everything,
    set_threads,
)
from maxent_components.training import (
    Cadence,
    PhaseTimer,
    RunningMeans,
    UpdateSchedule,
    off_policy_collector,
    uniform_replay_buffer,
)

NAME = "sql"
DESCRIPTION = (
    "Continuous soft Q-learning: SoftQLoss with a uniform, importance-sampled or policy soft value, "
    "and an SVGD, Langevin or Gaussian sampler of exp(Q/alpha), on MultiGoal (the paper's multimodal "
    "task) or Pendulum-v1. Options left null take the per-environment reference value listed in "
    "brackets."
)

ENVS = ("multigoal", "pendulum")
SAMPLERS = ("svgd", "langevin", "gaussian")
SOFT_VALUES = ("uniform", "importance", "policy")

#: Per-environment reference settings (DESIGN.md, "Reference SQL settings" and "Calibration facts").
ENV_DEFAULTS = {
    "multigoal": dict(
        gym_id=MULTIGOAL_ID,
        alpha=1.0,
        reward_scale=0.1,
        target_update="hard",
        max_episode_steps=30,
        eval_episodes=10,
        target_return=None,
    ),
    "pendulum": dict(
        gym_id="Pendulum-v1",
        alpha=0.2,
        reward_scale=1.0,
        target_update="soft",
        max_episode_steps=200,
        eval_episodes=5,
        target_return=-200.0,
    ),
}


@dataclass
class SQLConfig(RunConfig):
    env: str = option("multigoal", "Task: MultiGoal (2-D, four goals) or Pendulum-v1.", choices=ENVS)
    sampler: str = option(
        "svgd",
        "Policy sampler: amortized SVGD (the paper's), Langevin/MALA on Q/alpha, or a tanh-Gaussian (SAC actor).",
        choices=SAMPLERS,
    )
    soft_value: str = option(
        "uniform",
        "Soft-value estimator of the target: uniform log-mean-exp, importance-sampled log-mean-exp "
        "(defensive mixture proposal when the sampler has a density), or the policy soft value "
        "E[Q - alpha log pi] (needs sampler=gaussian).",
        choices=SOFT_VALUES,
    )
    total_frames: int = option(30_000, "Environment-step budget.", gt=0)
    init_random_frames: int = option(100, "Steps of uniformly random actions before learning starts.", ge=0)
    frames_per_batch: int = option(10, "Environment steps per collector batch (updates follow each batch).", gt=0)
    utd_ratio: float = option(1.0, "Gradient updates per environment step.", gt=0)
    buffer_size: int = option(1_000_000, "Replay buffer capacity (uniform sampling).", gt=0)
    batch_size: int = option(64, "Minibatch size of each update.", gt=0)
    hidden_size: int = option(128, "Width of each hidden layer of the Q and policy networks.", gt=0)
    num_layers: int = option(2, "Number of hidden layers of the Q and policy networks.", gt=0)
    lr_qvalue: float = option(3e-4, "Adam learning rate of the Q network.", gt=0)
    lr_sampler: float = option(3e-4, "Adam learning rate of the sampler's policy network (svgd, gaussian).", gt=0)
    gamma: float = option(0.99, "Discount factor.", gt=0, le=1)
    alpha: float | None = option(None, "Temperature alpha [multigoal 1.0, pendulum 0.2].", gt=0)
    reward_scale: float | None = option(
        None,
        "Rewards are multiplied by this before the update (the reference code's way of setting the "
        "temperature: scale c at alpha is alpha/c at scale 1) [multigoal 0.1, pendulum 1.0].",
        gt=0,
    )
    target_update: str | None = option(
        None,
        "Target parameters: hard copy every hard_update_interval updates, or Polyak averaging with "
        "tau [multigoal hard, pendulum soft].",
        choices=(None, "hard", "soft"),
    )
    hard_update_interval: int = option(1000, "Updates between hard target copies.", gt=0)
    tau: float = option(0.005, "Polyak rate of the soft target update.", gt=0, le=1)
    num_qvalue_nets: int = option(1, "Q ensemble size; the target takes the min of the members' soft values.", gt=0)
    num_value_samples: int = option(16, "Actions per next state in the soft-value estimate.", gt=0)
    importance_uniform_weight: float = option(
        0.5, "Weight of the uniform component of the importance proposal (soft_value=importance, sampler=gaussian).",
        gt=0, le=1,
    )
    num_particles: int = option(32, "SVGD particles per state in the sampler update.", gt=1)
    fixed_fraction: float = option(0.5, "Fraction of the SVGD particles held fixed (kernel centres).", gt=0, lt=1)
    bandwidth: str = option(
        "reference",
        "Median heuristic of the SVGD RBF bandwidth: the soft Q-learning code's formula or the SVGD paper's.",
        choices=("reference", "paper"),
    )
    langevin_steps: int = option(10, "Langevin steps per action (sampler=langevin).", gt=0)
    langevin_step_size: float = option(0.05, "Langevin step size epsilon (sampler=langevin).", gt=0)
    metropolis: bool = option(True, "Metropolis-adjust the Langevin steps (MALA) instead of ULA.")
    eval_interval: int = option(1_000, "Evaluate every this many environment steps.", gt=0)
    eval_episodes: int | None = option(
        None, "Episodes per evaluation (on MultiGoal they start at the origin) [multigoal 10, pendulum 5].", gt=0
    )
    eval_exploration: str = option(
        "random",
        "Evaluation policy: a sample of the policy (random) or its deterministic mode where the sampler has one.",
        choices=("random", "deterministic"),
    )
    target_return: float | None = option(
        None,
        "Bar on the mean evaluation return (Pendulum) [multigoal none, pendulum -200]. On MultiGoal the "
        "bar is all four goals reached by the evaluation episodes.",
    )
    stop_when_solved: bool = option(
        False, "Stop at the first evaluation meeting the bar (all four goals / target_return)."
    )
    log_interval: int = option(1_000, "Write a metrics.csv row every this many environment steps.", gt=0)
    plots: bool = option(True, "Write the figures (learning curve; on MultiGoal, Q contours and trajectories).")
    checkpoint: bool = option(True, "Save checkpoint.pt (Q, target and sampler parameters, optimisers) at the end.")
    smoke: bool = option(False, "Tiny-budget preset for tests (a few hundred steps, small nets).")
    demo: bool = option(
        False, "Demo preset: SQL on MultiGoal for 12k steps with a progress bar, then the figures' paths."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_combination(self)

    def resolved(self, name: str):
        """The value of option ``name``, or the environment's reference value when it is null."""
        value = getattr(self, name)
        return ENV_DEFAULTS[self.env][name] if value is None else value


def check_combination(cfg: SQLConfig) -> None:
    """Reject option combinations that have no meaning, naming the options involved."""
    if cfg.soft_value == "policy" and cfg.sampler != "gaussian":
        raise ValueError(
            f"option soft_value=policy needs a sampler with a tractable log-probability "
            f"(sampler=gaussian); sampler={cfg.sampler} has none. Use soft_value=uniform or importance."
        )


SMOKE = dict(
    total_frames=200,
    init_random_frames=100,
    frames_per_batch=50,
    batch_size=16,
    buffer_size=1_000,
    hidden_size=32,
    num_value_samples=4,
    num_particles=4,
    langevin_steps=2,
    eval_interval=200,
    eval_episodes=2,
    log_interval=100,
    progress=False,
)
DEMO = dict(env="multigoal", sampler="svgd", soft_value="uniform", total_frames=12_000, progress=True)

register_config(NAME, SQLConfig, description=DESCRIPTION)


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------
def make_env(cfg: SQLConfig, *, evaluation: bool = False) -> GymEnv:
    """The TorchRL environment; MultiGoal evaluation episodes start exactly at the origin."""
    if cfg.env == "multigoal":
        register_envs()
        # The paper's trajectories start at the origin; training keeps the N(0, 0.1²) start.
        kwargs = {"init_sigma": 0.0} if evaluation else {}
        return GymEnv(MULTIGOAL_ID, **kwargs)
    return GymEnv(ENV_DEFAULTS[cfg.env]["gym_id"])


def make_sampler(cfg: SQLConfig, action_spec, observation_dim: int, action_dim: int):
    """The policy sampler chosen by ``cfg.sampler``; the loss binds it to its Q ensemble and α."""
    num_cells = [cfg.hidden_size] * cfg.num_layers
    if cfg.sampler == "svgd":
        policy = noise_input_policy_network(observation_dim, action_dim, num_cells=num_cells)
        return SVGDSampler(
            policy_network=policy,
            action_spec=action_spec,
            num_particles=cfg.num_particles,
            fixed_fraction=cfg.fixed_fraction,
            bandwidth=cfg.bandwidth,
        )
    if cfg.sampler == "langevin":
        return LangevinSampler(
            action_spec=action_spec,
            num_steps=cfg.langevin_steps,
            step_size=cfg.langevin_step_size,
            metropolis=cfg.metropolis,
        )
    policy = tanh_normal_actor_network(observation_dim, action_dim, num_cells=num_cells)
    return GaussianSampler(policy_network=policy, action_spec=action_spec)


def make_soft_value(cfg: SQLConfig, sampler, action_spec, observation_dim: int, action_dim: int):
    """The soft-value estimator chosen by ``cfg.soft_value``.

    ``importance`` uses the defensive mixture ``q = w U(A) + (1 − w) g`` where ``g`` is the sampler
    when it has a density (``gaussian``), else a tanh-Gaussian fitted next to it towards
    ``exp(Q/α)`` by its own loss (``loss_proposal``): SVGD and Langevin samples have no density.
    """
    if cfg.soft_value == "uniform":
        return UniformSoftValue(action_spec=action_spec, num_samples=cfg.num_value_samples)
    if cfg.soft_value == "importance":
        if sampler.has_log_prob:
            fitted = sampler
        else:
            num_cells = [cfg.hidden_size] * cfg.num_layers
            fitted = GaussianSampler(
                policy_network=tanh_normal_actor_network(observation_dim, action_dim, num_cells=num_cells),
                action_spec=action_spec,
            )
        w = cfg.importance_uniform_weight
        proposal = MixtureSampler([UniformSampler(action_spec=action_spec), fitted], weights=[w, 1 - w])
        return ImportanceSoftValue(proposal=proposal, num_samples=cfg.num_value_samples)
    check_combination(cfg)
    return PolicySoftValue(num_samples=cfg.num_value_samples)


@torch.no_grad()
def run_evaluation(env: GymEnv, sampler, *, num_episodes: int, max_steps: int, exploration: str):
    """Episodes of ``sampler`` in ``env``: their returns and the visited positions ``[T + 1, obs_dim]``."""
    exploration_type = ExplorationType.RANDOM if exploration == "random" else ExplorationType.DETERMINISTIC
    returns, paths = [], []
    with set_exploration_type(exploration_type):
        for _ in range(num_episodes):
            rollout = env.rollout(max_steps, sampler, break_when_any_done=True, auto_reset=True)
            returns.append(float(rollout.get(("next", "reward")).sum()))
            observations = torch.cat([rollout["observation"][:1], rollout["next", "observation"]], 0)
            paths.append(observations.cpu().numpy())
    return np.asarray(returns), paths


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------
def train(cfg: SQLConfig, run: RunDirectory) -> dict:
    """Train SQL as configured by ``cfg``, writing into ``run``; return the summary."""
    set_threads(cfg.threads)
    alpha = float(cfg.resolved("alpha"))
    reward_scale = float(cfg.resolved("reward_scale"))
    target_kind = cfg.resolved("target_update")
    eval_episodes = int(cfg.resolved("eval_episodes"))
    target_return = cfg.resolved("target_return")
    max_episode_steps = ENV_DEFAULTS[cfg.env]["max_episode_steps"]

    env = make_env(cfg)
    eval_env = make_env(cfg, evaluation=True)
    seed_everything(cfg.seed, env, eval_env)
    action_spec = env.action_spec
    observation_dim = env.observation_spec["observation"].shape[-1]
    action_dim = action_spec.shape[-1]
    num_cells = [cfg.hidden_size] * cfg.num_layers

    qnet = continuous_qvalue_network(observation_dim, action_dim, num_cells=num_cells)
    sampler = make_sampler(cfg, action_spec, observation_dim, action_dim)
    soft_value = make_soft_value(cfg, sampler, action_spec, observation_dim, action_dim)
    loss_module = SoftQLoss(qnet, soft_value, actor=sampler, alpha=alpha, num_qvalue_nets=cfg.num_qvalue_nets)
    loss_module.make_value_estimator(gamma=cfg.gamma)
    if target_kind == "hard":
        target_update = HardUpdate(loss_module, value_network_update_interval=cfg.hard_update_interval)
    else:
        target_update = SoftUpdate(loss_module, tau=cfg.tau)
    optimizer = torch.optim.Adam(loss_module.parameter_groups(lr_qvalue=cfg.lr_qvalue, lr_actor=cfg.lr_sampler))

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

    columns = [
        "loss_qvalue",
        "loss_actor",
        "loss_proposal",
        "soft_value",
        "td_error",
        "ess",
        "train_return",
        "eval_return",
        "goals_reached",
        "updates",
        "updates_per_s",
        "fps",
    ]
    run.set_metrics_columns(columns)
    timer = PhaseTimer("collect", "update", "eval")
    schedule = UpdateSchedule(utd_ratio=cfg.utd_ratio, learning_starts=cfg.init_random_frames)
    eval_cadence, log_cadence = Cadence(cfg.eval_interval), Cadence(cfg.log_interval)
    logged = RunningMeans()
    frames = updates = 0
    eval_return = None
    eval_goals = None
    best_goals = 0
    all_goals_at = None
    solved_at = None
    paths: list = []

    with progress_bar(cfg.total_frames, enabled=cfg.progress, desc=f"{NAME} {cfg.env}") as bar:
        for batch in timer.iterate(collector, "collect"):
            batch = batch.reshape(-1)
            frames += batch.numel()
            buffer.extend(batch)
            episodes.update(batch.get(("next", "reward")), batch.get(("next", "done")))

            with timer("update"):
                for _ in range(schedule.due(frames, batch.numel())):
                    sample = buffer.sample()
                    if reward_scale != 1.0:
                        # A sampled batch is a copy of the stored rows: scaling it leaves the buffer as collected.
                        sample.get(("next", "reward")).mul_(reward_scale)
                    losses = loss_module(sample)
                    terms = [v for k, v in losses.items() if k.startswith("loss_")]
                    optimizer.zero_grad(set_to_none=True)
                    sum(terms).backward()
                    optimizer.step()
                    target_update.step()
                    updates += 1
                    logged.add(
                        loss_qvalue=losses["loss_qvalue"],
                        loss_actor=losses.get("loss_actor", None),
                        loss_proposal=losses.get("loss_proposal", None),
                        soft_value=losses["soft_value"],
                        td_error=losses["td_error"],
                        ess=losses.get("ess", None),
                    )

            # The last batch is always evaluated, wherever it falls in the cadence.
            evaluated = eval_cadence.due(frames) or frames >= cfg.total_frames
            if evaluated:
                with timer("eval"):
                    returns, paths = run_evaluation(
                        eval_env,
                        sampler,
                        num_episodes=eval_episodes,
                        max_steps=max_episode_steps,
                        exploration=cfg.eval_exploration,
                    )
                eval_return = float(returns.mean())
                if cfg.env == "multigoal":
                    eval_goals = goals_reached(np.stack([p[-1] for p in paths]))
                    best_goals = max(best_goals, eval_goals)
                    if all_goals_at is None and eval_goals == 4:
                        all_goals_at = frames
                    if solved_at is None and eval_goals == 4:
                        solved_at = frames
                elif solved_at is None and target_return is not None and eval_return >= target_return:
                    solved_at = frames

            if log_cadence.due(frames) or evaluated:
                means = logged.pop()
                guard.check(means, step=frames)  # once per log interval: a NaN loss makes its mean NaN
                run.log(
                    frames,
                    **means,
                    train_return=episodes.mean_recent(),
                    eval_return=eval_return if evaluated else None,
                    goals_reached=eval_goals if evaluated else None,
                    updates=updates,
                    updates_per_s=updates_per_second(updates, timer),
                    fps=frames / max(timer.elapsed(), 1e-9),
                )
            postfix = {"eval": eval_return if eval_return is not None else float("nan")}
            if cfg.env == "multigoal":
                postfix["goals"] = eval_goals if eval_goals is not None else 0
            bar.update(batch.numel(), **postfix)
            if cfg.stop_when_solved and solved_at is not None:
                break
    collector.shutdown()
    wall_time = timer.elapsed()

    figures = {}
    if cfg.plots:
        figures = write_figures(cfg, run, loss_module.qfunction(), sampler, action_spec, paths)
    if cfg.checkpoint:
        run.save_checkpoint(
            {"loss_module": loss_module, "optimizer": optimizer}, step=frames, extra={"config": asdict(cfg)}
        )
    summary = {
        "algorithm": NAME,
        "env": cfg.env,
        "sampler": cfg.sampler,
        "soft_value": cfg.soft_value,
        "seed": cfg.seed,
        "alpha": alpha,
        "reward_scale": reward_scale,
        "target_update": target_kind,
        "eval_return_mean": eval_return,
        "solved": solved_at is not None,
        "solved_at_step": solved_at,
        "env_steps": frames,
        "updates": updates,
        "updates_per_s": updates_per_second(updates, timer),
        "train_episodes": episodes.count,
        "wall_time_s": wall_time,
        **timer.summary(),
        "figures": figures,
        "run_dir": str(run.path),
        "config": asdict(cfg),
    }
    if cfg.env == "multigoal":
        summary.update(goals_reached=eval_goals, best_goals_reached=best_goals, all_goals_at_step=all_goals_at)
    else:
        summary.update(target_return=target_return)
    env.close()
    eval_env.close()
    return summary


def updates_per_second(updates: int, timer: PhaseTimer) -> float | None:
    """Gradient updates per second of update time; undefined (None) until an update has run."""
    seconds = timer.seconds["update"]
    return updates / seconds if updates > 0 and seconds > 0 else None


def write_figures(cfg: SQLConfig, run: RunDirectory, qvalue, sampler, action_spec, paths) -> dict[str, str]:
    """The learning curve and, on MultiGoal, the paper's figure: Q contours and trajectories."""
    from maxent_components.plotting import plot_learning_curve, plot_multigoal_trajectories, plot_q_contours

    figures = {}
    run.close()  # flush metrics.csv before reading it back
    keys = ["eval_return", "goals_reached"] if cfg.env == "multigoal" else ["eval_return", "loss_qvalue"]
    figures["learning_curve"] = str(
        plot_learning_curve(run.metrics_path, keys=keys, path=run.path / "learning_curve.png", x_key="step")
    )
    if cfg.env == "multigoal":
        generator = torch.Generator().manual_seed(cfg.seed)
        figures["q_contours"] = str(
            plot_q_contours(
                qvalue,
                sampler,
                action_spec=action_spec,
                path=run.path / "q_contours.png",
                generator=generator,
                title=f"SQL ({cfg.sampler}, {cfg.soft_value}): Q(s, ·) and sampled actions",
            )
        )
        if paths:
            figures["trajectories"] = str(plot_multigoal_trajectories(paths, path=run.path / "trajectories.png"))
    return figures


@hydra.main(version_base=None, config_name=NAME)
def main(dict_cfg: DictConfig) -> dict | None:
    cfg: SQLConfig = apply_presets(OmegaConf.to_object(dict_cfg), {"smoke": SMOKE, "demo": DEMO})
    check_combination(cfg)
    run = RunDirectory.from_hydra()
    if (finished := finished_summary(NAME, run, skip_finished=cfg.skip_finished)) is not None:
        return finished
    with run:
        summary = train(cfg, run)
        run.finish(summary)
    if cfg.demo or not cfg.progress:
        print(report(summary))
    return summary


def report(summary: dict) -> str:
    """A few lines summarising a finished run (printed by the demo and by runs without a progress bar)."""
    head = (
        f"{NAME} ({summary['sampler']} sampler, {summary['soft_value']} soft value) on {summary['env']}, "
        f"seed {summary['seed']}: {summary['env_steps']} env steps, {summary['updates']} updates in "
        f"{summary['wall_time_s']:.1f} s"
    )
    lines = [head]
    if summary["env"] == "multigoal":
        at = summary["all_goals_at_step"]
        lines.append(
            f"goals reached by the last evaluation (episodes from the origin): {summary['goals_reached']}/4; "
            + (f"all four first reached at step {at}" if at is not None else "never all four")
        )
    else:
        lines.append(
            f"last mean evaluation return {summary['eval_return_mean']:.1f}; "
            + (
                f"bar {summary['target_return']:g} first met at step {summary['solved_at_step']}"
                if summary["solved"]
                else f"bar {summary['target_return']} not met"
            )
        )
    for name, path in summary["figures"].items():
        lines.append(f"figure {name}: {path}")
    lines.append(f"run directory: {summary['run_dir']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
