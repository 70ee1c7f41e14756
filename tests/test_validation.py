"""Bad data is refused where it enters (maxent_components.validation): environment output before the
replay buffer and in evaluation, the first batch of every loss, and degenerate input (empty batches,
malformed one-hot rows, actions outside the box, dtype and width mismatches), each as one named
error, never a NaN and never a raw torch message. Faulty Gymnasium environments drive whole recipes.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from recipe_runner import ROOT, run_recipe, summary_of
from tensordict import TensorDict
from test_ownership import ALGORITHMS, BOX, DISCRETE, OBS, batch, gaussian_actor
from torchrl.data import Categorical

from maxent_components import MixtureSampler, UniformSampler
from maxent_components.checks import check_device, set_data_checks
from maxent_components.runs import RunDirectory
from maxent_components.validation import EnvironmentDataError, InputError, check_env_data

pytestmark = pytest.mark.usefixtures("one_thread")


def _transitions(n=6, action=None):
    return TensorDict(
        {
            "observation": torch.zeros(n, 3),
            "action": torch.zeros(n, 2) if action is None else action,
            "next": {"observation": torch.zeros(n, 3), "reward": torch.ones(n, 1), "done": torch.zeros(n, 1, dtype=torch.bool)},
            "collector": {"traj_ids": torch.zeros(n, dtype=torch.long)},
        },
        [n],
    )


# ------------------------------------------------------------------------------------------------
# check_env_data
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [(("next", "reward"), math.nan, "next.reward=[nan]"), ("observation", math.inf, "observation=[inf, 0.0, 0.0]"),
     ("action", -math.inf, "action=[-inf, 0.0]")],
)
def test_non_finite_entries_name_frame_key_and_value(key, value, shown):
    data = _transitions()
    data.get(key)[3, 0] = value
    with pytest.raises(EnvironmentDataError) as caught:
        check_env_data(data, first_frame=100)
    assert str(caught.value) == f"collected frame 104: {shown} is not finite."


def test_the_earliest_frame_is_named_whatever_the_key_order():
    data = _transitions()
    data["observation"][4, 1] = math.nan
    data["next", "observation"][3, 1] = math.nan  # the same NaN, one frame earlier as "next"
    with pytest.raises(EnvironmentDataError, match="frame 4: next.observation"):
        check_env_data(data)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 20),
    data=st.data(),
    key=st.sampled_from(["observation", ("next", "observation"), ("next", "reward"), "action"]),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_any_single_bad_value_is_found_at_its_frame(n, data, key, bad):
    row = data.draw(st.integers(0, n - 1))
    td = _transitions(n)
    td.get(key)[row].view(-1)[0] = bad
    with pytest.raises(EnvironmentDataError, match=rf"frame {row + 1}: "):
        check_env_data(td)


@pytest.mark.parametrize(
    ("spec", "action", "rule"),
    [
        (DISCRETE, [[1, 0, 0, 0], [1, 1, 0, 0]], "is not a one-hot row"),
        (DISCRETE, [[0.5, 7.0, 0, 0], [1, 0, 0, 0]], "is not a one-hot row"),
        (DISCRETE, [[0, 0, 0, 0], [1, 0, 0, 0]], "is not a one-hot row"),
        (Categorical(3), [0, 3], r"is not an action index in \[0, 3\)"),
        (Categorical(3), [-1, 0], r"is not an action index in \[0, 3\)"),
        (BOX, [[0.0, 0.0], [0.0, 50.0]], "is outside the action box"),
        (BOX, [[1e6, 0.0], [0.0, 0.0]], "is outside the action box"),
    ],
)
def test_actions_their_spec_does_not_allow(spec, action, rule):
    action = torch.tensor(action)
    data = _transitions(2, action=action)
    with pytest.raises(EnvironmentDataError, match=rule):
        check_env_data(data, action_spec=spec)


def test_valid_data_passes_bounds_included():
    check_env_data(_transitions(2, action=torch.tensor([[-1.0, 1.0], [1.0, -1.0]])), action_spec=BOX)
    check_env_data(_transitions(2, action=torch.tensor([[0, 0, 1, 0], [1, 0, 0, 0]])), action_spec=DISCRETE)
    check_env_data(_transitions(2, action=torch.tensor([0, 2])), action_spec=Categorical(3))
    check_env_data(_transitions(0))  # nothing collected: nothing to check


# ------------------------------------------------------------------------------------------------
# Losses: the first batch, degenerate input
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_loss_refuses_an_empty_batch(name):
    build, discrete, _ = ALGORITHMS[name]
    with pytest.raises(InputError, match=r"SoftQLoss got an empty batch \(batch size \[0\]\)"):
        build()(batch(discrete)[:0])


@pytest.mark.parametrize(("name", "sampler"), [("sql", "SVGDSampler"), ("sac", "GaussianSampler"), ("discrete_sac", "CategoricalSampler")])
def test_sampler_losses_refuse_an_empty_batch(name, sampler):
    build, discrete, _ = ALGORITHMS[name]
    actor = build().actor
    assert type(actor).__name__ == sampler
    with pytest.raises(InputError, match=f"{sampler} got an empty batch"):
        actor.loss(batch(discrete)[:0])


@pytest.mark.parametrize(
    ("name", "action", "message"),
    [
        ("soft_dqn", [1, 1, 0, 0], "is not a one-hot row"),
        ("discrete_sac", [0.5, 7.0, 0.0, 0.0], "is not a one-hot row"),
        ("sql", [0.0, 50.0], "is outside the action box"),
        ("sac", [1e6, 0.0], "is outside the action box"),
    ],
)
def test_malformed_actions_in_the_first_batch_are_named(name, action, message):
    build, discrete, _ = ALGORITHMS[name]
    loss = build()
    td = batch(discrete)
    td["action"] = td["action"].to(torch.float32)
    td["action"][5] = torch.tensor(action, dtype=torch.float32)
    with pytest.raises(EnvironmentDataError, match=rf"SoftQLoss input row 6: action=.* {message}"):
        loss(td)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_a_float64_batch_into_float32_networks_is_named(name):
    build, discrete, _ = ALGORITHMS[name]
    td = batch(discrete)
    td["observation"] = td["observation"].double()
    with pytest.raises(InputError, match="observation is torch.float64 but the networks' parameters are torch.float32"):
        build()(td)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_a_wrong_observation_width_is_named_not_a_raw_torch_error(name):
    build, discrete, _ = ALGORITHMS[name]
    td = batch(discrete)
    td["observation"] = torch.zeros(8, OBS + 2)
    td["next", "observation"] = torch.zeros(8, OBS + 2)
    with pytest.raises(InputError, match=r"SoftQLoss cannot evaluate its networks on this batch \(.*observation \[8, 5\]"):
        build()(td)


def test_outside_the_box_log_prob_is_minus_inf_for_every_sampler_with_a_density():
    state = TensorDict({"observation": torch.zeros(4, OBS)}, [4])
    actions = torch.tensor([[0.5, 0.0], [2.0, 0.0], [0.0, 50.0], [1e6, -1e6]])
    mixture = MixtureSampler([UniformSampler(action_spec=BOX), gaussian_actor()], weights=[0.5, 0.5])
    for sampler in (gaussian_actor(), UniformSampler(action_spec=BOX), mixture):
        log_prob = sampler.log_prob(state, actions)
        assert torch.isfinite(log_prob[0]) and torch.equal(log_prob[1:], torch.full((3,), -math.inf)), type(sampler).__name__
        with set_data_checks(True), pytest.raises(ValueError, match="outside the box"):
            sampler.log_prob(state, actions)
    on_edge = torch.tensor([[1.0, -1.0]])
    assert torch.isfinite(gaussian_actor().log_prob(state[:1], on_edge)).all()


# ------------------------------------------------------------------------------------------------
# Whole runs with a faulty Gymnasium environment (tests/faulty_envs.py)
# ------------------------------------------------------------------------------------------------
RUN = ["smoke=true", "plots=false", "threads=1", "total_frames=400", "frames_per_batch=10", "progress=false",
       "env.name=faulty_envs:Faulty-v0"]
FAULTY = {"PYTHONPATH": str(ROOT / "tests")}


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (["+env.kwargs.nan_at=50"], "collected frame 50: next.reward=[nan] is not finite."),
        (["+env.kwargs.nan_at=7", "+env.kwargs.field=observation"], "collected frame 7: next.observation=[nan, nan, nan, nan] is not finite."),
        (["+env.eval_kwargs.nan_at=3"], "evaluation at step 200, evaluation episode 1 frame 3: next.reward=[nan] is not finite."),
    ],
    ids=["train-reward", "train-observation", "eval-reward"],
)
def test_a_nan_from_the_environment_fails_the_run_with_one_line(tmp_path, overrides, error):
    folder = tmp_path / "run"
    out = run_recipe("soft_dqn", *RUN, *overrides, f"hydra.run.dir={folder}", env=FAULTY)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert [line for line in out.stderr.splitlines() if "error" in line] == [f"soft_dqn: error: {error}"]
    summary = summary_of(folder)
    assert summary["finished"] is False and summary["failed"] == error
    assert summary["eval_return_mean"] is None or math.isfinite(summary["eval_return_mean"])
    # a relaunch does not skip it as finished
    assert RunDirectory(folder).status(summary["config_hash"]) != "finished"


def test_check_device_accepts_what_the_machine_has_and_names_the_option_otherwise(monkeypatch):
    assert check_device("device", "cpu") == torch.device("cpu")
    assert check_device("device", torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device='gpu' is not a device; expected cpu, cuda, cuda:N or mps\.$"):
        check_device("device", "gpu")
    with pytest.raises(ValueError, match=r"^device='meta': expected a cpu, cuda or mps device\.$"):
        check_device("device", "meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device='cuda': no CUDA device is available here .*; use device=cpu\.$"):
        check_device("device", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("device", "cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"^device='cuda:2': this machine has 2 CUDA device\(s\), numbered from 0\.$"):
        check_device("device", "cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device='mps': Apple's Metal backend is not available here"):
        check_device("device", "mps")
