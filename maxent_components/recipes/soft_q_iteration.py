"""Exact soft Q-iteration on a grid world, for several temperatures.

Soft Q-iteration (Ziebart, 2010; Haarnoja et al., 2017, "Reinforcement Learning with Deep
Energy-Based Policies", section 2.2) iterates the soft Bellman operator to its fixed point

    Q(s, a) ← R(s, a) + γ Σ_s' P(s'|s, a) V(s'),      V(s) = α log Σ_a exp(Q(s, a)/α),

and the optimal maximum-entropy policy is π(a|s) = exp((Q(s, a) − V(s))/α). At α = 0 this is
classic value iteration. For every α in ``alphas`` the recipe solves the grid world exactly and

- prints V and the policy (the most likely move and its probability) as text;
- prints ‖V_α − V_0‖∞, the distance to the hard optimum, next to its bound α log|A| / (1 − γ):
  as α → 0 the soft optimum approaches the hard one;
- checks V(start) against the discounted soft return Σ_t γ^t (r_t − α log π(a_t|s_t)) of
  ``rollouts`` sampled episodes (seeded by ``seed``);
- logs one row of metrics per α (step = the α's index) through the TorchRL logger ``logger.backend``
  (csv: ``logs/metrics/scalars/<metric>.csv``), saves ``checkpoint.pt`` (the MDP and the solved Q, V
  and log π of every α, read with ``runs.read_checkpoint(path, weights_only=True)``) and writes
  ``soft_q_iteration.png`` (V heatmaps with the policy's mean move as arrows, one panel per α).

With a step cost of 1 and no goal bonus, the entropy bonus α log|A| per step outweighs the cost once
α > 1 / log 4 ≈ 0.72: the agent then prefers wandering to reaching the goal, and V turns positive.

Run ``python -m maxent_components.recipes.soft_q_iteration --help`` for every option. Examples::

    python -m maxent_components.recipes.soft_q_iteration
    python -m maxent_components.recipes.soft_q_iteration 'alphas=[0,0.001,0.01,0.1]' slip=0 gamma=0.99
    python -m maxent_components.recipes.soft_q_iteration "layout=['S..#...','...#...','......G']"   # quote '#'
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from maxent_components.runs import Recipe, RunConfig, RunDirectory, RunLogger, option

if TYPE_CHECKING:
    import torch

    from maxent_components.tabular import SoftQIterationResult

NAME = "soft_q_iteration"
DESCRIPTION = (
    "Exact soft Q-iteration on a grid world for several temperatures alpha: prints V and the policy, "
    "the distance ||V_alpha - V_0||_inf to the hard optimum with its bound alpha log|A|/(1 - gamma) and a "
    "Monte Carlo check of V(start); logs one row of metrics per alpha, saves the solved tables in "
    "checkpoint.pt and draws soft_q_iteration.png."
)
DEFAULT_LAYOUT = [".......", ".##.##.", "S..#..G", ".##.##.", "......."]
FIGURE_FILE = "soft_q_iteration.png"


@dataclasses.dataclass
class SoftQIterationConfig(RunConfig):
    layout: list[str] = option(
        DEFAULT_LAYOUT,
        "Grid rows, top row first, all of equal length: '.' free cell, '#' wall, 'S' start (exactly "
        "one), 'G' goal (exactly one, terminal). On the command line quote the rows (Hydra does not "
        "accept an unquoted '#'): \"layout=['S..#','....','..#G']\".",
    )
    slip: float = option(0.1, "Probability that a uniformly random move replaces the chosen one.", ge=0, le=1)
    step_reward: float = option(-1.0, "Reward of every action taken outside the goal.")
    goal_reward: float = option(0.0, "Extra reward for entering the goal.")
    gamma: float = option(0.95, "Discount factor.", ge=0, lt=1)
    alphas: list[float] = option(
        [0.0, 0.01, 0.1, 0.3, 1.0, 10.0],
        "Temperatures to solve for (each >= 0). alpha = 0 (value iteration) is always solved as the "
        "reference of the gap ||V_alpha - V_0||_inf.",
    )
    tol: float = option(1e-10, "Sup-norm accuracy of every solved Q (the iteration's stopping bound).", gt=0)
    max_iterations: int = option(100_000, "Most soft Bellman backups per temperature.", gt=0)
    rollouts: int = option(
        2000,
        "Episodes sampled from the start cell per temperature to check V(start) against the mean "
        "discounted soft return; 0 skips the check.",
        ge=0,
    )
    plots: bool = option(True, f"Write {FIGURE_FILE}.", run_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.alphas:
            raise ValueError("option alphas must list at least one temperature.")
        if not all(math.isfinite(alpha) and alpha >= 0 for alpha in self.alphas):
            raise ValueError(f"option alphas={list(self.alphas)} is invalid; expected finite values >= 0.")


#: ``smoke=true``: three temperatures and a few hundred episodes each.
SMOKE = {"alphas": [0.0, 0.1, 1.0], "rollouts": 200, "progress": False}


def build_world(cfg: DictConfig):
    """``(world, start)``: the grid world of ``cfg.layout`` (its errors name the option ``layout``)."""
    import torch

    from maxent_components.tabular import gridworld_from_layout

    return gridworld_from_layout(
        cfg.layout, slip=cfg.slip, step_reward=cfg.step_reward, goal_reward=cfg.goal_reward, dtype=torch.float64
    )


def check(cfg: DictConfig) -> None:
    """Build the world once before anything runs: a bad layout is a usage error."""
    build_world(cfg)


def solve(world, cfg: DictConfig, alpha: float) -> SoftQIterationResult:
    from maxent_components.tabular import soft_q_iteration

    return soft_q_iteration(
        world.transitions, world.rewards, gamma=cfg.gamma, alpha=alpha, terminal=world.terminal,
        tol=cfg.tol, max_iterations=cfg.max_iterations,
    )


def _tables(result: SoftQIterationResult) -> dict[str, torch.Tensor]:
    return {"q": result.q, "v": result.v, "log_policy": result.log_policy}


def train(cfg: DictConfig, run: RunDirectory) -> dict:
    import torch

    from maxent_components.functional import entropy
    from maxent_components.tabular import render_policy, render_values, sample_soft_return
    from maxent_components.training import progress_bar

    generator = torch.Generator().manual_seed(cfg.seed)
    started = time.perf_counter()
    world, start = build_world(cfg)
    # States that matter for the gap: neither walls (unreachable) nor the goal (always 0).
    live = ~(world.wall_mask | world.terminal)
    log_actions = math.log(world.num_actions)
    alphas = [float(a) for a in cfg.alphas]

    hard = solve(world, cfg, 0.0)
    solutions: dict[float, SoftQIterationResult] = {}
    gaps: dict[float, float] = {}
    rows = []
    with progress_bar(len(alphas), enabled=cfg.progress, desc=NAME) as bar:
        for alpha in alphas:
            result = hard if alpha == 0 else solve(world, cfg, alpha)
            solutions[alpha] = result
            gap = gaps[alpha] = (result.v - hard.v)[live].abs().max().item()
            bound = alpha * log_actions / (1 - cfg.gamma)
            mc_mean = mc_stderr = None
            if cfg.rollouts > 0:
                returns = sample_soft_return(
                    world.transitions, world.rewards, result.log_policy, start=start, alpha=alpha,
                    gamma=cfg.gamma, episodes=cfg.rollouts, terminal=world.terminal, generator=generator,
                )
                mc_mean = returns.mean().item()
                mc_stderr = returns.std().item() / math.sqrt(cfg.rollouts) if cfg.rollouts > 1 else math.nan
            row = {
                "alpha": alpha, "iterations": result.iterations, "converged": float(result.converged),
                "residual": result.residual, "v_start": result.v[start].item(), "v_gap_inf": gap,
                "v_gap_bound": bound, "policy_entropy_start": entropy(result.log_policy[start]).item(),
                "mc_return_start": mc_mean, "mc_stderr": mc_stderr,
            }
            rows.append(row)
            print(f"\nalpha = {alpha:g}: {result.iterations} iterations, converged={result.converged}, "
                  f"last change {result.residual:.2e}")
            print(f"||V_alpha - V_0||_inf = {gap:.6g}  (bound alpha log|A| / (1 - gamma) = {bound:.6g})")
            mc_text = "" if mc_mean is None else (
                f"; Monte Carlo soft return {mc_mean:.4f} +- {mc_stderr:.4f} ({cfg.rollouts} episodes)"
            )
            print(f"V(start) = {result.v[start].item():.4f}{mc_text}")
            print("V:")
            print(render_values(world, result.v))
            print("policy (most likely move and its probability):")
            print(render_policy(world, result.log_policy))
            bar.update(1)

    positive = sorted(a for a in gaps if a > 0)
    gap_shrinks = all(gaps[a] <= gaps[b] + 1e-9 for a, b in itertools.pairwise(positive))
    within_bound = all(gaps[a] <= a * log_actions / (1 - cfg.gamma) + 2 * cfg.tol for a in gaps)
    mc_consistent = None
    if cfg.rollouts > 1:
        mc_consistent = all(
            abs(row["mc_return_start"] - row["v_start"]) <= 4 * row["mc_stderr"] + 1e-9 for row in rows
        )
    print(
        "\nalpha -> 0: ||V_alpha - V_0||_inf = "
        + ", ".join(f"{gaps[a]:.3g} (alpha={a:g})" for a in positive)
        + f"; shrinks with alpha: {gap_shrinks}; within the bound: {within_bound}"
    )

    figures = {}
    if cfg.plots:
        from maxent_components.plotting import plot_gridworld_solutions

        figure = plot_gridworld_solutions(world, solutions, path=run.path / FIGURE_FILE, start=start, gaps=gaps)
        figures["soft_q_iteration"] = str(figure)
        print(f"figure: {figure}")

    # The metrics are logged right before the checkpoint: a run relaunched after an interruption
    # that left a checkpoint has logged them all already (the csv logger appends).
    if not run.has_checkpoint():
        logger = RunLogger(cfg.logger.backend, run.log_dir).open()
        for step, row in enumerate(rows):
            logger.log({key: value for key, value in row.items() if value is not None}, step=step)
        logger.close()
    checkpoint = run.save_checkpoint(
        {
            "mdp": {"transitions": world.transitions, "rewards": world.rewards, "terminal": world.terminal},
            "solutions": {repr(alpha): _tables(r) for alpha, r in solutions.items()},
            "hard_optimum": _tables(hard),
            "alphas": alphas,
            "start": start,
        },
        step=len(alphas),
    )
    print(f"checkpoint: {checkpoint}\nrun directory: {run.path}")
    return {
        "alphas": alphas,
        "v_gap_inf": [gaps[a] for a in alphas],
        "v_gap_bound": [row["v_gap_bound"] for row in rows],
        "v_start": [row["v_start"] for row in rows],
        "iterations": [row["iterations"] for row in rows],
        "all_converged": all(r.converged for r in solutions.values()) and hard.converged,
        "gap_shrinks_as_alpha_decreases": gap_shrinks,
        "gaps_within_bound": within_bound,
        "monte_carlo_consistent": mc_consistent,
        "hard_v_start": hard.v[start].item(),
        "figures": figures,
        "checkpoint": str(checkpoint),
        "wall_time_s": time.perf_counter() - started,
        "seed": cfg.seed,
    }


recipe = Recipe(
    NAME,
    train,
    schema=SoftQIterationConfig,
    description=DESCRIPTION,
    check=check,
    presets={"smoke": SMOKE},
    groups=(),
)
main = recipe.main

if __name__ == "__main__":
    main()
