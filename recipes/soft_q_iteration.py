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
- writes ``metrics.csv`` (one row per α), ``summary.json``, ``checkpoint.pt`` (the MDP and the
  solved Q, V and log π of every α, loadable with ``torch.load(..., weights_only=True)``) and
  ``soft_q_iteration.png`` (V heatmaps with the policy's mean move as arrows, one panel per α).

With a step cost of 1 and no goal bonus, the entropy bonus α log|A| per step outweighs the cost once
α > 1 / log 4 ≈ 0.72: the agent then prefers wandering to reaching the goal, and V turns positive.

Run ``python recipes/soft_q_iteration.py --help`` for every option. Examples::

    python recipes/soft_q_iteration.py
    python recipes/soft_q_iteration.py 'alphas=[0,0.001,0.01,0.1]' slip=0 gamma=0.99
    python recipes/soft_q_iteration.py "layout=['S..#...','...#...','......G']"   # '#' must be quoted
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from maxent_components.functional import entropy
from maxent_components.runs import (
    RunConfig,
    RunDirectory,
    atomic_write_bytes,
    finished_summary,
    option,
    progress_bar,
    register_config,
    seed_everything,
    set_threads,
)
from maxent_components.tabular import GRID_MOVES, GridWorld, SoftQIterationResult, gridworld, soft_q_iteration

NAME = "soft_q_iteration"
DESCRIPTION = (
    "Exact soft Q-iteration on a grid world for several temperatures alpha: prints V and the policy, "
    "the distance ||V_alpha - V_0||_inf to the hard optimum with its bound alpha log|A|/(1 - gamma), a "
    "Monte Carlo check of V(start), and writes metrics.csv, summary.json, checkpoint.pt (the solved "
    "tables) and soft_q_iteration.png."
)

DEFAULT_LAYOUT = [
    ".......",
    ".##.##.",
    "S..#..G",
    ".##.##.",
    ".......",
]
ARROWS = ("^", ">", "v", "<")
FIGURE_FILE = "soft_q_iteration.png"
# Episodes are truncated where γ^t falls below this: the neglected tail is at most that fraction.
TRUNCATION = 1e-10


@dataclass
class SoftQIterationConfig(RunConfig):
    layout: list[str] = option(
        DEFAULT_LAYOUT,
        "Grid rows, top row first, all of equal length: '.' free cell, '#' wall, 'S' start (exactly "
        "one), 'G' goal (exactly one, terminal). On the command line quote the rows (Hydra does not "
        "accept an unquoted '#'): \"layout=['S..#','....','..#G']\".",
    )
    slip: float = option(
        0.1, "Probability that a uniformly random move replaces the chosen one.", ge=0, le=1
    )
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
    plots: bool = option(True, f"Write {FIGURE_FILE}.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.alphas:
            raise ValueError("option alphas must list at least one temperature.")
        for alpha in self.alphas:
            if not (math.isfinite(alpha) and alpha >= 0):
                raise ValueError(f"option alphas={list(self.alphas)} is invalid; expected finite values >= 0.")
        parse_layout(self.layout)


register_config(NAME, SoftQIterationConfig, description=DESCRIPTION)


# ------------------------------------------------------------------------------------------------
# Grid world
# ------------------------------------------------------------------------------------------------
def parse_layout(layout: list[str]) -> tuple[int, int, tuple[int, int], tuple[int, int], list[tuple[int, int]]]:
    """``(height, width, start, goal, walls)`` of a text layout, validated."""
    rows = [str(row) for row in layout]
    if not rows or any(len(row) != len(rows[0]) for row in rows) or not rows[0]:
        raise ValueError(f"option layout={rows} is invalid; expected non-empty rows of equal length.")
    cells = {(r, c): ch for r, row in enumerate(rows) for c, ch in enumerate(row)}
    unknown = sorted({ch for ch in cells.values()} - set(".#SG"))
    if unknown:
        raise ValueError(f"option layout has unknown characters {unknown}; expected only '.', '#', 'S', 'G'.")
    starts = [cell for cell, ch in cells.items() if ch == "S"]
    goals = [cell for cell, ch in cells.items() if ch == "G"]
    if len(starts) != 1 or len(goals) != 1:
        raise ValueError(
            f"option layout must hold exactly one 'S' and one 'G'; found {len(starts)} and {len(goals)}."
        )
    walls = sorted(cell for cell, ch in cells.items() if ch == "#")
    return len(rows), len(rows[0]), starts[0], goals[0], walls


def build_world(cfg: SoftQIterationConfig) -> tuple[GridWorld, int]:
    height, width, start, goal, walls = parse_layout(cfg.layout)
    world = gridworld(
        height,
        width,
        goal=goal,
        walls=walls,
        slip=cfg.slip,
        step_reward=cfg.step_reward,
        goal_reward=cfg.goal_reward,
        dtype=torch.float64,
    )
    return world, world.state(*start)


def solve(world: GridWorld, cfg: SoftQIterationConfig, alpha: float) -> SoftQIterationResult:
    return soft_q_iteration(
        world.transitions,
        world.rewards,
        gamma=cfg.gamma,
        alpha=alpha,
        terminal=world.terminal,
        tol=cfg.tol,
        max_iterations=cfg.max_iterations,
    )


def monte_carlo_soft_return(
    world: GridWorld,
    result: SoftQIterationResult,
    *,
    start: int,
    alpha: float,
    gamma: float,
    episodes: int,
    generator: torch.Generator,
) -> tuple[float, float]:
    """Mean and standard error of ``Σ_t γ^t (r_t − α log π(a_t|s_t))`` over sampled episodes."""
    horizon = 1 if gamma == 0 else max(1, math.ceil(math.log(TRUNCATION) / math.log(gamma)))
    policy_cdf = result.log_policy.exp().cumsum(-1)
    transition_cdf = world.transitions.cumsum(-1)

    def draw(cdf: torch.Tensor) -> torch.Tensor:
        u = torch.rand(cdf.shape[0], 1, generator=generator, dtype=cdf.dtype)
        # The clamp guards against a last cumulative probability just below 1 by rounding.
        return (cdf < u).sum(-1).clamp(max=cdf.shape[-1] - 1)

    state = torch.full((episodes,), start, dtype=torch.long)
    alive = ~world.terminal[state]
    returns = torch.zeros(episodes, dtype=torch.float64)
    discount = 1.0
    for _ in range(horizon):
        if not bool(alive.any()):
            break
        action = draw(policy_cdf[state])
        log_pi = result.log_policy[state, action]
        # α log π is 0 at α = 0, including for greedy actions that share the maximum.
        bonus = alpha * log_pi if alpha > 0 else torch.zeros_like(log_pi)
        returns += discount * (world.rewards[state, action] - bonus) * alive
        state = draw(transition_cdf[state, action])
        alive &= ~world.terminal[state]
        discount *= gamma
    stderr = returns.std().item() / math.sqrt(episodes) if episodes > 1 else math.nan
    return returns.mean().item(), stderr


# ------------------------------------------------------------------------------------------------
# Text and figure
# ------------------------------------------------------------------------------------------------
def _cell_label(world: GridWorld, s: int) -> str | None:
    if bool(world.wall_mask[s]):
        return "#"
    if bool(world.terminal[s]):
        return "G"
    return None


def render_values(world: GridWorld, v: torch.Tensor) -> str:
    """V as a text grid; walls '#', the goal 'G'."""
    lines = []
    for r in range(world.height):
        cells = []
        for c in range(world.width):
            s = world.state(r, c)
            label = _cell_label(world, s)
            cells.append(f"{label:>9}" if label else f"{v[s].item():9.3f}")
        lines.append(" ".join(cells))
    return "\n".join(lines)


def render_policy(world: GridWorld, log_policy: torch.Tensor) -> str:
    """The most likely move (^ > v <) and its probability per cell; walls '#', the goal 'G'."""
    policy = log_policy.exp()
    lines = []
    for r in range(world.height):
        cells = []
        for c in range(world.width):
            s = world.state(r, c)
            label = _cell_label(world, s)
            if label:
                cells.append(f"{label:>6}")
                continue
            best = int(policy[s].argmax())
            cells.append(f"{ARROWS[best]} {policy[s, best].item():.2f}".rjust(6))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def plot_solutions(
    world: GridWorld,
    solutions: dict[float, SoftQIterationResult],
    gaps: dict[float, float],
    path,
    *,
    start: int,
) -> None:
    """One panel per α: V as a heatmap (walls blank), the policy's mean move as arrows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    alphas = list(solutions)
    columns = min(len(alphas), 3)
    rows = math.ceil(len(alphas) / columns)
    figure = Figure(figsize=(4.6 * columns, 0.7 * world.height * rows + 1.4 * rows), dpi=100)
    FigureCanvasAgg(figure)
    moves = torch.tensor(GRID_MOVES, dtype=torch.float64)  # (drow, dcol) per action
    live = ~(world.wall_mask | world.terminal)
    cols, rows_idx = torch.meshgrid(torch.arange(world.width), torch.arange(world.height), indexing="xy")
    for index, alpha in enumerate(alphas):
        axis = figure.add_subplot(rows, columns, index + 1)
        result = solutions[alpha]
        values = result.v.clone()
        values[world.wall_mask] = math.nan
        image = axis.imshow(world.grid(values).numpy(), cmap="viridis", origin="upper")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="V(s)")
        mean_move = world.grid(result.log_policy.exp() @ moves)  # E_π[(drow, dcol)]
        shown = world.grid(live)
        axis.quiver(
            cols[shown].numpy(),
            rows_idx[shown].numpy(),
            mean_move[..., 1][shown].numpy(),
            mean_move[..., 0][shown].numpy(),
            angles="xy",
            scale_units="xy",
            scale=1.6,
            color="white",
            width=0.012,
        )
        for (r, c), label in ((world.goal, "G"), (world.cell(start), "S")):
            axis.text(c, r, label, ha="center", va="center", color="red", fontweight="bold")
        axis.set_title(f"α = {alpha:g}   ‖V_α − V_0‖∞ = {gaps[alpha]:.3g}", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("Soft Q-iteration: V* and the mean move of π* = exp((Q* − V*)/α)", fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())


# ------------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------------
METRICS = [
    "alpha",
    "iterations",
    "converged",
    "residual",
    "v_start",
    "v_gap_inf",
    "v_gap_bound",
    "policy_entropy_start",
    "mc_return_start",
    "mc_stderr",
]


def run_recipe(cfg: SoftQIterationConfig, run: RunDirectory) -> dict:
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    started = time.perf_counter()
    world, start = build_world(cfg)
    # States that matter for the gap: neither walls (unreachable) nor the goal (always 0).
    live = ~(world.wall_mask | world.terminal)
    num_actions = world.num_actions

    hard = solve(world, cfg, 0.0)
    solutions: dict[float, SoftQIterationResult] = {}
    gaps: dict[float, float] = {}
    rows = []
    with progress_bar(len(cfg.alphas), enabled=cfg.progress, desc=NAME) as bar:
        for step, alpha in enumerate(cfg.alphas):
            alpha = float(alpha)
            result = hard if alpha == 0 else solve(world, cfg, alpha)
            solutions[alpha] = result
            gap = (result.v - hard.v)[live].abs().max().item()
            gaps[alpha] = gap
            bound = alpha * math.log(num_actions) / (1 - cfg.gamma)
            if cfg.rollouts > 0:
                mc_mean, mc_stderr = monte_carlo_soft_return(
                    world, result, start=start, alpha=alpha, gamma=cfg.gamma,
                    episodes=cfg.rollouts, generator=generator,
                )
            else:
                mc_mean = mc_stderr = None
            row = {
                "alpha": alpha,
                "iterations": result.iterations,
                "converged": float(result.converged),
                "residual": result.residual,
                "v_start": result.v[start].item(),
                "v_gap_inf": gap,
                "v_gap_bound": bound,
                "policy_entropy_start": entropy(result.log_policy[start]).item(),
                "mc_return_start": mc_mean,
                "mc_stderr": mc_stderr,
            }
            rows.append(row)
            run.log(step, **row)
            print(f"\nalpha = {alpha:g}: {result.iterations} iterations, converged={result.converged}, "
                  f"last change {result.residual:.2e}")
            print(f"||V_alpha - V_0||_inf = {gap:.6g}  (bound alpha log|A| / (1 - gamma) = {bound:.6g})")
            mc_text = (
                f"; Monte Carlo soft return {mc_mean:.4f} +- {mc_stderr:.4f} ({cfg.rollouts} episodes)"
                if mc_mean is not None
                else ""
            )
            print(f"V(start) = {result.v[start].item():.4f}{mc_text}")
            print("V:")
            print(render_values(world, result.v))
            print("policy (most likely move and its probability):")
            print(render_policy(world, result.log_policy))
            bar.update(1)

    positive = sorted(a for a in gaps if a > 0)
    gap_shrinks = all(gaps[a] <= gaps[b] + 1e-9 for a, b in zip(positive, positive[1:]))
    within_bound = all(
        gaps[a] <= a * math.log(num_actions) / (1 - cfg.gamma) + 2 * cfg.tol for a in gaps
    )
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
        figure_path = run.path / FIGURE_FILE
        plot_solutions(world, solutions, gaps, figure_path, start=start)
        figures["soft_q_iteration"] = str(figure_path)
        print(f"figure: {figure_path}")

    checkpoint = run.save_checkpoint(
        {
            "mdp": {
                "transitions": world.transitions,
                "rewards": world.rewards,
                "terminal": world.terminal,
            },
            "solutions": {
                repr(alpha): {"q": r.q, "v": r.v, "log_policy": r.log_policy} for alpha, r in solutions.items()
            },
            "hard_optimum": {"q": hard.q, "v": hard.v, "log_policy": hard.log_policy},
        },
        step=len(cfg.alphas),
        extra={"alphas": [float(a) for a in cfg.alphas], "start": start, "config": asdict(cfg)},
    )
    print(f"checkpoint: {checkpoint}\nrun directory: {run.path}")
    return {
        "alphas": [float(a) for a in cfg.alphas],
        "v_gap_inf": [gaps[float(a)] for a in cfg.alphas],
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
        "run_dir": str(run.path),
        "seed": cfg.seed,
        "config": asdict(cfg),
    }


@hydra.main(version_base=None, config_name=NAME)
def main(dict_cfg: DictConfig) -> dict | None:
    cfg: SoftQIterationConfig = OmegaConf.to_object(dict_cfg)
    run = RunDirectory.from_hydra(metrics_columns=METRICS)
    if (finished := finished_summary(NAME, run, skip_finished=cfg.skip_finished)) is not None:
        return finished
    with run:
        summary = run_recipe(cfg, run)
        run.finish(summary)
    return summary


if __name__ == "__main__":
    main()
