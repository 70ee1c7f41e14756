"""Grid worlds: built from sizes or from a text layout, and shown as text.

A grid world is the finite MDP of :func:`gridworld`: state ``s = row · width + col`` (row 0 at the
top), four moves ``0 up, 1 right, 2 down, 3 left`` (:data:`GRID_MOVES`), a terminal goal, walls that
cannot be entered and an optional slip. :func:`gridworld_from_layout` draws one as rows of text
(``S..#``), the form in which a command line gives it; :func:`render_values` and
:func:`render_policy` print a solution (see :func:`~maxent_components.tabular.soft_q_iteration`)
on the same grid.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from maxent_components.tabular.solvers import _as_float

__all__ = [
    "GRID_ACTION_ARROWS",
    "GRID_ACTION_NAMES",
    "GRID_MOVES",
    "GridWorld",
    "gridworld",
    "gridworld_from_layout",
    "render_policy",
    "render_values",
]

#: Row/column offsets of the four moves, in action order.
GRID_MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
#: Names of the actions, in order: 0 up, 1 right, 2 down, 3 left.
GRID_ACTION_NAMES: tuple[str, ...] = ("up", "right", "down", "left")
#: The actions as arrows, in order, as :func:`render_policy` prints them.
GRID_ACTION_ARROWS: tuple[str, ...] = ("^", ">", "v", "<")

@dataclass(frozen=True)
class GridWorld:
    """A tabular grid world built by :func:`gridworld`.

    Attributes:
        transitions: ``P[s, a, s']`` ``[S, A, S]`` with ``S = height · width`` and ``A = 4``.
        rewards: expected rewards ``[S, A]``.
        terminal: boolean ``[S]``; True at the goal.
        height, width: grid size; state ``s = row · width + col``, row 0 at the top.
        goal: ``(row, col)`` of the goal.
        walls: ``(row, col)`` cells that cannot be entered.
    """

    transitions: Tensor
    rewards: Tensor
    terminal: Tensor
    height: int
    width: int
    goal: tuple[int, int]
    walls: tuple[tuple[int, int], ...]

    @property
    def num_states(self) -> int:
        return self.height * self.width

    @property
    def num_actions(self) -> int:
        return len(GRID_MOVES)

    def state(self, row: int, col: int) -> int:
        """Index of the cell ``(row, col)``."""
        return row * self.width + col

    def cell(self, state: int) -> tuple[int, int]:
        """``(row, col)`` of state index ``state``."""
        return divmod(state, self.width)

    @property
    def wall_mask(self) -> Tensor:
        """Boolean ``[S]``, True at wall cells (unreachable; their values carry no meaning)."""
        mask = torch.zeros(self.num_states, dtype=torch.bool)
        for r, c in self.walls:
            mask[self.state(r, c)] = True
        return mask

    def grid(self, values: Tensor) -> Tensor:
        """Reshape a per-state tensor ``[S, ...]`` to ``[height, width, ...]``."""
        return values.reshape(self.height, self.width, *values.shape[1:])


def gridworld(
    height: int,
    width: int,
    *,
    goal: tuple[int, int],
    walls: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
    slip: float = 0.0,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
    dtype: torch.dtype = torch.float64,
) -> GridWorld:
    """Build a ``height × width`` grid world with four moves and a terminal goal.

    Layout: state ``s = row · width + col`` with row 0 at the top; actions 0 up, 1 right, 2 down,
    3 left. A move into a wall cell or off the grid leaves the agent where it is. With probability
    ``1 − slip`` the chosen move is executed, otherwise one of the four moves is executed uniformly at
    random (so the intended move has probability ``1 − slip + slip/4``). Every action taken outside
    the goal pays ``step_reward``, plus ``goal_reward`` times the probability of entering the goal.
    The goal is terminal (value zero). Wall cells are states that keep the agent in place; they are
    unreachable from every other cell, and their values carry no meaning.

    With ``slip = 0``, ``α = 0``, ``step_reward = −1`` and ``goal_reward = 0`` the optimal value is
    ``V*(s) = −(1 − γ^d(s)) / (1 − γ)`` where ``d(s)`` is the shortest-path length to the goal.

    Examples:
        >>> world = gridworld(2, 3, goal=(0, 2))
        >>> world.transitions.shape, world.rewards.shape, int(world.terminal.sum())
        (torch.Size([6, 4, 6]), torch.Size([6, 4]), 1)
    """
    for name, n in (("height", height), ("width", width)):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {n!r}.")
    if height * width < 2:
        raise ValueError("the grid needs at least two cells (a goal and somewhere to start).")

    def _cell(name: str, cell: object) -> tuple[int, int]:
        if (
            not isinstance(cell, (tuple, list))
            or len(cell) != 2
            or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in cell)
        ):
            raise TypeError(f"{name} must be a (row, col) pair of integers, got {cell!r}.")
        r, c = int(cell[0]), int(cell[1])
        if not (0 <= r < height and 0 <= c < width):
            raise ValueError(f"{name} {cell!r} lies outside the {height}x{width} grid.")
        return r, c

    goal = _cell("goal", goal)
    walls = tuple(_cell("wall", w) for w in walls)
    if goal in walls:
        raise ValueError(f"the goal {goal} cannot be a wall.")
    slip = _as_float("slip", slip)
    if not (0.0 <= slip <= 1.0):
        raise ValueError(f"slip must lie in [0, 1], got {slip}.")
    step_reward = _as_float("step_reward", step_reward)
    goal_reward = _as_float("goal_reward", goal_reward)
    if not (math.isfinite(step_reward) and math.isfinite(goal_reward)):
        raise ValueError("step_reward and goal_reward must be finite.")

    num_states, num_actions = height * width, len(GRID_MOVES)
    wall_set = set(walls)
    moved = torch.empty(num_states, num_actions, dtype=torch.long)
    for s in range(num_states):
        r, c = divmod(s, width)
        for a, (dr, dc) in enumerate(GRID_MOVES):
            nr, nc = r + dr, c + dc
            blocked = (r, c) in wall_set or not (0 <= nr < height and 0 <= nc < width) or (nr, nc) in wall_set
            moved[s, a] = s if blocked else nr * width + nc

    deterministic = torch.zeros(num_states, num_actions, num_states, dtype=dtype)
    deterministic.scatter_(2, moved[..., None], 1.0)
    # A slip executes a uniformly random move: the average of the four deterministic moves.
    transitions = (1 - slip) * deterministic + slip * deterministic.mean(1, keepdim=True)
    goal_state = goal[0] * width + goal[1]
    transitions[goal_state] = 0.0
    transitions[goal_state, :, goal_state] = 1.0
    terminal = torch.zeros(num_states, dtype=torch.bool)
    terminal[goal_state] = True
    rewards = step_reward + goal_reward * transitions[:, :, goal_state]
    rewards[goal_state] = 0.0
    return GridWorld(transitions, rewards, terminal, height, width, goal, walls)


def gridworld_from_layout(
    layout: Sequence[str],
    *,
    slip: float = 0.0,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
    dtype: torch.dtype = torch.float64,
) -> tuple[GridWorld, int]:
    """The grid world drawn by ``layout`` and its start state: ``(world, start)``.

    ``layout`` lists the rows, top row first, all of one length: ``.`` a free cell, ``#`` a wall,
    ``S`` the start (exactly one) and ``G`` the goal (exactly one, terminal). The world is
    :func:`gridworld` of that size, goal and walls, so a move is executed with probability
    ``1 − slip`` and replaced by a uniformly random one otherwise:

    .. math:: P(s'|s, a) = (1 − slip) · 1[s' = m(s, a)] + \\frac{slip}{4} \\sum_b 1[s' = m(s, b)],

    where ``m(s, b)`` is the cell reached by move ``b`` (``s`` itself when a wall or the edge is in
    the way). The start is where episodes begin (``start = row · width + col``); the dynamics do not
    depend on it. A picture is how a user gives a world on a command line, hence every error names
    ``layout`` and says what was expected.

    Examples:
        >>> world, start = gridworld_from_layout(["S.#", "..G"])
        >>> world.height, world.width, world.goal, world.walls, world.cell(start)
        (2, 3, (1, 2), ((0, 2),), (0, 0))
    """
    if isinstance(layout, (str, bytes)) or not isinstance(layout, Sequence):
        raise TypeError(f"layout must be a list of rows (strings), got {type(layout).__name__}: {layout!r}.")
    rows = [str(row) for row in layout]
    if not rows or not rows[0] or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError(f"layout={rows} is invalid; expected non-empty rows of equal length.")
    cells = {(r, c): ch for r, row in enumerate(rows) for c, ch in enumerate(row)}
    unknown = sorted(set(cells.values()) - set(".#SG"))
    if unknown:
        raise ValueError(f"layout has unknown characters {unknown}; expected only '.', '#', 'S', 'G'.")
    starts = [cell for cell, ch in cells.items() if ch == "S"]
    goals = [cell for cell, ch in cells.items() if ch == "G"]
    if len(starts) != 1 or len(goals) != 1:
        raise ValueError(f"layout must hold exactly one 'S' and one 'G'; found {len(starts)} and {len(goals)}.")
    walls = sorted(cell for cell, ch in cells.items() if ch == "#")
    world = gridworld(
        len(rows), len(rows[0]), goal=goals[0], walls=walls, slip=slip, step_reward=step_reward,
        goal_reward=goal_reward, dtype=dtype,
    )
    return world, world.state(*starts[0])


def _label(world: GridWorld, state: int) -> str | None:
    if bool(world.wall_mask[state]):
        return "#"
    if bool(world.terminal[state]):
        return "G"
    return None


def _check_table(world: GridWorld, name: str, table: Tensor, shape: tuple[int, ...]) -> None:
    if not isinstance(table, Tensor) or tuple(table.shape) != shape:
        got = tuple(table.shape) if isinstance(table, Tensor) else type(table).__name__
        raise ValueError(f"{name} must be a tensor of shape {shape} for this {world.height}x{world.width} grid, got {got}.")


def render_values(world: GridWorld, v: Tensor) -> str:
    """A value table ``v`` ``[S]`` as text on the grid: one row per grid row, 9 characters a cell.

    Each free cell shows ``V(s)`` with three decimals; walls show ``#`` (their values carry no
    meaning) and the goal ``G`` (``V = 0`` there: the episode ends). Reading ``V*`` on the grid
    shows at a glance how the value falls with the distance to the goal, e.g.
    ``V*(s) = −(1 − γ^d(s)) / (1 − γ)`` at ``α = 0`` without slip.

    Examples:
        >>> world, _ = gridworld_from_layout(["S.G"])
        >>> print(render_values(world, torch.tensor([-1.9, -1.0, 0.0])))
           -1.900    -1.000         G
    """
    _check_table(world, "v", v, (world.num_states,))
    lines = []
    for r in range(world.height):
        cells = []
        for c in range(world.width):
            s = world.state(r, c)
            label = _label(world, s)
            cells.append(f"{label:>9}" if label else f"{v[s].item():9.3f}")
        lines.append(" ".join(cells))
    return "\n".join(lines)


def render_policy(world: GridWorld, log_policy: Tensor) -> str:
    """A policy ``log π`` ``[S, 4]`` as text on the grid: the most likely move and its probability.

    Each free cell shows ``argmax_a π(a|s)`` as an arrow (``^ > v <``, the first of tied moves)
    and ``max_a π(a|s)`` with two decimals; walls show ``#`` and the goal ``G``. For the soft-optimal
    ``π*(a|s) = exp((Q*(s, a) − V*(s)) / α)`` the probability falls from 1 (or 1/k for k tied
    moves at ``α = 0``) towards 1/4 as ``α`` grows: how much the temperature spreads the policy.

    Examples:
        >>> world, _ = gridworld_from_layout(["S.G"])
        >>> policy = torch.tensor([[0.1, 0.7, 0.1, 0.1], [0.0, 1.0, 0.0, 0.0], [0.25] * 4]).log()
        >>> print(render_policy(world, policy))
        > 0.70 > 1.00      G
    """
    _check_table(world, "log_policy", log_policy, (world.num_states, world.num_actions))
    policy = log_policy.exp()
    lines = []
    for r in range(world.height):
        cells = []
        for c in range(world.width):
            s = world.state(r, c)
            label = _label(world, s)
            if label:
                cells.append(f"{label:>6}")
                continue
            best = int(policy[s].argmax())
            cells.append(f"{GRID_ACTION_ARROWS[best]} {policy[s, best].item():.2f}".rjust(6))
        lines.append(" ".join(cells))
    return "\n".join(lines)
