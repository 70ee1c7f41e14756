"""Figures: correct Q grids, valid non-trivial PNGs written atomically, clear errors."""

from __future__ import annotations

import matplotlib.image as matplotlib_image  # noqa: E402  (the "plot" extra is part of the dev install)
import numpy as np
import pytest
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded

from maxent_components.plotting import (
    DEFAULT_Q_STATES,
    plot_gridworld_solutions,
    plot_learning_curve,
    plot_multigoal_trajectories,
    plot_q_contours,
    q_grid,
)
from maxent_components.samplers.base import PolicySampler
from maxent_components.tabular import gridworld_from_layout, soft_q_iteration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACTION_SPEC = Bounded(low=-torch.ones(2), high=torch.ones(2), shape=(2,))


class _BimodalQ(nn.Module):
    """``Q(s, a) = −min(‖a − m‖², ‖a + m‖²)`` with ``m = (0.5, 0.5) + 0.1 s``: two modes per state."""

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        mode = 0.5 + 0.1 * observation
        d1 = ((action - mode) ** 2).sum(-1, keepdim=True)
        d2 = ((action + mode) ** 2).sum(-1, keepdim=True)
        return -torch.minimum(d1, d2)


def _qvalue_network() -> TensorDictModule:
    return TensorDictModule(_BimodalQ(), in_keys=["observation", "action"], out_keys=["state_action_value"])


class _ExactGridSampler(PolicySampler):
    """Exact draws from the Boltzmann policy restricted to a fine grid over the action box."""

    has_log_prob = False

    def sample(self, tensordict: TensorDictBase, num_samples: int = 1, *, generator=None):
        states = tensordict.get(self.tensor_keys.observation)
        out = []
        for state in states:
            a0, a1, q = q_grid(self.qvalue_network, state, action_spec=self.action_spec, grid_size=41)
            probs = torch.softmax(torch.as_tensor(q.ravel()) / self.alpha, 0)
            index = torch.multinomial(probs, num_samples, replacement=True, generator=generator)
            grid = torch.as_tensor(np.stack([a0.ravel(), a1.ravel()], -1), dtype=torch.float32)
            out.append(grid[index])
        return torch.stack(out, 1), None


def _load_png(path) -> np.ndarray:
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    return matplotlib_image.imread(str(path))


def _assert_nontrivial(image: np.ndarray, min_colours: int = 30) -> None:
    rgb = image[..., :3]
    assert image.shape[0] > 200 and image.shape[1] > 200
    colours = np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours
    assert rgb.std() > 0.05


def _red_pixels(image: np.ndarray) -> int:
    rgb = image[..., :3]
    return int(((rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)).sum())


def test_q_grid_matches_the_function_exactly():
    state = torch.tensor([-2.5, 0.0])
    a0, a1, q = q_grid(_qvalue_network(), state, action_spec=ACTION_SPEC, grid_size=11)
    assert a0.shape == a1.shape == q.shape == (11, 11)
    np.testing.assert_allclose(a0[0], np.linspace(-1, 1, 11))
    np.testing.assert_allclose(a1[:, 0], np.linspace(-1, 1, 11))
    mode = np.array([0.25, 0.5])
    d1 = (a0 - mode[0]) ** 2 + (a1 - mode[1]) ** 2
    d2 = (a0 + mode[0]) ** 2 + (a1 + mode[1]) ** 2
    np.testing.assert_allclose(q, -np.minimum(d1, d2), rtol=1e-6, atol=1e-6)


def test_q_contours_with_samples_is_a_valid_png(tmp_path):
    qnet = _qvalue_network()
    sampler = _ExactGridSampler(qnet, action_spec=ACTION_SPEC, alpha=0.05)
    generator = torch.Generator().manual_seed(0)
    out = plot_q_contours(qnet, sampler, action_spec=ACTION_SPEC, path=tmp_path / "q.png", generator=generator)
    assert out == tmp_path / "q.png"
    image = _load_png(out)
    _assert_nontrivial(image)
    assert image.shape[1] > 2.5 * image.shape[0]  # three panels side by side
    # Sampled actions are drawn as red-edged dots; contours alone have no saturated red.
    bare = _load_png(plot_q_contours(qnet, None, action_spec=ACTION_SPEC, path=tmp_path / "bare.png"))
    assert _red_pixels(image) > 100 and _red_pixels(bare) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.png", "q.png"]  # no temporary files left


