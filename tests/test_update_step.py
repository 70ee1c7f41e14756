"""``UpdateStep``: one update of a loss, eager or compiled, the same arithmetic either way."""

from __future__ import annotations

import copy
import importlib
import math

import pytest
import torch
from random_batches import random_transitions
from recipe_runner import run_recipe, summary_of
from torchrl.data import Bounded, OneHot

from maxent_components.modules.qvalue import (
    continuous_qvalue_network,
    discrete_qvalue_network,
)
from maxent_components.objectives import ForeachSoftUpdate, SoftQLoss
from maxent_components.samplers import GaussianSampler
from maxent_components.soft_value import ExactSoftValue, PolicySoftValue
from maxent_components.temperature import AutoTemperature
from maxent_components.training.update import UpdateStep


def _soft_dqn():
    torch.manual_seed(0)
    loss = SoftQLoss(discrete_qvalue_network(4, 3, num_cells=(32, 32)), ExactSoftValue(), alpha=0.1,
                     action_spec=OneHot(3), num_qvalue_nets=2)
    loss.make_value_estimator(gamma=0.99)
    return loss


def _sac():
    torch.manual_seed(0)
    spec = Bounded(-1.0, 1.0, shape=(2,))
    actor = GaussianSampler(action_spec=spec, observation_dim=3, num_cells=(32, 32))
    loss = SoftQLoss(continuous_qvalue_network(3, 2, num_cells=(32, 32)), PolicySoftValue(), actor=actor,
                     alpha=AutoTemperature(target_entropy=-2.0), num_qvalue_nets=2)
    loss.make_value_estimator(gamma=0.99)
    return loss


def _batches(kind: str, count: int) -> list:
    if kind == "soft_dqn":
        actions = [torch.nn.functional.one_hot(torch.randint(3, (16,)), 3) for _ in range(count)]
        return [random_transitions(a, 4, torch.Generator().manual_seed(seed), end_prob=0.1) for seed, a in enumerate(actions)]
    return [random_transitions(torch.rand(16, 2) * 2 - 1, 3, torch.Generator().manual_seed(seed), end_prob=0.1)
            for seed in range(count)]


def _train(loss, batches, compile_mode: str, fused: bool) -> list[dict[str, float]]:
    optimizer = torch.optim.Adam(loss.parameters(), lr=1e-3, fused=fused or None)
    step = UpdateStep(loss, optimizer, ForeachSoftUpdate(loss, tau=0.05), compile=compile_mode)
    torch.manual_seed(1)  # the SAC update samples actions: both runs draw the same noise
    logged = []
    for batch in batches:
        out = step(batch.clone())
        logged.append({key: float(value.detach()) for key, value in out.items() if value.ndim == 0})
    # the first compiled call (the second call) is timed as the compiling
    assert (step.compile_seconds is None) == (compile_mode == "none")
    return logged


@pytest.mark.parametrize("fused", [False, True], ids=["adam", "fused-adam"])
@pytest.mark.parametrize("kind", ["soft_dqn", "sac"])
def test_a_compiled_update_trains_exactly_as_the_eager_one(kind, fused):
    from torch._dynamo.utils import counters
    from torch._inductor import config

    # Compiled kernels draw their random numbers from their own generator unless told otherwise: the
    # SAC update samples actions, so both updates take eager's draws to be compared step by step.
    build = _soft_dqn if kind == "soft_dqn" else _sac
    eager, compiled = build(), build()
    compiled.load_state_dict(copy.deepcopy(eager.state_dict()))
    batches = _batches(kind, 6)
    frames_before = counters["frames"]["ok"]
    logged_eager = _train(eager, batches, "none", fused)
    with config.patch(fallback_random=True):
        logged_compiled = _train(compiled, batches, "default", fused)
    assert counters["frames"]["ok"] > frames_before  # dynamo traced frames of the compiled update
    for a, b in zip(logged_eager, logged_compiled, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert math.isclose(a[key], b[key], rel_tol=1e-4, abs_tol=1e-5), (key, a[key], b[key])
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)
    # the Polyak targets follow the same online parameters
    torch.testing.assert_close(compiled.target_qvalue_network_params, eager.target_qvalue_network_params,
                               rtol=1e-4, atol=1e-5)


def test_an_update_step_refuses_an_unknown_compile_mode_or_autocast_dtype():
    loss = _soft_dqn()
    optimizer = torch.optim.Adam(loss.parameters())
    with pytest.raises(ValueError, match=r"compile must be one of \['none', 'default', 'reduce-overhead', 'max-autotune'\], got 'fast'"):
        UpdateStep(loss, optimizer, compile="fast")
    with pytest.raises(ValueError, match="autocast must be one of"):
        UpdateStep(loss, optimizer, autocast="float16")


