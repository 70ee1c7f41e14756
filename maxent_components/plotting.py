"""Figures for maximum-entropy agents: Q contours with sampled actions, MultiGoal paths, learning curves.

The soft Q-learning paper's MultiGoal figure (Haarnoja et al., 2017, "Reinforcement Learning with
Deep Energy-Based Policies", figure 2) has two parts, reproduced by :func:`plot_q_contours` (contours
of ``Q(s, ·)`` over the action square at a few states, with actions drawn from the policy overlaid)
and :func:`plot_multigoal_trajectories` (trajectories from the origin fanning out to the goals).

matplotlib is imported only when a figure is drawn, so the rest of the library does not depend on
it; install it with ``pip install "maxent_components[plot]"``. Figures are rendered with the Agg
canvas directly (no ``pyplot``, no global backend switch) and written atomically: a temporary file
in the target directory is renamed over the target, so a reader never sees a half-written PNG.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from maxent_components.modules.qfunction import QFunction

__all__ = [
    "DEFAULT_Q_STATES",
    "q_grid",
    "plot_q_contours",
    "plot_multigoal_trajectories",
    "plot_learning_curve",
    "plot_gridworld_solutions",
]

#: The states of the paper's figure: left of the origin, the origin, and between two goals.
DEFAULT_Q_STATES: tuple[tuple[float, float], ...] = ((-2.5, 0.0), (0.0, 0.0), (2.5, 2.5))


def _new_figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError(
            'Plotting needs matplotlib: pip install "maxent_components[plot]" (or pip install matplotlib).'
        ) from err
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_atomically(figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png, got {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _box_bounds(action_spec) -> tuple[np.ndarray, np.ndarray]:
    space = getattr(action_spec, "space", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None:
        raise ValueError(f"action_spec must be a bounded (box) spec with 2-D actions, got {type(action_spec).__name__}.")
    low = torch.as_tensor(low).detach().cpu().double().reshape(-1).numpy()
    high = torch.as_tensor(high).detach().cpu().double().reshape(-1).numpy()
    if low.shape != (2,):
        raise ValueError(f"action_spec must describe 2-D actions to be drawn on a plane, got shape {low.shape}.")
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError("action_spec must have finite bounds to draw the action square.")
    return low, high


def _spec_dtype_device(action_spec) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of the actions (a recipe's spec lives where its networks do)."""
    return getattr(action_spec, "dtype", None) or torch.float32, getattr(action_spec, "device", None) or torch.device("cpu")


