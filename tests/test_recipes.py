"""The off-policy recipes end to end at a tiny budget: every part combination, outputs, sweeps, errors, help."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from recipe_runner import PNG_SIGNATURE, RECIPES, ROOT, run_recipe, scalars, summary_of

SUMMARY_KEYS = {"finished", "config", "config_hash", "best_eval_return", "eval_return_mean", "env_steps", "updates"}


def _check(run_dir, *, steps: int = 200) -> dict:
    summary = summary_of(run_dir)
    assert SUMMARY_KEYS <= set(summary) and summary["finished"] is True
    assert summary["env_steps"] == steps and summary["updates"] > 0 and summary["wall_time_s"] > 0
    assert summary["history"] and summary["history"][-1]["step"] == steps
    assert all(value >= 0 for _, value in scalars(run_dir, "loss_qvalue"))
    assert (run_dir / "checkpoint.pt").stat().st_size > 1000
    return summary


def test_every_valid_sampler_and_soft_value_as_one_sweep(tmp_path):
    out = run_recipe(
        "sql", "-m", "sampler=svgd,langevin,gaussian,svgd_mala", "soft_value=uniform,importance",
        "smoke=true", "plots=false", f"hydra.sweep.dir={tmp_path}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for sampler in ("svgd", "langevin", "gaussian", "svgd_mala"):
        for soft_value in ("uniform", "importance"):
            run_dir = tmp_path / f"sampler={sampler},soft_value={soft_value}"  # named by the overrides
            summary = _check(run_dir)
            expected = {"svgd": "SVGDSampler", "gaussian": "GaussianSampler"}.get(sampler, "LangevinSampler")
            assert summary["config"]["sampler"]["_target_"].endswith(expected)
            assert 0 <= summary["goals_reached"] <= 4
            # importance sampling with a sampler that has no density trains a Gaussian proposal next to it
            trains_proposal = soft_value == "importance" and sampler != "gaussian"
            assert (run_dir / "logs/metrics/scalars/loss_proposal.csv").exists() == trains_proposal
            assert (run_dir / "logs/metrics/scalars/ess.csv").exists() == (soft_value == "importance")
            # Langevin alone trains nothing; a warm-started MALA trains its SVGD sampler
            assert (run_dir / "logs/metrics/scalars/loss_actor.csv").exists() == (sampler != "langevin")


def test_multigoal_outputs_figures_and_report(tmp_path):
    out = run_recipe("sql", "smoke=true", "sampler=gaussian", "soft_value=policy", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _check(tmp_path)
    assert set(summary["figures"]) == {"learning_curve", "q_contours", "trajectories"}
    for path in summary["figures"].values():
        data = (tmp_path / path.rsplit("/", 1)[-1]).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    assert "goals_reached >= 4" in out.stdout and "q_contours.png" in out.stdout


def test_pendulum_takes_its_tuned_settings(tmp_path):
    out = run_recipe("sql", "env=pendulum", "smoke=true", "plots=false", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    config = _check(tmp_path)["config"]
    assert config["temperature"]["alpha"] == 0.2 and config["loss"]["target_update"] == "soft"
    assert config["env"]["solved_threshold"] == -200.0


@pytest.mark.parametrize("name, sampler, learned", [("soft_dqn", "BoltzmannSampler", False), ("discrete_sac", "CategoricalSampler", True)])
def test_discrete_recipes(name, sampler, learned, tmp_path):
    out = run_recipe(name, "smoke=true", "seed=3", "total_frames=600", "eval_interval=300", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _check(tmp_path, steps=600)
    assert summary["config"]["seed"] == 3 and summary["config"]["sampler"]["_target_"].endswith(sampler)
    assert [h["step"] for h in summary["history"]] == [300, 600]
    assert (tmp_path / "logs/metrics/scalars/loss_alpha.csv").exists() == learned
    assert f"{name} on CartPole-v1" in out.stdout
    assert "[INFO]" not in out.stdout + out.stderr  # TorchRL's INFO lines would run through the progress bar


def test_sac_recipe_learns_its_temperature_and_evaluates_the_mean_action(tmp_path):
    out = run_recipe("sac", "smoke=true", "plots=false", "eval_random_episodes=2", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _check(tmp_path)
    assert summary["config"]["eval_exploration"] == "deterministic" and summary["config"]["loss"]["num_qvalue_nets"] == 2
    # both recorded: the mean action's return and the maximum-entropy policy's (sampled actions)
    assert all("eval_return_random" in row for row in summary["history"])
    assert len(scalars(tmp_path, "eval_return_random")) == len(summary["history"])
    assert (tmp_path / "logs/metrics/scalars/loss_alpha.csv").exists()
    alphas = [value for _, value in scalars(tmp_path, "alpha")]
    assert alphas[-1] != 1.0  # log α moved from its initial value


@pytest.mark.parametrize(("recipe", "task"), [("sac", "hopper"), ("sql", "swimmer")])
def test_mujoco_tasks_run_end_to_end(recipe, task, tmp_path):
    out = run_recipe(recipe, f"env={task}", "smoke=true", "plots=false", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _check(tmp_path)
    assert summary["config"]["env"]["name"].endswith("-v5") and summary["config"]["eval_random_episodes"] == 5
    assert all("eval_return_random" in row for row in summary["history"])


@pytest.mark.parametrize(
    "overrides, loss_keys",
    [
        ([], {"loss_value", "loss_actor"}),
        (["variant=unified", "sampler=boltzmann"], {"loss_qvalue"}),
        (["env=pendulum", "sampler=gaussian"], {"loss_value", "loss_actor"}),
        (["env=pendulum", "sampler=clipped_gaussian"], {"loss_value", "loss_actor"}),
    ],
)
def test_pcl_recipe_trains_on_trajectory_slices(overrides, loss_keys, tmp_path):
    out = run_recipe("pcl", "smoke=true", "plots=false", "horizon=5", *overrides, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = summary_of(tmp_path)
    assert summary["finished"] and summary["updates"] > 0 and summary["config"]["horizon"] == 5
    logged = {p.stem for p in (tmp_path / "logs/metrics/scalars").glob("*.csv")}
    assert loss_keys <= logged and "consistency" in logged
    assert not ({"loss_value", "loss_actor", "loss_qvalue"} - loss_keys) & logged


@pytest.mark.parametrize("name", ["sql", "soft_dqn", "pcl"])
def test_recipes_train_with_bfloat16_autocast(name, tmp_path):
    out = run_recipe(name, "smoke=true", "plots=false", "autocast=bfloat16", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = summary_of(tmp_path)
    assert summary["finished"] and summary["updates"] > 0 and summary["config"]["autocast"] == "bfloat16"
    assert all(math.isfinite(row["eval_return"]) for row in summary["history"])


def test_pcl_refuses_a_trained_sampler_in_the_unified_variant_and_a_learned_temperature():
    out = run_recipe("pcl", "variant=unified", timeout=120)
    assert out.returncode == 2 and "variant=unified" in out.stderr and "CategoricalSampler" in out.stderr
    out = run_recipe("pcl", "temperature=auto", timeout=120)
    assert out.returncode == 2 and "PCL keeps alpha fixed" in out.stderr


def test_a_users_own_part_plugs_in_from_the_command_line(tmp_path):
    # tests/custom_parts.py defines a sampler subclass; nothing in the recipe names it.
    out = run_recipe(
        "sql", "smoke=true", "plots=false", "sampler=gaussian", "sampler._target_=custom_parts.BoundedScaleGaussianSampler",
        f"hydra.run.dir={tmp_path}", env={"PYTHONPATH": str(ROOT / "tests")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert _check(tmp_path)["config"]["sampler"]["_target_"] == "custom_parts.BoundedScaleGaussianSampler"


def test_any_gymnasium_id_including_module_ids(tmp_path):
    out = run_recipe(
        "sql", "smoke=true", "plots=false", "env=pendulum",
        "env.name=maxent_components.envs:maxent_components/MultiGoal-v0", "env.max_episode_steps=30",
        f"hydra.run.dir={tmp_path}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    _check(tmp_path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+foo=1"], "unknown option 'foo'"),
        (["+totl_frames=100"], "unknown option 'totl_frames' (+totl_frames=100); did you mean total_frames?"),
        (["totl_frames=3"], "did you mean total_frames?"),
        (["sampler.num_particle=3"], "did you mean sampler.num_particles?"),
        (["sampler=foo"], "sampler=foo is not a choice of sampler; choose one of"),
        (["total_frames=-5"], "option total_frames=-5 is invalid; expected a value >= 1."),
        (["total_frames=abc"], "option total_frames=abc is invalid; expected an integer"),
        (["progress=maybe"], "option progress=maybe is invalid; expected true or false"),
        (["network.num_cells=x"], "option network.num_cells=x is invalid; expected a list, key=[a,b]"),
        (["loss.gamma=[1]"], "option loss.gamma=[1] is invalid; expected a number"),
        (["soft_value=policy", "sampler=svgd"], "no tractable log-probability"),
        (["temperature=auto", "sampler=langevin"], "learned temperature"),
        (["sampler=clipped_gaussian"], "actor (ClippedGaussianSampler) has a policy network but no loss"),
        (["logger.backend=foo"], "option logger.backend='foo' is invalid"),
        (["autocast=float16"], "option autocast='float16' is invalid; expected one of ['none', 'bfloat16']"),
        (["seed=0,1"], "a comma list is a sweep (add -m)"),
        (["-m", "seed=0,1", "sampler=svgd,hmc"], "sampler=hmc is not a choice of sampler"),
        (["sampler.num_particles=2"], "error: sampler.num_particles=2 with fixed_fraction=0.5 gives 1 fixed"),
        # a part's own error names its argument; the command line's option is group.argument
        (["sampler.bandwidth_scale=[1.0,-1]"], "error: sampler.bandwidth_scale[1] must be a finite number > 0, got -1.0."),
        (["soft_value.num_samples=0"], "error: soft_value.num_samples must be a positive integer, got 0."),
        (["env.name=NoSuchEnv-v0"], "env.name='NoSuchEnv-v0' could not be made"),
        (["device=gpu"], "device='gpu' is not a device; expected cpu, cuda, cuda:N or mps."),
        (["num_envs=0"], "option num_envs=0 is invalid; expected a value >= 1."),
        (["frames_per_batch=10", "num_envs=3"], "frames_per_batch=10 must be a multiple of num_envs=3"),
        # options only the loop reads are checked before anything runs, too
        (["env.solved_metric=bogus"], "env.solved_metric='bogus' is not a metric of this task's evaluations; "
                                      "choose one of eval_length, eval_return, goals_reached, success_rate."),
        (["env.reward_scale=nan"], "env.reward_scale must be a finite number > 0, got nan."),
        (["env.diagnostics=no.such.fn"], "env.diagnostics='no.such.fn' cannot be imported: Error loading 'no.such.fn'"),
        (["env.diagnostics=math.pi"], "env.diagnostics must name a function of the evaluation rollouts, got float."),
        (["sampler._target_=no.such.Cls"], "_target_='no.such.Cls' cannot be imported"),
        (["init_random_frames=5000", "total_frames=1000"], "init_random_frames=5000 must be below total_frames=1000"),
        (["buffer_size=10", "batch_size=64"], "buffer_size=10 must hold at least one minibatch (batch_size=64)."),
        (["network.num_cells=[64,0]"], "network.num_cells=[64, 0] must hold positive widths"),
    ],
)
def test_usage_errors_are_one_line_with_status_2_and_leave_no_folder(overrides, message, tmp_path):
    run_dir = tmp_path / "run"
    out = run_recipe("sql", *overrides, f"hydra.run.dir={run_dir}", f"hydra.sweep.dir={run_dir}", timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sql: error: "), out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr and not run_dir.exists()


@pytest.mark.parametrize(
    "recipe, overrides, message",
    [
        ("pcl", ["variant=pcl", "sampler=boltzmann"], "variant=pcl learns the actor's log-probability: choose a sampler with a policy network"),
        ("pcl", ["horizon=1000"], "horizon=1000 is longer than an episode of env=CartPole-v1 (500 steps)"),
        ("pcl", ["loss.tau=0.9"], "unknown option 'loss.tau' (loss.tau); did you mean loss.gamma?"),  # PCL has no targets
        ("soft_dqn", ["env=pendulum"], "env=Pendulum-v1 has continuous actions; this recipe needs a finite action set"),
        ("discrete_sac", ["env=multigoal"], "has continuous actions; this recipe needs a finite action set"),
    ],
)
def test_other_recipes_refuse_what_they_cannot_run_in_one_line(recipe, overrides, message, tmp_path):
    run_dir = tmp_path / "run"
    out = run_recipe(recipe, *overrides, f"hydra.run.dir={run_dir}", timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"{recipe}: error: "), out.stderr[-2000:]
    assert message in lines[0] and not run_dir.exists()


def test_pcl_refuses_several_envs_stepped_together(tmp_path):
    out = run_recipe("pcl", "num_envs=2", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert out.returncode == 2 and "num_envs=2: PCL samples slices" in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize("recipe, overrides", [("sql", []), ("sac", ["env.max_episode_steps=20"]), ("discrete_sac", [])])
def test_recipes_step_several_envs_together(recipe, overrides, tmp_path):
    # The samplers act on a batch of observations, one per copy; every copy's transitions are stored.
    out = run_recipe(recipe, "smoke=true", "plots=false", "num_envs=5", *overrides, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _check(tmp_path)
    assert summary["env_steps"] == 200 and summary["train_episodes"] > 0
    assert summary["config"]["num_envs"] == 5


def test_a_run_recorded_before_num_envs_existed_is_the_same_run(tmp_path):
    # num_envs and population are neutral: a folder written before the options existed (no keys, the
    # same hash) is still this config's finished run; another num_envs is another config.
    import json

    from maxent_components.runs import config_identity

    assert run_recipe("soft_dqn", "smoke=true", "plots=false", f"hydra.run.dir={tmp_path}").returncode == 0
    summary = summary_of(tmp_path)
    assert summary["neutral"] == {"num_envs": 1, "population": 1}
    config = {k: v for k, v in summary["config"].items() if k not in ("num_envs", "population")}
    assert config_identity(config, summary["run_only"])[1] == summary["config_hash"]
    older = {k: v for k, v in summary.items() if k != "neutral"}
    (tmp_path / "summary.json").write_text(json.dumps({**older, "config": config}))
    again = run_recipe("soft_dqn", "smoke=true", "plots=false", f"hydra.run.dir={tmp_path}")
    assert again.returncode == 0 and "already holds a finished run of this config; skipping" in again.stdout
    other = run_recipe("soft_dqn", "smoke=true", "plots=false", "num_envs=2", f"hydra.run.dir={tmp_path}")
    assert other.returncode == 2 and "holds a run of another config" in other.stderr


def test_a_combination_error_names_the_options():
    out = run_recipe("sql", "soft_value=policy", "sampler=langevin", timeout=120)
    assert out.returncode == 2
    assert "sampler=langevin" in out.stderr and "soft_value=policy" in out.stderr


def test_help_shows_every_option_with_its_value_and_the_chosen_parts():
    out = run_recipe("sql", "env=pendulum", "--help", timeout=120)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    from omegaconf import OmegaConf

    from maxent_components.recipes.sql import SQLConfig
    from maxent_components.runs.help import _rows

    for key, _, help_text in _rows(SQLConfig, OmegaConf.create({})):
        assert f" {key}=" in text and " ".join(help_text.split()) in text, key
    assert "temperature.alpha=0.2" in text  # the value under env=pendulum
    assert "choices: clipped_gaussian, diffusion, gaussian, langevin, stein, svgd, svgd_mala;" in text
    assert "sampler.num_particles=32 K, particles per state in loss" in text  # from SVGDSampler's docstring
    assert "-m seed=0,1,2 sampler=svgd,gaussian" in text and "(e.g. env=pendulum --help)" in text
    # one docstring entry for two arguments (anneal_from, anneal_steps) is printed once
    assert text.count("annealed SVGD (D'Angelo & Fortuin, 2021)") == 1 and "sampler.anneal_steps=3000 See sampler.anneal_from." in text


@pytest.mark.parametrize("recipe, samplers, soft_values", [
    ("sql", "clipped_gaussian, diffusion, gaussian, langevin, stein, svgd, svgd_mala", "importance, policy, uniform"),
    ("sac", "clipped_gaussian, diffusion, gaussian, stein", "importance, policy, uniform"),
    ("soft_dqn", "boltzmann, categorical", "exact, policy"),
    ("discrete_sac", "boltzmann, categorical", "exact, policy"),
])
def test_help_lists_the_parts_that_fit_the_recipe(recipe, samplers, soft_values):
    out = run_recipe(recipe, "--help")
    assert out.returncode == 0, out.stderr
    choices = [line.split(";")[0].strip() for line in out.stdout.splitlines() if line.strip().startswith("choices:")]
    assert f"choices: {samplers}" in choices and f"choices: {soft_values}" in choices, choices


def test_help_shows_the_values_a_preset_sets_and_explicit_options_over_it():
    text = " ".join(run_recipe("sql", "smoke=true", "batch_size=8", "--help", timeout=120).stdout.split())
    assert "total_frames=200 " in text and "sampler.num_particles=4 " in text  # smoke's values
    assert "batch_size=8 " in text  # given explicitly: kept


def test_the_scripts_of_a_clone_run_the_installed_recipes():
    out = subprocess.run([sys.executable, str(RECIPES / "soft_dqn.py"), "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0 and "soft_dqn" in out.stdout and "sampler.KEY=VALUE" in out.stdout


def test_a_folder_holding_another_config_is_refused(tmp_path):
    assert run_recipe("sql", "smoke=true", "plots=false", f"hydra.run.dir={tmp_path}").returncode == 0
    before = summary_of(tmp_path)
    out = run_recipe("sql", "smoke=true", "plots=false", "seed=5", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2 and "holds a run of another config" in out.stderr
    assert summary_of(tmp_path) == before


def test_tensorboard_backend_writes_event_files(tmp_path):
    out = run_recipe("soft_dqn", "smoke=true", "plots=false", "logger.backend=tensorboard", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100
    assert math.isfinite(summary_of(tmp_path)["eval_return_mean"])


def test_an_sql_run_recorded_before_the_later_sampler_options_is_the_same_run():
    # The sampler's bandwidth_scale and anneal_from / anneal_steps (added later) are neutral at 1.0 and
    # 0: a config recorded without them has the identity of one holding those values, in the svgd
    # sampler and in svgd_mala's initial sampler.
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from maxent_components.recipes import sql
    from maxent_components.runs import config_identity

    later = ("bandwidth_scale", "anneal_from", "anneal_steps")

    def identity(*overrides, drop: tuple[str, ...] = ()):
        with initialize_config_module("maxent_components.recipes.conf", version_base=None):
            config = OmegaConf.to_container(compose(sql.NAME, overrides=list(overrides)), resolve=True)
        node = config
        for name in drop:
            node = node[name]
        for key in later if drop else ():
            del node[key]
        return config_identity(config, sql.recipe.run_only, sql.recipe.neutral)[1]

    # Those runs trained unannealed; the recipe's default anneals since, so a run at today's
    # defaults is another run than theirs.
    before = ("sampler.anneal_from=1.0", "sampler.anneal_steps=0")
    assert identity(*before) == identity(*before, drop=("sampler",)) != identity()
    mala_before = ("sampler=svgd_mala", *(f"sampler.init.{o.split('.', 1)[1]}" for o in before))
    mala = identity(*mala_before)
    assert mala == identity(*mala_before, drop=("sampler", "init")) != identity("sampler=svgd_mala")
    for option, value in (("bandwidth_scale", 0.1), ("bandwidth_scale", "[1.0,0.1]"), ("anneal_from", 10.0),
                          ("anneal_steps", 100)):
        assert identity(*before, f"sampler.{option}={value}") != identity(*before)
        assert identity(*mala_before, f"sampler.init.{option}={value}") != mala
    # A list of bandwidth scales (a multiple-kernel SVGD) reaches the sampler as its tuple.
    from torchrl.data import Bounded

    from maxent_components.training.builders import build_part

    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        node = compose(sql.NAME, overrides=["sampler.bandwidth_scale=[1.0,0.1]"]).sampler
    assert build_part(node, action_spec=Bounded(-1.0, 1.0, shape=(2,)), observation_dim=3).bandwidth_scale == (1.0, 0.1)


def test_the_sql_sampler_anneals_over_the_schedule_measured_for_its_task():
    # 100 over 3k updates by default (MultiGoal, Pendulum); over 50k on HalfCheetah, for svgd and for
    # the sampler svgd_mala refines (conf/tuning/sql/sampler_env); other samplers get no such key.
    from hydra import compose, initialize_config_module

    from maxent_components.recipes import sql

    def sampler(*overrides):
        with initialize_config_module("maxent_components.recipes.conf", version_base=None):
            return compose(sql.NAME, overrides=list(overrides)).sampler

    for overrides in ((), ("env=pendulum",), ("env=hopper",)):
        assert (sampler(*overrides).anneal_from, sampler(*overrides).anneal_steps) == (100.0, 3000)
    assert sampler("sampler=svgd_mala").init.anneal_steps == 3000
    assert sampler("env=halfcheetah").anneal_steps == 50000
    assert sampler("env=halfcheetah", "sampler=svgd_mala").init.anneal_steps == 50000
    assert sampler("env=halfcheetah", "sampler.anneal_steps=7").anneal_steps == 7  # the command line wins
    for other in ("gaussian", "langevin"):
        assert "anneal_steps" not in sampler("env=halfcheetah", f"sampler={other}")


def test_the_loop_steps_every_schedule_in_the_loss_once_per_update(tmp_path):
    # An annealed α and the SVGD sampler's own annealing (the sampler reads the loss's temperature
    # too, the same module, which must not be stepped twice) each advance once per update, and the
    # checkpoint carries both counts for a resume.
    from maxent_components.runs.checkpoint import read_checkpoint

    out = run_recipe("sql", "smoke=true", "plots=false", "temperature=annealed", "sampler.anneal_from=10",
                     "sampler.anneal_steps=1000", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    updates = summary_of(tmp_path)["updates"]
    state = read_checkpoint(tmp_path / "checkpoint.pt")["state"]["loss"]
    assert updates > 0
    assert int(state["temperature.step_count"]) == int(state["actor.anneal.step_count"]) == updates


@pytest.mark.parametrize("recipe", ["sql", "sac", "soft_dqn", "discrete_sac", "pcl", "soft_q_iteration"])
@pytest.mark.parametrize("argv", [["--help"], ["--help", "seed=3"], ["totl_frames=3"]],
                         ids=["help", "help-with-overrides", "usage-error"])
def test_help_and_usage_errors_answer_without_loading_pytorch(recipe, argv):
    """What makes them answer at once: neither loads PyTorch (the parts' docs are read from their source)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", f"maxent_components.recipes.{recipe}", *argv],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"torch", "tensordict", "torchrl"}, sorted(imported & {"torch", "tensordict", "torchrl"})
    if argv[0] == "totl_frames=3":
        assert out.returncode == 2 and "error: unknown option 'totl_frames'" in out.stderr
    else:
        assert out.returncode == 0 and "Options (override as key=value)" in out.stdout, out.stderr[-2000:]