def test_q_contours_custom_states_and_errors(tmp_path):
    qnet = _qvalue_network()
    image = _load_png(plot_q_contours(qnet, states=[[0.0, 0.0]], action_spec=ACTION_SPEC, path=tmp_path / "one.png"))
    _assert_nontrivial(image)
    assert image.shape[1] < 1.5 * image.shape[0]
    with pytest.raises(ValueError, match="states"):
        plot_q_contours(qnet, states=[0.0, 0.0], action_spec=ACTION_SPEC, path=tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\.png"):
        plot_q_contours(qnet, action_spec=ACTION_SPEC, path=tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="action_spec"):
        plot_q_contours(qnet, action_spec=Bounded(low=-torch.ones(3), high=torch.ones(3), shape=(3,)), path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="num_samples"):
        plot_q_contours(qnet, action_spec=ACTION_SPEC, path=tmp_path / "x.png", num_samples=0)
    assert DEFAULT_Q_STATES == ((-2.5, 0.0), (0.0, 0.0), (2.5, 2.5))


def test_multigoal_trajectories(tmp_path):
    rays = [np.linspace([0.0, 0.0], end, 12) for end in ([5.0, 0.2], [-4.6, 0.0], [0.0, 4.8], [0.3, -5.0])]
    paths = rays + [torch.zeros(5, 2), [[0.0, 0.0], [1.0, 1.0]]]
    image = _load_png(plot_multigoal_trajectories(paths, path=tmp_path / "sub" / "traj.png"))
    _assert_nontrivial(image, min_colours=10)
    with pytest.raises(ValueError, match=r"paths\[1\]"):
        plot_multigoal_trajectories([np.zeros((3, 2)), np.zeros((3, 3))], path=tmp_path / "bad.png")
    with pytest.raises(ValueError, match="at least one"):
        plot_multigoal_trajectories([], path=tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_learning_curve(tmp_path):
    # A run's evaluation history: every row has the step, eval_return only every fifth one.
    history = [
        {"step": 100 * step, "loss_qvalue": 1.0 / step, **({"eval_return": -200 + 3 * step} if step % 5 == 0 else {})}
        for step in range(1, 41)
    ]
    image = _load_png(plot_learning_curve(history, keys=["loss_qvalue", "eval_return"], path=tmp_path / "c.png"))
    _assert_nontrivial(image, min_colours=10)
    assert image.shape[1] > 1.5 * image.shape[0]
    with pytest.raises(ValueError, match=r"no metric\(s\) \['nope'\]; metrics found"):
        plot_learning_curve(history, keys=["nope"], path=tmp_path / "d.png")
    with pytest.raises(ValueError, match="keys"):
        plot_learning_curve(history, keys="eval_return", path=tmp_path / "d.png")
    with pytest.raises(ValueError, match="no rows"):
        plot_learning_curve([], keys=["eval_return"], path=tmp_path / "d.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]


def test_a_count_gets_whole_number_ticks(tmp_path, monkeypatch):
    import maxent_components.plotting as plotting

    figures = []
    monkeypatch.setattr(plotting, "_save_atomically", lambda figure, path: figures.append(figure) or path)
    history = [{"step": 1000 * i, "goals_reached": [0, 1, 1, 2, 2, 3][i], "eval_return": 0.13 * i} for i in range(6)]
    plot_learning_curve(history, keys=["goals_reached", "eval_return"], path=tmp_path / "c.png")
    counts, returns = figures[0].axes
    assert all(float(t).is_integer() for t in counts.get_yticks())
    assert not all(float(t).is_integer() for t in returns.get_yticks())  # a return keeps matplotlib's ticks


def test_gridworld_solutions(tmp_path):
    world, start = gridworld_from_layout(["S..#", "....", ".#.G"], slip=0.1)
    solutions = {
        alpha: soft_q_iteration(world.transitions, world.rewards, gamma=0.9, alpha=alpha, terminal=world.terminal)
        for alpha in (0.0, 0.1, 1.0, 3.0)
    }
    gaps = {alpha: (r.v - solutions[0.0].v).abs().max().item() for alpha, r in solutions.items()}
    out = plot_gridworld_solutions(world, solutions, path=tmp_path / "sub" / "grid.png", start=start, gaps=gaps)
    assert out == tmp_path / "sub" / "grid.png"
    image = _load_png(out)
    _assert_nontrivial(image)
    # Four panels: three on the first row, one on the second; a single one is a single panel.
    one = _load_png(plot_gridworld_solutions(world, {1.0: solutions[1.0]}, path=tmp_path / "one.png", title=None))
    assert image.shape[1] > 2.5 * one.shape[1] and image.shape[0] > 1.5 * one.shape[0]
    # The start and goal are marked in red: without a start there are fewer red pixels.
    with_start = _load_png(plot_gridworld_solutions(world, {1.0: solutions[1.0]}, path=tmp_path / "s.png", start=start))
    assert _red_pixels(with_start) > _red_pixels(one) > 0
    with pytest.raises(ValueError, match="at least one"):
        plot_gridworld_solutions(world, {}, path=tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"solutions\[0.5\] must have v \[12\] and log_policy \[12, 4\]"):
        plot_gridworld_solutions(world, {0.5: solutions[1.0]._replace(v=torch.zeros(11))}, path=tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"\.png"):
        plot_gridworld_solutions(world, solutions, path=tmp_path / "bad.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "s.png", "sub"]  # no temporary files left


def test_plotting_does_not_import_matplotlib_at_import_time():
    import subprocess
    import sys

    code = "import sys, maxent_components.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