@pytest.mark.parametrize("name", ["soft_dqn", "sac", "pcl"])
def test_the_recipes_step_a_fused_adam_unless_told_otherwise(name):
    from hydra import compose, initialize_config_module

    recipe = importlib.import_module(f"maxent_components.recipes.{name}")
    for fused, expected in (([], True), (["optim.fused=false"], None)):
        with initialize_config_module("maxent_components.recipes.conf", version_base=None):
            cfg = compose(name, overrides=["network.num_cells=[8]", *fused])
        env, eval_env, loss, optimizer = recipe.build(cfg)
        env.close(), eval_env.close()
        assert optimizer.defaults["fused"] is expected  # None: PyTorch's default kernel for the device
        # every trained parameter is in the one optimiser, each once
        stepped = [p for group in optimizer.param_groups for p in group["params"]]
        assert len({id(p) for p in stepped}) == len(stepped) == len([p for p in loss.parameters() if p.requires_grad])


def test_a_recipe_trains_with_a_compiled_update_and_records_the_mode(tmp_path):
    out = run_recipe("soft_dqn", "smoke=true", "plots=false", "compile=default", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = summary_of(tmp_path)
    assert summary["finished"] and summary["updates"] > 0 and summary["config"]["compile"] == "default"
    assert summary["time_compile_s"] > 0
    assert "Profiler record function" not in out.stderr  # dynamo's notice about the optimiser's annotation
    assert all(math.isfinite(row["eval_return"]) for row in summary["history"])


def test_the_recipes_refuse_an_unknown_compile_mode_in_one_line(tmp_path):
    out = run_recipe("sac", "compile=fast", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "option compile='fast' is invalid; expected one of ['none', 'default', 'reduce-overhead', 'max-autotune']" in out.stderr
    assert not (tmp_path / "run").exists()


def test_compiled_q_evaluations_survive_other_networks_coming_and_going():
    # A compiled function guards on what it reads: the parameter-slot plans of a Q network must not
    # live in a global table whose entries other networks add and remove. Here networks evaluated
    # before it die while a function evaluating another one is being compiled.
    import gc

    batch = _batches("soft_dqn", 1)[0]
    doomed = [_soft_dqn() for _ in range(3)]
    for other in doomed:
        other(batch)
    loss = _soft_dqn()
    expected = loss(batch)["loss_qvalue"]

    def collecting_backend(graph, example_inputs):
        doomed.clear()
        gc.collect()
        return graph.forward

    def evaluate(loss, batch):
        return loss(batch)["loss_qvalue"]

    got = torch.compile(evaluate, backend=collecting_backend)(loss, batch)
    torch.testing.assert_close(got, expected)


def test_compiled_updates_of_another_batch_size_in_the_same_process_compile_anew():
    # A sequential sweep runs its jobs in one process: a compiled update seen once at one batch size
    # must not turn the batch dimension symbolic for the next run's update (dynamo's automatic dynamic
    # shapes), where drawing the policy's noise with a symbolic size fails to compile.
    for size in (16, 32):
        loss = _sac()
        step = UpdateStep(loss, torch.optim.Adam(loss.parameters(), lr=1e-3), compile="default")
        batches = [random_transitions(torch.rand(size, 2) * 2 - 1, 3, torch.Generator().manual_seed(seed), end_prob=0.1)
                   for seed in range(3)]
        for batch in batches:
            out = step(batch)
        assert step.compile_seconds is not None and torch.isfinite(out["loss_qvalue"])


@pytest.mark.parametrize("fused", [False, True], ids=["adam", "fused-adam"])
def test_a_compiled_update_leaves_a_fused_optimiser_step_out_of_the_compiled_region(fused):
    loss = _soft_dqn()
    optimizer = torch.optim.Adam(loss.parameters(), lr=1e-3, fused=fused or None)
    step = UpdateStep(loss, optimizer, ForeachSoftUpdate(loss, tau=0.05), compile="default")
    assert step.compile_optimizer is not fused
    calls = []
    step_function = optimizer.step
    optimizer.step = lambda *args, **kwargs: (calls.append(torch.compiler.is_compiling()), step_function(*args, **kwargs))[1]
    for batch in _batches("soft_dqn", 3):
        step(batch)
    # the first update runs eagerly; later ones step inside the compiled region only when not fused
    assert calls[0] is False and calls[-1] is (not fused)
