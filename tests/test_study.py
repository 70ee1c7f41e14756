"""The study tool: runs collected by their config, cells by config minus seed, rliable statistics, files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from recipe_runner import PNG_SIGNATURE, ROOT, run_recipe

from maxent_components.study import (
    StudyError,
    collect_runs,
    group_cells,
    run_study,
    varying_keys,
)
from maxent_components.study.stats import interval, steps_to_threshold


def _write_run(folder, *, seed, sampler="svgd", task="Pendulum-v1", returns=(-800.0, -300.0), finished=True,
               version="0.1.0", digest=None, extra=None):
    config = {
        "seed": seed, "progress": False, "total_frames": 2000,
        "env": {"name": task}, "sampler": {"_target_": f"pkg.{sampler.upper()}Sampler", "num_particles": 32 if sampler == "svgd" else None},
        **(extra or {}),
    }
    history = [{"step": 1000 * (i + 1), "eval_return": r} for i, r in enumerate(returns)]
    summary = {
        "finished": finished, "config": config, "config_hash": digest or f"{sampler}-{task}-{seed}-{extra}",
        "run_only": ["progress"], "code_version": version, "history": history,
        "eval_return_mean": returns[-1], "best_eval_return": max(returns), "solved_at_step": None,
        "wall_time_s": 10.0, "updates_per_s": 100.0,
    }
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))


def test_runs_are_collected_by_config_and_grouped_by_config_minus_seed(tmp_path):
    for seed in range(3):
        _write_run(tmp_path / "a" / f"{seed}", seed=seed, sampler="svgd", returns=(-900.0, -200.0 - seed))
        _write_run(tmp_path / "b" / f"x{seed}", seed=seed, sampler="gaussian", returns=(-900.0, -400.0 - seed))
    _write_run(tmp_path / "b" / "copy", seed=0, sampler="svgd", digest="svgd-Pendulum-v1-0-None")  # same config
    _write_run(tmp_path / "b" / "unfinished", seed=4, sampler="svgd", finished=False)
    runs, notes = collect_runs([tmp_path / "a", tmp_path / "b"])
    assert len(runs) == 6
    assert any("same config" in n for n in notes) and any("unfinished" in n for n in notes)
    cells, keys = group_cells(runs)
    # the sampler's option follows its class: only the class is a column
    assert keys == ["sampler._target_"] == varying_keys(runs)
    assert [len(c.runs) for c in cells] == [3, 3] and cells[0].seeds == [0, 1, 2]


def test_options_that_vary_for_one_class_are_kept_and_versions_are_not_mixed(tmp_path):
    for seed, particles in ((0, 16), (1, 32)):
        _write_run(tmp_path / f"r{seed}", seed=seed, extra={"n": particles})
    runs, _ = collect_runs([tmp_path])
    assert varying_keys(runs) == ["n"]
    _write_run(tmp_path / "old", seed=7, version="0.0.9")
    with pytest.raises(StudyError, match="different code versions"):
        collect_runs([tmp_path])
    assert len(collect_runs([tmp_path], allow_mixed_versions=True)[0]) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudyError, match="no finished run"):
        collect_runs([tmp_path / "empty"])


def test_a_neutral_option_at_its_default_does_not_split_old_and_new_runs(tmp_path):
    _write_run(tmp_path / "old", seed=0)  # recorded before the option existed
    _write_run(tmp_path / "new", seed=1, extra={"num_envs": 1})
    summary = json.loads((tmp_path / "new" / "summary.json").read_text())
    (tmp_path / "new" / "summary.json").write_text(json.dumps({**summary, "neutral": {"num_envs": 1}}))
    _write_run(tmp_path / "other", seed=2, extra={"num_envs": 4})
    other = json.loads((tmp_path / "other" / "summary.json").read_text())
    (tmp_path / "other" / "summary.json").write_text(json.dumps({**other, "neutral": {"num_envs": 1}}))
    runs, _ = collect_runs([tmp_path])
    assert varying_keys(runs) == ["num_envs"]
    cells, _ = group_cells(runs)
    assert sorted(len(c.runs) for c in cells) == [1, 2]  # old and new at the default together


def test_a_neutral_option_is_shown_at_its_default_and_only_for_the_part_that_has_it(tmp_path):
    def write(name, seed, sampler, options):
        _write_run(tmp_path / name, seed=seed, sampler=sampler)
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        summary["config"]["sampler"].update(options)
        summary["neutral"] = {"sampler.anneal_from": 1.0}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))

    write("annealed", 0, "svgd", {"anneal_from": 100.0})
    write("unannealed", 1, "svgd", {"anneal_from": 1})  # the identity leaves it out at the default
    _write_run(tmp_path / "old", seed=2, sampler="svgd")  # recorded before the option existed
    write("langevin", 3, "langevin", {})  # a part without the option
    runs, _ = collect_runs([tmp_path])
    shown = {run.path.name: run.config.get("sampler.anneal_from") for run in runs}
    assert shown == {"annealed": 100.0, "unannealed": 1.0, "old": 1.0, "langevin": None}
    cells, _ = group_cells(runs)
    assert sorted(len(c.runs) for c in cells) == [1, 1, 2]  # the old run and the run at the default together
    out = tmp_path / "out"
    run_study([tmp_path], out=out, plots=False)
    table = (out / "results.md").read_text().split("\n- ")[0]
    assert "None" not in table and "LANGEVINSampler | – |" in table  # an option the part lacks is a dash


def test_interval_matches_a_direct_computation():
    scores = np.array([[1.0], [2.0], [3.0], [4.0], [10.0], [20.0], [30.0], [40.0]])
    out = interval(scores, reps=2000)
    assert out["mean"] == pytest.approx(scores.mean())
    # IQM: the mean of the middle half (4 of 8 runs: 3, 4, 10, 20)
    assert out["iqm"] == pytest.approx(np.mean([3.0, 4.0, 10.0, 20.0]))
    assert out["mean_low"] < out["mean"] < out["mean_high"] and out["iqm_low"] <= out["iqm"] <= out["iqm_high"]
    single = interval(np.array([[5.0]]), reps=2000)
    assert single["mean"] == 5.0 and np.isnan(single["mean_low"])


def test_intervals_repeat_exactly_and_leave_numpy_global_generator_alone():
    # rliable resamples with np.random.choice whatever random_state it is given: a study table's
    # intervals must not move between two invocations on the same runs.
    scores = np.random.default_rng(3).normal(size=(7, 1))
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first, second = interval(scores, reps=300), interval(scores, reps=300)
    assert first == second
    assert np.array_equal(np.random.get_state()[1], before)
    assert interval(scores, reps=300, seed=1) != first  # the seed is what fixes them


def test_steps_to_threshold(tmp_path):
    _write_run(tmp_path / "r", seed=0, returns=(-900.0, -300.0, -150.0, -120.0))
    run = collect_runs([tmp_path])[0][0]
    assert steps_to_threshold(run, metric="eval_return", threshold=-200.0) == 3000
    assert steps_to_threshold(run, metric="eval_return", threshold=0.0) is None
    assert steps_to_threshold(run, metric=None, threshold=None) is None  # the run's own bar was never met


def test_steps_to_the_bar_get_an_interval_only_when_every_run_reached_it(tmp_path):
    from maxent_components.study.report import write_tables
    from maxent_components.study.stats import cell_row

    for seed, returns in enumerate([(-300.0, -150.0, -100.0), (-150.0, -100.0, -100.0), (-300.0, -300.0, -130.0)]):
        _write_run(tmp_path / f"r{2 - seed}", seed=seed, returns=returns)  # folders not in seed order
    cell = group_cells(collect_runs([tmp_path])[0])[0][0]
    row = cell_row(cell, reps=200, metric="eval_return", threshold=-200.0)  # reached at 2000, 1000, 3000
    assert row["reached_bar"] == "3/3" and row["steps_to_bar_median"] == 2000
    assert row["steps_to_bar_by_seed"] == "0: 2000, 1: 1000, 2: 3000"
    assert row["steps_to_bar_iqm"] == pytest.approx(2000) and 1000 <= row["steps_to_bar_iqm_low"] <= 2000 <= row["steps_to_bar_iqm_high"] <= 3000
    row = cell_row(cell, reps=200, metric="eval_return", threshold=-120.0)  # the third run never gets there
    assert row["reached_bar"] == "2/3" and row["steps_to_bar_iqm"] is None and row["steps_to_bar_median"] == 2500
    assert row["steps_to_bar_by_seed"] == "0: 3000, 1: 2000, 2: –"
    write_tables(tmp_path, [], [cell], [row], [])
    assert "| steps to bar by seed |" in (tmp_path / "results.md").read_text()
    assert "0: 3000, 1: 2000, 2: –" in (tmp_path / "results.md").read_text()


def test_study_files_and_the_multi_task_plots(tmp_path):
    for task in ("Pendulum-v1", "MultiGoal"):
        for seed in range(5):
            for sampler, base in (("svgd", -200.0), ("gaussian", -400.0)):
                # Each task has its own preset temperature: an option set by the task, not a cell option.
                _write_run(tmp_path / "runs" / task / sampler / str(seed), seed=seed, sampler=sampler, task=task,
                           returns=(-900.0, base - 10 * seed), extra={"alpha": 0.2 if task == "Pendulum-v1" else 1.0})
    result = run_study([tmp_path / "runs"], tmp_path / "out", reps=500)
    assert set(result["files"]) == {"results.csv", "results.md", "curves", "profiles", "aggregate"}
    for name in ("curves.png", "profiles.png", "aggregate.png"):
        data = (tmp_path / "out" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    table = (tmp_path / "out" / "results.md").read_text()
    assert table.startswith("| task | sampler | seeds |") and table.count("\n| ") == 4  # 4 cells
    assert "the cells differ in: sampler._target_; set by the task: alpha, env.name." in table
    rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("task,sampler,seeds")


def test_study_command_line_errors_are_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "maxent_components.study", str(tmp_path), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 2 and out.stderr.strip().startswith("study: error: no finished run")


def _study(*args):
    return subprocess.run([sys.executable, "-m", "maxent_components.study", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, check=False)


def test_study_refuses_bad_flags_in_one_line_before_writing(tmp_path):
    _write_run(tmp_path / "runs" / "0", seed=0)
    (tmp_path / "a_file").write_text("")
    cases = {
        ("--metric", "nosuch", "--threshold", "1"): "--metric 'nosuch' is in no run's evaluations; they record eval_return.",
        ("--metric", "eval_return", "--threshold", "nan"): "--threshold must be a finite number",
        ("--tile", "nosuch.png"): "--tile nosuch.png: no run below the folders wrote nosuch.png.",
    }
    for flags, message in cases.items():
        out = _study(tmp_path / "runs", "--out", tmp_path / "o", *flags)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, (flags, out.stderr)
        assert not (tmp_path / "o").exists()
    out = _study(tmp_path / "runs", "--out", tmp_path / "a_file" / "o")
    assert out.returncode == 2 and out.stderr.startswith(f"study: error: --out {tmp_path / 'a_file' / 'o'}: cannot make the folder")


def test_runs_without_evaluations_are_skipped_with_a_note(tmp_path):
    _write_run(tmp_path / "runs" / "0", seed=0)
    exact = tmp_path / "runs" / "soft_q_iteration"
    exact.mkdir()
    (exact / "summary.json").write_text(json.dumps({
        "finished": True, "recipe": "soft_q_iteration", "config": {"seed": 0}, "config_hash": "x" * 64,
        "code_version": "0.1.0", "v_gap_inf": [0.1],
    }))
    runs, notes = collect_runs([tmp_path / "runs"])
    assert len(runs) == 1 and f"skipped {exact}: a run of soft_q_iteration with no evaluation returns to compare." in notes
    assert run_study([tmp_path / "runs"], tmp_path / "out", reps=200, plots=False)["cells"][0]["seeds"] == 1


def test_study_help_describes_every_option_in_plain_text():
    out = subprocess.run([sys.executable, "-m", "maxent_components.study", "--help"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert "95 % confidence" in out.stdout and "%%" not in out.stdout
    for option in ("--out", "--metric", "--threshold", "--min-seeds", "--reps", "--allow-mixed-versions", "--tile"):
        assert option in out.stdout


def test_a_two_sampler_two_seed_smoke_sweep_becomes_a_table_with_intervals_and_plots(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_recipe("sql", "-m", "sampler=svgd,gaussian", "seed=0,1", "smoke=true", "plots=false",
                     "total_frames=400", "eval_interval=200", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr[-3000:]
    study = subprocess.run(
        [sys.executable, "-m", "maxent_components.study", str(sweep), "--out", str(tmp_path / "study"), "--reps", "500",
         "--min-seeds", "3"],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=300,
    )
    assert study.returncode == 0, study.stderr[-3000:]
    table = (tmp_path / "study" / "results.md").read_text()
    assert "| maxent_components/MultiGoal-v0 | GaussianSampler | 2 |" in table
    assert "| maxent_components/MultiGoal-v0 | SVGDSampler | 2 |" in table
    assert "too few seeds (2 < 3)" in table
    assert (tmp_path / "study" / "curves.png").read_bytes().startswith(PNG_SIGNATURE)


def _png(path, color, size=(2, 2)):
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    figure.add_subplot(1, 1, 1).imshow(np.full((4, 4, 3), color, dtype=np.float32))
    figure.savefig(path, format="png")


def test_a_figure_of_every_run_is_tiled_across_the_cells(tmp_path):
    for task in ("Pendulum-v1", "MultiGoal"):
        for seed in (0, 1):
            for sampler in ("svgd", "gaussian", "langevin"):
                folder = tmp_path / "runs" / task / sampler / str(seed)
                _write_run(folder, seed=seed, sampler=sampler, task=task)
                if task == "MultiGoal" and sampler != "langevin":  # one cell without the figure: skipped
                    _png(folder / "q_contours.png", (0.9, 0.1, 0.1) if seed == 0 else (0.1, 0.1, 0.9))
    result = run_study([tmp_path / "runs"], tmp_path / "out", reps=200, tile=["q_contours.png"])
    assert set(result["files"]) >= {"q_contours_by_cell_MultiGoal"}
    assert not any("Pendulum" in name for name in result["files"])  # no run of that task wrote one
    from matplotlib.image import imread

    image = imread(result["files"]["q_contours_by_cell_MultiGoal"])
    # two panels of seed 0 (red), none of seed 1 (blue)
    red = (image[..., 0] > 0.8) & (image[..., 2] < 0.2)
    blue = (image[..., 2] > 0.8) & (image[..., 0] < 0.2)
    assert red.sum() > 1000 and blue.sum() == 0
    columns = red.any(0).nonzero()[0]
    assert np.diff(columns).max() > 10  # two separate panels side by side


def test_wide_figures_are_tiled_one_per_row(tmp_path):
    """A figure that is itself a row of panels (Q contours at three states) is stacked, not laid in a strip."""
    for sampler in ("svgd", "gaussian", "langevin"):
        folder = tmp_path / "runs" / sampler / "0"
        _write_run(folder, seed=0, sampler=sampler, task="MultiGoal")
        _png(folder / "q_contours.png", (0.9, 0.1, 0.1), size=(9, 3))
    result = run_study([tmp_path / "runs"], tmp_path / "out", reps=200, tile=["q_contours.png"])
    from matplotlib.image import imread

    image = imread(result["files"]["q_contours_by_cell"])
    red = (image[..., 0] > 0.8) & (image[..., 2] < 0.2)
    rows = red.any(1).nonzero()[0]
    assert (np.diff(rows) > 10).sum() == 2  # three panels, one above the other
    assert image.shape[0] > image.shape[1] / 2  # not a strip


def test_tasks_of_one_env_id_with_other_env_options_are_told_apart(tmp_path):
    """MultiGoal with other reward terms is another task: its own task label, never merged or hidden."""
    for seed in range(2):
        for terms in ([[0, 2]], [[0, 2], [0, 1]]):
            env = {"name": "MultiGoal", "kwargs": {"reward_goals": terms}, "diagnostics": {"reward_goals": terms}}
            _write_run(tmp_path / f"{len(terms)}-{seed}", seed=seed, extra={"env": env})
        _write_run(tmp_path / f"p{seed}", seed=seed)
    runs, _ = collect_runs([tmp_path])
    cells, _ = group_cells(runs)
    assert sorted(cell.task for cell in cells) == [
        "MultiGoal (reward_goals=[[0, 2], [0, 1]])", "MultiGoal (reward_goals=[[0, 2]])", "Pendulum-v1",
    ]
    assert all(len(cell.runs) == 2 for cell in cells)


def test_cell_labels_name_the_options_or_the_ones_a_cell_lacks():
    from maxent_components.study.collect import Cell
    from maxent_components.study.report import cell_label

    keys = ["compose.weights", "compose.skills", "sampler._target_"]
    assert cell_label(keys, Cell(("(1.0, 1.0)", "('a',)", "'pkg.mod.SVGDSampler'"))) == (
        "compose.weights=(1.0, 1.0), compose.skills=('a',), sampler=SVGDSampler"
    )
    assert cell_label(keys, Cell(("None", "None", "'pkg.mod.SVGDSampler'")), skip=["sampler._target_"]) == "without compose"
    assert cell_label(keys, Cell(("None", "None", "x")), skip=keys) == "all runs"