def _states_tensor(states: Sequence[Sequence[float]] | torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    states = torch.as_tensor(states, dtype=dtype)
    if states.ndim != 2 or states.shape[0] < 1:
        raise ValueError(f"states must have shape [num_states, observation_dim], got {tuple(states.shape)}.")
    return states


@torch.no_grad()
def q_grid(
    qvalue_network,
    state: Sequence[float] | torch.Tensor,
    *,
    action_spec,
    grid_size: int = 101,
    observation_key: Any = "observation",
    action_key: Any = "action",
    value_key: Any = "state_action_value",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Q(s, a)`` on a ``grid_size × grid_size`` grid over a 2-D action box at one state.

    ``qvalue_network`` is a Q network or a :class:`~maxent_components.modules.qfunction.QFunction`
    (e.g. ``SoftQLoss.qfunction()``); an ensemble is reduced by ``min`` over its members, the Q the
    actor samples from. Returns ``(a0, a1, q)``, each ``[grid_size, grid_size]`` (``numpy.meshgrid``
    "xy" layout: rows follow the second action coordinate).
    """
    if isinstance(grid_size, bool) or int(grid_size) != grid_size or grid_size < 2:
        raise ValueError(f"grid_size must be an integer >= 2, got {grid_size!r}.")
    low, high = _box_bounds(action_spec)
    a0, a1 = np.meshgrid(np.linspace(low[0], high[0], grid_size), np.linspace(low[1], high[1], grid_size))
    dtype, device = _spec_dtype_device(action_spec)
    actions = torch.as_tensor(np.stack([a0.ravel(), a1.ravel()], -1), dtype=dtype, device=device)
    state = torch.as_tensor(state, dtype=dtype, device=device).reshape(1, -1).expand(actions.shape[0], -1)
    td = TensorDict({observation_key: state}, batch_size=[actions.shape[0]])
    qvalue = qvalue_network if isinstance(qvalue_network, QFunction) else QFunction(qvalue_network)
    q = qvalue.state_action_values(td, actions.unsqueeze(0), action_key=action_key, value_key=value_key).amin(0)
    q = q.reshape(grid_size, grid_size).double().cpu().numpy()
    if not np.isfinite(q).all():
        raise ValueError("qvalue_network returned non-finite Q values on the action grid.")
    return a0, a1, q


@torch.no_grad()
def plot_q_contours(
    qvalue_network,
    sampler=None,
    states: Sequence[Sequence[float]] | torch.Tensor = DEFAULT_Q_STATES,
    *,
    action_spec,
    path: str | os.PathLike,
    num_samples: int = 100,
    grid_size: int = 101,
    levels: int = 20,
    generator: torch.Generator | None = None,
    observation_key: Any = "observation",
    title: str | None = None,
) -> Path:
    """Draw ``Q(s, ·)`` over the action square at each state, with actions sampled at that state.

    One panel per state (by default the paper's ``(−2.5, 0)``, ``(0, 0)``, ``(2.5, 2.5)``): filled
    contours of ``Q(s, a)`` on a grid over the action box, and ``num_samples`` actions
    ``a ∼ π(·|s)`` from ``sampler.sample`` as dots. A well-trained maximum-entropy policy puts its
    samples on every mode of ``Q`` (Haarnoja et al., 2017, figure 2b).

    Args:
        qvalue_network: module reading ``"observation"`` and ``"action"`` and writing
            ``"state_action_value"``, or a ``QFunction`` (an ensemble is reduced by ``min``).
        sampler: a :class:`~maxent_components.samplers.base.PolicySampler`, or ``None`` to draw
            contours only.
        states: the states, shape ``[num_states, observation_dim]``.

    Keyword Args:
        action_spec: bounded spec of the 2-D action box.
        path: where to write the PNG.
        num_samples: actions drawn per state.
        grid_size: grid points per action coordinate.
        levels: number of contour levels.
        generator: random generator handed to ``sampler.sample`` (for reproducible figures).
        observation_key: key of the state in the tensordicts given to the networks.
        title: figure title.

    Returns:
        The path written.
    """
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    low, high = _box_bounds(action_spec)
    dtype, device = _spec_dtype_device(action_spec)
    states = _states_tensor(states, dtype).to(device)
    samples = None
    if sampler is not None:
        td = TensorDict({observation_key: states}, batch_size=[states.shape[0]])
        actions, _ = sampler.sample(td, int(num_samples), generator=generator)
        samples = actions.detach().double().cpu().numpy()  # [n, num_states, 2]
        if not np.isfinite(samples).all():
            raise ValueError("sampler returned non-finite actions.")

    num_states = states.shape[0]
    figure = _new_figure(3.6 * num_states, 3.6)
    axes = figure.subplots(1, num_states, squeeze=False)[0]
    for index, (axis, state) in enumerate(zip(axes, states)):
        a0, a1, q = q_grid(
            qvalue_network, state, action_spec=action_spec, grid_size=grid_size, observation_key=observation_key
        )
        filled = axis.contourf(a0, a1, q, levels=levels, cmap="viridis")
        axis.contour(a0, a1, q, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
        figure.colorbar(filled, ax=axis, fraction=0.046, pad=0.04)
        if samples is not None:
            axis.plot(samples[:, index, 0], samples[:, index, 1], "o", ms=3, mfc="w", mec="r", mew=0.8)
        axis.set_xlim(low[0], high[0])
        axis.set_ylim(low[1], high[1])
        axis.set_aspect("equal")
        axis.set_title("s = (" + ", ".join(f"{float(x):g}" for x in state) + ")")
        axis.set_xlabel("a[0]")
        if index == 0:
            axis.set_ylabel("a[1]")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save_atomically(figure, path)


def plot_multigoal_trajectories(
    paths: Sequence[Any],
    *,
    path: str | os.PathLike,
    goals: Any = None,
    goal_radius: float = 1.0,
    bounds: float = 7.0,
    title: str | None = None,
) -> Path:
    """Draw 2-D trajectories (e.g. MultiGoal evaluation episodes) with the goals as circles.

    Args:
        paths: sequence of trajectories, each ``[T, 2]`` positions (array, tensor or nested list),
            starting state first.

    Keyword Args:
        path: where to write the PNG.
        goals: goal positions ``[num_goals, 2]`` (default: MultiGoal's four goals).
        goal_radius: radius of the goal circles (MultiGoal's termination radius by default).
        bounds: half-width of the square drawn.
        title: figure title (default: the number of goals reached by the final positions).

    Returns:
        The path written.
    """
    from maxent_components.envs.multigoal import GOAL_POSITIONS, goals_reached

    goals = GOAL_POSITIONS if goals is None else np.asarray(goals, dtype=np.float64)
    if len(paths) == 0:
        raise ValueError("paths must hold at least one trajectory.")
    arrays = []
    for i, trajectory in enumerate(paths):
        if hasattr(trajectory, "detach"):
            trajectory = trajectory.detach().cpu().numpy()
        array = np.asarray(trajectory, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 1:
            raise ValueError(f"paths[{i}] must have shape [T, 2] (2-D positions), got {array.shape}.")
        if not np.isfinite(array).all():
            raise ValueError(f"paths[{i}] contains non-finite positions.")
        arrays.append(array)

    figure = _new_figure(5.0, 5.0)
    from matplotlib.patches import Circle

    axis = figure.subplots()
    for goal in goals:
        axis.add_patch(Circle(tuple(goal), goal_radius, facecolor="gold", edgecolor="k", alpha=0.6))
    for array in arrays:
        axis.plot(array[:, 0], array[:, 1], "-", color="tab:blue", lw=1.0, alpha=0.8)
        axis.plot(array[-1, 0], array[-1, 1], "o", color="tab:red", ms=3)
    axis.plot([a[0, 0] for a in arrays], [a[0, 1] for a in arrays], "k+", ms=8)
    axis.set_xlim(-bounds, bounds)
    axis.set_ylim(-bounds, bounds)
    axis.set_aspect("equal")
    axis.grid(True, alpha=0.3)
    if title is None:
        reached = goals_reached(np.stack([a[-1] for a in arrays]), goals=goals, radius=goal_radius)
        title = f"{len(arrays)} episodes, {reached}/{len(goals)} goals reached"
    axis.set_title(title)
    figure.tight_layout()
    return _save_atomically(figure, path)


def plot_learning_curve(
    history: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    path: str | os.PathLike,
    x_key: str = "step",
    title: str | None = None,
) -> Path:
    """Plot metrics of a run's evaluation history (``summary["history"]``) against ``x_key``, one panel per key.

    Rows without a key (a metric not measured at that step) are skipped.

    Raises:
        ValueError: if the history is empty, or a key (or ``x_key``) is in no row; the message lists
            the keys found.
    """
    if isinstance(keys, str) or len(keys) == 0:
        raise ValueError(f"keys must be a non-empty sequence of metric names, got {keys!r}.")
    rows = list(history)
    if not rows:
        raise ValueError("history has no rows to plot.")
    found = sorted({k for row in rows for k in row})
    missing = [k for k in [x_key, *keys] if k not in found]
    if missing:
        raise ValueError(f"history has no metric(s) {missing}; metrics found: {found}.")

    def _number(value: Any) -> float:
        try:
            return float(value) if value is not None else math.nan
        except (TypeError, ValueError):
            return math.nan

    from matplotlib.ticker import MaxNLocator

    x = np.array([_number(row.get(x_key)) for row in rows])
    figure = _new_figure(4.5 * len(keys), 3.4)
    axes = figure.subplots(1, len(keys), squeeze=False)[0]
    for axis, key in zip(axes, keys):
        y = np.array([_number(row.get(key)) for row in rows])
        keep = np.isfinite(x) & np.isfinite(y)
        axis.plot(x[keep], y[keep], "-o", ms=2.5, lw=1.2)
        if keep.any() and np.all(y[keep] == np.round(y[keep])):  # a count (goals reached): whole-number ticks
            axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel(x_key)
        axis.set_title(key)
        axis.grid(True, alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save_atomically(figure, path)


def plot_gridworld_solutions(
    world,
    solutions: Mapping[float, Any],
    *,
    path: str | os.PathLike,
    start: int | None = None,
    gaps: Mapping[float, float] | None = None,
    title: str | None = "Soft Q-iteration: V* and the mean move of π* = exp((Q* − V*)/α)",
) -> Path:
    """Draw exact grid-world solutions, one panel per temperature: ``V`` as a heatmap, ``π`` as arrows.

    Each panel shows ``V(s)`` of one solution (walls blank) and, at every free cell, the policy's
    mean move ``E_{a∼π(·|s)}[Δ_a] = Σ_a π(a|s) Δ_a`` (``Δ_a`` the ``(row, col)`` offset of move
    ``a``): a long arrow where ``π`` is nearly deterministic, a short one where the temperature
    spreads it over opposite moves. Side by side the panels show how ``α`` trades value for entropy.

    Args:
        world: a :class:`~maxent_components.tabular.GridWorld`.
        solutions: ``{α: solution}``, each with ``v`` ``[S]`` and ``log_policy`` ``[S, 4]`` (e.g. a
            :class:`~maxent_components.tabular.SoftQIterationResult`), drawn in the mapping's order.

    Keyword Args:
        path: where to write the PNG.
        start: the start state, marked ``S`` (the goal is marked ``G``).
        gaps: ``{α: ‖V_α − V_0‖_∞}`` shown in the panel titles.
        title: figure title.

    Returns:
        The path written.
    """
    from maxent_components.tabular import GRID_MOVES

    if not solutions:
        raise ValueError("solutions must hold at least one {alpha: solution} entry.")
    for alpha, solution in solutions.items():
        v, log_policy = getattr(solution, "v", None), getattr(solution, "log_policy", None)
        if not (isinstance(v, torch.Tensor) and isinstance(log_policy, torch.Tensor)) or (
            tuple(v.shape) != (world.num_states,) or tuple(log_policy.shape) != (world.num_states, len(GRID_MOVES))
        ):
            raise ValueError(
                f"solutions[{alpha}] must have v [{world.num_states}] and log_policy [{world.num_states}, "
                f"{len(GRID_MOVES)}] tensors for this {world.height}x{world.width} grid."
            )
    columns = min(len(solutions), 3)
    rows = math.ceil(len(solutions) / columns)
    figure = _new_figure(4.6 * columns, 0.7 * world.height * rows + 1.4 * rows)
    moves = torch.tensor(GRID_MOVES, dtype=torch.float64)
    shown = world.grid(~(world.wall_mask | world.terminal)).numpy()
    cols, rows_index = np.meshgrid(np.arange(world.width), np.arange(world.height))
    marks = [(world.goal, "G")] + ([(world.cell(start), "S")] if start is not None else [])
    for index, (alpha, solution) in enumerate(solutions.items()):
        axis = figure.add_subplot(rows, columns, index + 1)
        values = solution.v.detach().double().cpu().clone()
        values[world.wall_mask] = math.nan
        image = axis.imshow(world.grid(values).numpy(), cmap="viridis", origin="upper")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="V(s)")
        mean_move = world.grid(solution.log_policy.detach().double().cpu().exp() @ moves).numpy()
        axis.quiver(
            cols[shown], rows_index[shown], mean_move[..., 1][shown], mean_move[..., 0][shown],
            angles="xy", scale_units="xy", scale=1.6, color="white", width=0.012,
        )
        for (r, c), label in marks:
            axis.text(c, r, label, ha="center", va="center", color="red", fontweight="bold")
        gap = f"   ‖V_α − V_0‖∞ = {gaps[alpha]:.3g}" if gaps is not None and alpha in gaps else ""
        axis.set_title(f"α = {alpha:g}{gap}", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return _save_atomically(figure, path)
