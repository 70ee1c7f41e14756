"""maxent_components.training: the loop's pieces (UTD schedule, cadences, running means, phase timer,
episode returns, non-finite guard, progress bar) and their checkpoint state, evaluation, and the
builders (parts by ``_target_``, Gymnasium environments, collector, replay buffer, target updater)."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictParams
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, exploration_type
from torchrl.objectives import LossModule

import maxent_components
from maxent_components.training import (
    MINIBATCHES_PER_DRAW,
    Cadence,
    EpisodeReturns,
    Evaluator,
    NonFiniteGuard,
    NonFiniteLossError,
    PhaseTimer,
    RunningMeans,
    UpdateSchedule,
    build_part,
    evaluate_episodes,
    make_env,
    minibatches,
    observation_dim,
    off_policy_collector,
    progress_bar,
    target_updater,
    uniform_replay_buffer,
)

CONF_DIR = Path(maxent_components.__file__).parent / "recipes" / "conf"


def _through_checkpoint(state):
    """``state`` after a torch.save / torch.load round trip, as the loop's checkpoint stores it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# ------------------------------------------------------------------------------------------------
# UpdateSchedule
# ------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    eighths=st.integers(1, 24),
    batch=st.integers(1, 17),
    num_batches=st.integers(1, 30),
    learning_starts=st.integers(0, 60),
)
def test_update_schedule_pays_utd_ratio_per_step(eighths, batch, num_batches, learning_starts):
    # Ratios k/8 and integer frame counts keep the float credit exact, so the total is exact too.
    utd_ratio = eighths / 8
    schedule = UpdateSchedule(utd_ratio=utd_ratio, learning_starts=learning_starts)
    total = 0
    learning_frames = 0
    for i in range(1, num_batches + 1):
        frames = i * batch
        due = schedule.due(frames, batch)
        if frames < learning_starts:
            assert due == 0
        else:
            learning_frames += batch
        total += due
        # The debt never exceeds one update: every whole update owed is paid at once.
        assert total == math.floor(utd_ratio * learning_frames)
        assert 0.0 <= schedule.credit < 1.0


def test_update_schedule_doc_example():
    schedule = UpdateSchedule(utd_ratio=0.5, learning_starts=4)
    assert [schedule.due(frames, 3) for frames in (3, 6, 9, 12)] == [0, 1, 2, 1]


def test_update_schedule_rejects_bad_arguments():
    for bad in (0.0, -1.0, True, float("inf"), float("nan"), "1"):
        with pytest.raises(ValueError, match="utd_ratio"):
            UpdateSchedule(utd_ratio=bad)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="learning_starts"):
            UpdateSchedule(utd_ratio=1.0, learning_starts=bad)


@settings(max_examples=60, deadline=None)
@given(
    utd_ratio=st.floats(0.01, 5.0),
    batches=st.lists(st.integers(1, 20), min_size=1, max_size=30),
    learning_starts=st.integers(0, 60),
    data=st.data(),
)
def test_update_schedule_resumes_exactly(utd_ratio, batches, learning_starts, data):
    """Restored mid-way (through a checkpoint), the schedule owes exactly what the uninterrupted one owes."""
    cut = data.draw(st.integers(0, len(batches)), label="cut")
    frames = [sum(batches[: i + 1]) for i in range(len(batches))]

    whole = UpdateSchedule(utd_ratio=utd_ratio, learning_starts=learning_starts)
    expected = [whole.due(f, b) for f, b in zip(frames, batches)]

    first = UpdateSchedule(utd_ratio=utd_ratio, learning_starts=learning_starts)
    got = [first.due(f, b) for f, b in zip(frames[:cut], batches[:cut])]
    state = _through_checkpoint(first.state_dict())
    resumed = UpdateSchedule(utd_ratio=utd_ratio, learning_starts=learning_starts)
    resumed.load_state_dict(state)
    got += [resumed.due(f, b) for f, b in zip(frames[cut:], batches[cut:])]
    assert got == expected
    assert resumed.credit == whole.credit


# ------------------------------------------------------------------------------------------------
# Cadence
# ------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(interval=st.integers(1, 50), batch=st.integers(1, 50), num_batches=st.integers(1, 40))
def test_cadence_is_due_once_per_interval_crossed(interval, batch, num_batches):
    every = Cadence(interval)
    due_at = [i * batch for i in range(1, num_batches + 1) if every.due(i * batch)]
    if batch <= interval:
        # Steps never skip a multiple, so it is due exactly at the first step at or past each one.
        expected = [
            i * batch
            for i in range(1, num_batches + 1)
            if (i * batch) // interval > ((i - 1) * batch) // interval
        ]
        assert due_at == expected
    # Never due more often than the number of multiples passed, never more than once per call.
    assert len(due_at) <= (num_batches * batch) // interval
    assert every.next > num_batches * batch or len(due_at) == num_batches


def test_cadence_doc_example():
    every = Cadence(100)
    assert [every.due(step) for step in (50, 100, 250, 260, 300)] == [False, True, True, False, True]


def test_cadence_rejects_bad_interval():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="interval"):
            Cadence(bad)


@settings(max_examples=40, deadline=None)
@given(
    interval=st.integers(1, 50),
    steps=st.lists(st.integers(1, 60), min_size=1, max_size=40),
    data=st.data(),
)
def test_cadence_resumes_exactly(interval, steps, data):
    cut = data.draw(st.integers(0, len(steps)), label="cut")
    counts = [sum(steps[: i + 1]) for i in range(len(steps))]
    whole = Cadence(interval)
    expected = [whole.due(c) for c in counts]
    first = Cadence(interval)
    got = [first.due(c) for c in counts[:cut]]
    resumed = Cadence(interval)
    resumed.load_state_dict(_through_checkpoint(first.state_dict()))
    got += [resumed.due(c) for c in counts[cut:]]
    assert got == expected and resumed.next == whole.next


# ------------------------------------------------------------------------------------------------
# RunningMeans
# ------------------------------------------------------------------------------------------------
def test_running_means_average_per_update_without_converting():
    means = RunningMeans()
    assert means.pop() == {}
    weight = torch.tensor(2.0, requires_grad=True)
    values = [1.0, 4.0, -2.5, 8.0]
    for i, v in enumerate(values):
        # "b" is produced on every other update only: its sum is over those, its mean per update.
        means.add(a=weight * v, b=torch.tensor(v) if i % 2 == 0 else None)
    out = means.pop()
    assert set(out) == {"a", "b"}
    assert isinstance(out["a"], torch.Tensor) and not out["a"].requires_grad
    torch.testing.assert_close(out["a"], torch.tensor(2.0 * sum(values) / 4))
    torch.testing.assert_close(out["b"], torch.tensor((values[0] + values[2]) / 4))
    assert means.pop() == {} and means.count == 0
    means.add(a=torch.tensor(3.0))
    torch.testing.assert_close(means.pop()["a"], torch.tensor(3.0))
    # the same terms in another order are summed by name (one fused add once every term is there)
    means.add(a=torch.tensor(1.0), b=torch.tensor(10.0))
    means.add(b=torch.tensor(20.0), a=torch.tensor(2.0))
    out = means.pop()
    assert out["a"].item() == 1.5 and out["b"].item() == 15.0


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(-100, 100, width=32), st.none() | st.floats(-100, 100, width=32)),
        min_size=1,
        max_size=20,
    ),
    data=st.data(),
)
def test_running_means_resume_exactly(rows, data):
    cut = data.draw(st.integers(0, len(rows)), label="cut")

    def add(means, a, b):
        means.add(a=torch.tensor(a), b=None if b is None else torch.tensor(b))

    whole = RunningMeans()
    for a, b in rows:
        add(whole, a, b)
    first = RunningMeans()
    for a, b in rows[:cut]:
        add(first, a, b)
    state = _through_checkpoint(first.state_dict())
    resumed = RunningMeans()
    resumed.load_state_dict(state)
    assert resumed.count == cut
    for a, b in rows[cut:]:
        add(resumed, a, b)
    expected, got = whole.pop(), resumed.pop()
    assert set(got) == set(expected)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


# ------------------------------------------------------------------------------------------------
# PhaseTimer
# ------------------------------------------------------------------------------------------------
def _fake_clock(monkeypatch):
    clock = iter(float(t) for t in range(1000))
    monkeypatch.setattr("maxent_components.training.bookkeeping.time.perf_counter", lambda: next(clock))


def test_phase_timer_counts_each_phase(monkeypatch):
    _fake_clock(monkeypatch)
    timer = PhaseTimer("collect", "update")  # start = 0
    with timer("update"):  # 1 -> 2
        pass
    with pytest.raises(RuntimeError), timer("update"):  # 3 -> 4, counted though it raised
        raise RuntimeError("boom")
    items = list(timer.iterate(["x", "y"], "collect"))  # 5->6, 7->8, exhausted 9->10
    assert items == ["x", "y"]
    assert timer.seconds == {"collect": 3.0, "update": 2.0}
    assert timer.summary() == {"time_collect_s": 3.0, "time_update_s": 2.0}
    assert timer.elapsed() == 11.0
    with pytest.raises(KeyError, match="'eval'.*collect"):
        with timer("eval"):
            pass
    with pytest.raises(KeyError, match="'eval'"):
        timer.iterate([], "eval")


def test_phase_timer_resumes_from_its_state(monkeypatch):
    _fake_clock(monkeypatch)
    timer = PhaseTimer("collect", "update")  # start = 0
    with timer("update"):  # 1 -> 2
        pass
    state = _through_checkpoint(timer.state_dict())  # elapsed read at 3
    assert state == {"seconds": {"collect": 0.0, "update": 1.0}, "elapsed": 3.0}
    resumed = PhaseTimer("collect", "update")  # made at 4
    resumed.load_state_dict(state)  # at 5: as if started at 2
    with resumed("update"):  # 6 -> 7
        pass
    with resumed("collect"):  # 8 -> 9
        pass
    assert resumed.seconds == {"collect": 1.0, "update": 2.0}
    assert resumed.elapsed() == 8.0  # 10 - 2: the time before the save counts
    with pytest.raises(KeyError):
        with resumed("eval"):
            pass


def test_phase_timer_real_clock():
    timer = PhaseTimer("wait")
    with timer("wait"):
        time.sleep(0.02)
    assert 0.02 <= timer.seconds["wait"] <= timer.elapsed()


# ------------------------------------------------------------------------------------------------
# EpisodeReturns
# ------------------------------------------------------------------------------------------------
def test_episode_returns_across_batches():
    tracker = EpisodeReturns(window=2)
    assert tracker.mean_recent() is None and tracker.count == 0
    tracker.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([False, True, False]))
    tracker.update(torch.tensor([[4.0], [5.0]]), torch.tensor([[True], [True]]))
    assert tracker.returns == [3.0, 7.0, 5.0] and tracker.count == 3
    assert tracker.mean_recent() == 6.0
    with pytest.raises(ValueError, match="same steps"):
        tracker.update(torch.ones(2), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="window"):
        EpisodeReturns(window=0)


@settings(max_examples=40, deadline=None)
@given(
    streams=st.integers(1, 4).flatmap(
        lambda n: st.lists(st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=12, max_size=12), min_size=n, max_size=n)
    ),
    batch=st.sampled_from([1, 2, 3, 4, 6, 12]),
)
def test_episode_returns_of_several_envs_are_each_envs_own(streams, batch):
    # Batches of E environments stepped together, flattened env by env as the loop flattens a
    # collector's [E, T] batch: every environment's episodes, as if each had been tracked alone.
    rewards = torch.tensor([[float(r) for r, _ in stream] for stream in streams])  # [E, 12]
    dones = torch.tensor([[d for _, d in stream] for stream in streams])
    together = EpisodeReturns(num_envs=len(streams))
    for r, d in zip(rewards.split(batch, dim=1), dones.split(batch, dim=1)):
        together.update(r.reshape(-1, 1), d.reshape(-1, 1))
    alone, partial = [], []
    for r, d in zip(rewards, dones):
        tracker = EpisodeReturns()
        tracker.update(r, d)
        alone += tracker.returns
        partial += tracker.state_dict()["current"]
    assert sorted(together.returns) == sorted(alone)
    assert together.state_dict()["current"] == partial  # each env's unfinished episode, in env order
    resumed = EpisodeReturns(num_envs=len(streams))
    resumed.load_state_dict(_through_checkpoint(together.state_dict()))
    assert resumed.state_dict() == together.state_dict()


def test_episode_returns_state_of_an_earlier_version_and_of_other_env_counts():
    tracker = EpisodeReturns()
    tracker.load_state_dict({"returns": [1.0], "current": 2.5})  # one float: saved before num_envs
    tracker.update(torch.tensor([1.0]), torch.tensor([True]))
    assert tracker.returns == [1.0, 3.5]
    with pytest.raises(ValueError, match="num_envs=2"):
        EpisodeReturns(num_envs=2).load_state_dict({"returns": [], "current": [0.0]})
    with pytest.raises(ValueError, match="3 environment"):
        EpisodeReturns(num_envs=3).update(torch.ones(4), torch.ones(4, dtype=torch.bool))


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=1, max_size=40),
    batch=st.integers(1, 7),
    data=st.data(),
)
def test_episode_returns_resume_mid_episode(steps, batch, data):
    rewards = torch.tensor([float(r) for r, _ in steps]).unsqueeze(-1)
    dones = torch.tensor([d for _, d in steps]).unsqueeze(-1)
    chunks = list(zip(rewards.split(batch), dones.split(batch)))
    cut = data.draw(st.integers(0, len(chunks)), label="cut")
    whole = EpisodeReturns(window=3)
    for r, d in chunks:
        whole.update(r, d)
    first = EpisodeReturns(window=3)
    for r, d in chunks[:cut]:
        first.update(r, d)
    state = _through_checkpoint(first.state_dict())
    resumed = EpisodeReturns(window=3)
    resumed.load_state_dict(state)
    for r, d in chunks[cut:]:
        resumed.update(r, d)
    assert resumed.returns == whole.returns and resumed.count == whole.count
    assert resumed.mean_recent() == whole.mean_recent()
    # exact returns: the sums of the rewards between dones
    expected, current = [], 0.0
    for r, d in steps:
        current += r
        if d:
            expected.append(current)
            current = 0.0
    assert whole.returns == expected


# ------------------------------------------------------------------------------------------------
# NonFiniteGuard, progress bar
# ------------------------------------------------------------------------------------------------
def test_nonfinite_guard():
    guard = NonFiniteGuard()
    guard.check({}, step=0)
    # non-loss entries (alpha, entropy) are not checked
    guard.check(TensorDict({"loss_q": torch.tensor(1.0), "alpha": torch.tensor(float("nan"))}, []), step=1)
    with pytest.raises(NonFiniteLossError, match=r"step 5: loss_actor=nan"):
        guard.check({"loss_q": torch.tensor(1.0), "loss_actor": torch.tensor(float("nan"))}, step=5)
    with pytest.raises(NonFiniteLossError, match="loss_q=inf"):
        guard.check({"loss_q": torch.tensor(float("inf"))}, step=6)
    with pytest.raises(NonFiniteLossError, match=r"loss_q=-inf.*loss_v=nan"):
        guard.check(TensorDict({"loss_q": torch.tensor(float("-inf")), "loss_v": torch.tensor(float("nan"))}, []), step=7)
    # one bad element of a non-scalar term
    with pytest.raises(NonFiniteLossError, match="loss_q"):
        guard.check({"loss_q": torch.tensor([1.0, float("nan")])}, step=8)
    # every step is checked (there is no sparse mode any more)
    for step in range(3):
        with pytest.raises(NonFiniteLossError):
            guard.check({"loss_q": torch.tensor(float("nan"))}, step=step)
    assert issubclass(NonFiniteLossError, FloatingPointError)


def test_progress_bar(capsys, monkeypatch):
    with progress_bar(10, enabled=False) as bar:
        bar.skip_to(3)
        bar.update(5, loss=1.0)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("maxent_components.training.bookkeeping._is_terminal", lambda stream: True)
    with progress_bar(10, enabled=True, desc="train") as bar:
        bar.skip_to(4)
        bar.update(6, loss=torch.tensor(0.5), phase="x")
    err = capsys.readouterr().err
    assert "train" in err and "10/10" in err


def test_a_progress_bar_in_a_log_file_writes_one_line_per_evaluation(capsys):
    # stderr is captured here, not a terminal: no carriage-return redraws, one line when the shown values change
    with progress_bar(30, enabled=True, desc="sql") as bar:
        bar.skip_to(5)
        bar.update(5)
        bar.update(10, eval_return=-3.25)
        bar.update(5, eval_return=-3.25)
        bar.update(5, eval_return=-1.0, goals_reached=4)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines() == ["sql: 20/30 steps, eval_return=-3.25", "sql: 30/30 steps, eval_return=-1, goals_reached=4"]


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------
class _CountdownEnv(EnvBase):
    """Reward ``t`` at step ``t``, terminated after ``length`` steps: every episode's return is
    ``length * (length + 1) / 2`` (not its length)."""

    def __init__(self, length: int, batch_size=()):
        super().__init__(batch_size=batch_size)
        self.length = length
        shape = tuple(batch_size)
        self.observation_spec = Composite(observation=Unbounded(shape=(*shape, 1)), shape=shape)
        self.action_spec = Bounded(-1.0, 1.0, shape=(*shape, 1))
        self.reward_spec = Unbounded(shape=(*shape, 1))
        self.t = 0

    def _reset(self, tensordict=None):
        self.t = 0
        return TensorDict({"observation": torch.zeros(*self.batch_size, 1)}, batch_size=self.batch_size)

    def _step(self, tensordict):
        self.t += 1
        done = torch.full((*self.batch_size, 1), self.t >= self.length)
        return TensorDict(
            {
                "observation": torch.full((*self.batch_size, 1), float(self.t)),
                "reward": torch.full((*self.batch_size, 1), float(self.t)),
                "done": done,
                "terminated": done.clone(),
            },
            batch_size=self.batch_size,
        )

    def _set_seed(self, seed):
        return seed


def _recording_policy(seen):
    def policy(td):
        seen.append((exploration_type(), torch.is_grad_enabled()))
        td.set("action", torch.zeros(1))
        return td

    return policy


def test_evaluate_episodes_exact_returns_and_exploration_type():
    env = _CountdownEnv(length=7)
    seen = []
    rollouts = evaluate_episodes(env, _recording_policy(seen), num_episodes=3, max_steps=100)
    assert len(rollouts) == 3
    assert [r.shape[0] for r in rollouts] == [7, 7, 7]
    assert [r.get(("next", "reward")).sum().item() for r in rollouts] == [28.0, 28.0, 28.0]
    assert set(seen) == {(ExplorationType.DETERMINISTIC, False)} and len(seen) == 21
    seen.clear()
    rollouts = evaluate_episodes(env, _recording_policy(seen), num_episodes=2, max_steps=4, exploration="random")
    assert [r.get(("next", "reward")).sum().item() for r in rollouts] == [10.0, 10.0]  # cut at 4 steps
    assert set(seen) == {(ExplorationType.RANDOM, False)}


def test_evaluator_metrics_and_diagnostics():
    env = _CountdownEnv(length=7)
    seen, diagnosed = [], []

    def diagnostics(rollouts):
        diagnosed.append(len(rollouts))
        return {"last_obs": float(rollouts[-1].get(("next", "observation"))[-1])}

    evaluator = Evaluator(env, _recording_policy(seen), num_episodes=3, max_steps=100, diagnostics=diagnostics)
    metrics, rollouts = evaluator()
    assert metrics == {"eval_return": 28.0, "eval_length": 7.0, "last_obs": 7.0}
    assert len(rollouts) == 3 and diagnosed == [3]
    assert {e for e, _ in seen} == {ExplorationType.DETERMINISTIC}
    seen.clear()
    metrics, _ = Evaluator(env, _recording_policy(seen), num_episodes=2, max_steps=4, exploration="random")()
    assert metrics == {"eval_return": 10.0, "eval_length": 4.0}
    assert {e for e, _ in seen} == {ExplorationType.RANDOM}
    seen.clear()
    both = Evaluator(env, _recording_policy(seen), num_episodes=2, max_steps=100, random_episodes=3)
    metrics, rollouts = both()
    assert metrics == {"eval_return": 28.0, "eval_length": 7.0, "eval_return_random": 28.0}
    assert len(rollouts) == 2  # the exploration episodes; the sampled ones only give their return
    assert [e for e, _ in seen] == [ExplorationType.DETERMINISTIC] * 14 + [ExplorationType.RANDOM] * 21


def test_evaluation_rejects_bad_arguments():
    env = _CountdownEnv(length=3)
    with pytest.raises(ValueError, match="exploration"):
        evaluate_episodes(env, lambda td: td, num_episodes=1, max_steps=3, exploration="greedy")
    with pytest.raises(ValueError, match="num_episodes"):
        evaluate_episodes(env, lambda td: td, num_episodes=0, max_steps=3)
    with pytest.raises(ValueError, match="max_steps"):
        evaluate_episodes(env, lambda td: td, num_episodes=1, max_steps=0)
    with pytest.raises(ValueError, match="unbatched"):
        evaluate_episodes(_CountdownEnv(length=3, batch_size=(2,)), lambda td: td, num_episodes=1, max_steps=3)
    with pytest.raises(ValueError, match="eval_exploration"):
        Evaluator(env, lambda td: td, num_episodes=1, max_steps=3, exploration="mode")
    with pytest.raises(ValueError, match="eval_episodes"):
        Evaluator(env, lambda td: td, num_episodes=0, max_steps=3)


# ------------------------------------------------------------------------------------------------
# Data pipeline
# ------------------------------------------------------------------------------------------------
def test_off_policy_collector_random_then_policy_and_buffer():
    torch.manual_seed(0)
    env = _CountdownEnv(length=5)
    policy = TensorDictModule(lambda obs: torch.full_like(obs, 0.5), in_keys=["observation"], out_keys=["action"])
    collector = off_policy_collector(env, policy, frames_per_batch=4, total_frames=12, init_random_frames=4)
    buffer = uniform_replay_buffer(10, batch_size=3)
    batches = [batch.reshape(-1) for batch in collector]
    collector.shutdown()
    assert [b.numel() for b in batches] == [4, 4, 4]
    # The first batch acts uniformly at random, the later ones with the policy.
    assert not (batches[0]["action"] == 0.5).any()
    assert all((b["action"] == 0.5).all() for b in batches[1:])
    for b in batches:
        buffer.extend(b)
    assert len(buffer) == 10  # capacity
    assert buffer.sample().batch_size == torch.Size([3])
    assert "collector" not in batches[0].keys()  # no trajectory ids: nothing reads them
    with pytest.raises(ValueError, match="buffer_size"):
        uniform_replay_buffer(0, batch_size=3)
    with pytest.raises(ValueError, match="batch_size"):
        uniform_replay_buffer(10, batch_size=0)


def test_the_replay_buffer_keeps_what_the_loss_reads_and_the_loss_sees_the_same_rows():
    from maxent_components import AutoTemperature, GaussianSampler, PathConsistencyLoss, PolicySoftValue, SoftQLoss
    from maxent_components.modules import continuous_qvalue_network, tanh_normal_actor_network
    from maxent_components.training.builders import stored_keys

    torch.manual_seed(0)
    box = Bounded(-1.0, 1.0, shape=(2,))
    actor = GaussianSampler(policy_network=tanh_normal_actor_network(3, 2, num_cells=(8,)), action_spec=box)
    loss = SoftQLoss(continuous_qvalue_network(3, 2, num_cells=(8,)), PolicySoftValue(), actor=actor,
                     alpha=AutoTemperature(-2.0), num_qvalue_nets=2)
    kept = stored_keys(loss)
    assert set(kept) == {"observation", "action", ("next", "observation"), ("next", "reward"), ("next", "done"),
                         ("next", "terminated")}
    n, flags = 20, torch.zeros(20, 1, dtype=torch.bool)
    rows = TensorDict({
        "observation": torch.randn(n, 3), "action": torch.rand(n, 2) * 2 - 1, "action_log_prob": torch.randn(n),
        "done": flags, "terminated": flags, "truncated": flags,
        "next": {"observation": torch.randn(n, 3), "reward": torch.randn(n, 1), "done": flags,
                 "terminated": flags, "truncated": flags},
    }, batch_size=[n])
    full, lean = uniform_replay_buffer(n, batch_size=8), uniform_replay_buffer(n, batch_size=8)
    full.extend(rows)
    lean.extend(rows.select(*kept))
    assert set(lean.sample().keys(True, True)) == set(kept)
    torch.manual_seed(1)
    from_full = loss(full.sample())
    torch.manual_seed(1)
    from_lean = loss(lean.sample())
    for key in ("loss_qvalue", "loss_actor", "loss_alpha"):
        assert torch.equal(from_full[key], from_lean[key])
    value = TensorDictModule(torch.nn.Linear(3, 1), in_keys=["observation"], out_keys=["state_value"])
    pcl = PathConsistencyLoss(GaussianSampler(policy_network=tanh_normal_actor_network(3, 2, num_cells=(8,)),
                                              action_spec=box), value, alpha=0.1)
    assert stored_keys(pcl) is None  # a loss without in_keys of its own: every entry is kept


def test_a_collector_batch_of_several_envs_is_env_by_env_in_time_order():
    # The loop flattens a batch env by env (EpisodeReturns relies on it): TorchRL puts the envs first.
    env = make_env({"name": "CartPole-v1"}, seed=0, num_envs=3)
    collector = off_policy_collector(env, None, frames_per_batch=12, total_frames=24, init_random_frames=24)
    batches = list(collector)
    collector.shutdown()
    assert all(b.batch_size == torch.Size([3, 4]) for b in batches)
    for batch in batches:
        for copy in batch:  # each row of 4 steps continues itself: s_{t+1} is the step's next state
            done = copy["next", "done"].view(-1)
            same = copy["next", "observation"][:-1] == copy["observation"][1:]
            assert same[~done[:-1]].all()


def test_replay_rows_with_trajectory_ids_from_an_earlier_version_are_refused_on_restore():
    from maxent_components.training.resume import buffer_state as _buffer_state
    from maxent_components.training.resume import restore_buffer as _restore_buffer

    rows = TensorDict({"observation": torch.zeros(4, 2)}, batch_size=[4])
    fresh = uniform_replay_buffer(10, batch_size=2)
    _restore_buffer(fresh, {"rows": rows})
    assert len(fresh) == 4
    old = rows.clone()
    old["collector", "traj_ids"] = torch.zeros(4, dtype=torch.long)
    for state in ({"rows": old}, _buffer_state(_filled(uniform_replay_buffer(4, batch_size=2), old))):
        with pytest.raises(ValueError, match="trajectory ids"):
            _restore_buffer(uniform_replay_buffer(4, batch_size=2), state)


def _filled(buffer, rows):
    buffer.extend(rows)
    return buffer


def test_training_module_silences_the_torchrl_weight_updater_warning():
    # A fresh interpreter: torchrl.collectors warns only the first time it is imported.
    code = textwrap.dedent(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import maxent_components.training
            warnings.warn("an unrelated deprecation", DeprecationWarning)
        messages = [str(w.message) for w in caught]
        assert messages == ["an unrelated deprecation"], messages
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------------
# build_part
# ------------------------------------------------------------------------------------------------
BUILT: list[tuple[str, dict]] = []


class Narrow:
    """Declares two of the runtime arguments a recipe passes."""

    def __init__(self, size: int = 1, *, action_spec=None, observation_dim=None, options=None):
        BUILT.append(("Narrow", {"size": size, "action_spec": action_spec, "observation_dim": observation_dim}))
        self.size, self.action_spec, self.observation_dim, self.options = size, action_spec, observation_dim, options


class Wide:
    """Takes any keyword argument."""

    def __init__(self, inner=None, **kwargs):
        BUILT.append(("Wide", dict(kwargs)))
        self.inner, self.kwargs = inner, kwargs


def _target(cls) -> str:
    return f"{__name__}.{cls.__name__}"


@pytest.fixture
def built():
    BUILT.clear()
    yield BUILT
    BUILT.clear()


def test_build_part_passes_only_declared_runtime_arguments(built):
    spec = Bounded(-1.0, 1.0, shape=(2,))
    context = {"action_spec": spec, "observation_dim": 3, "num_cells": [8], "actor": object()}
    part = build_part({"_target_": _target(Narrow), "size": 4, "options": {"a": [1, 2]}}, **context)
    assert isinstance(part, Narrow) and part.size == 4 and part.observation_dim == 3
    assert part.action_spec is spec  # the runtime object itself, not read as a config
    assert part.options == {"a": [1, 2]} and type(part.options) is dict
    # a node's own value wins over the runtime argument of the same name
    part = build_part(OmegaConf.create({"_target_": _target(Narrow), "observation_dim": 5}), **context)
    assert part.observation_dim == 5 and part.action_spec is spec
    # **kwargs takes everything
    wide = build_part({"_target_": _target(Wide), "x": 1}, **context)
    assert set(wide.kwargs) == {"x", "action_spec", "observation_dim", "num_cells", "actor"}
    assert wide.kwargs["actor"] is context["actor"]


def test_build_part_builds_nested_targets_first(built):
    spec = Bounded(-1.0, 1.0, shape=(2,))
    node = OmegaConf.create(
        {
            "_target_": _target(Wide),
            "inner": {"_target_": _target(Narrow), "size": 2},
            "plain": {"a": 1},
        }
    )
    part = build_part(node, action_spec=spec, observation_dim=3)
    assert [name for name, _ in built] == ["Narrow", "Wide"]
    assert isinstance(part.inner, Narrow) and part.inner.size == 2
    assert part.inner.action_spec is spec and part.inner.observation_dim == 3  # the same runtime arguments
    assert part.kwargs["plain"] == {"a": 1}
    assert OmegaConf.to_container(node)["inner"] == {"_target_": _target(Narrow), "size": 2}  # not mutated


def test_build_part_needs_a_target():
    with pytest.raises(ValueError, match="_target_"):
        build_part({"num_samples": 8}, action_spec=None)
    with pytest.raises(ValueError, match="_target_"):
        build_part(OmegaConf.create({}))


def test_build_part_from_the_recipe_configs():
    from maxent_components.samplers import SVGDSampler
    from maxent_components.soft_value import UniformSoftValue

    spec = Bounded(-1.0, 1.0, shape=(2,))
    context = {"action_spec": spec, "observation_dim": 3, "num_cells": [8]}
    sampler = build_part(OmegaConf.load(CONF_DIR / "sampler" / "svgd.yaml"), **context)
    assert isinstance(sampler, SVGDSampler) and sampler.num_particles == 32
    estimator = build_part(OmegaConf.load(CONF_DIR / "soft_value" / "uniform.yaml"), **context)
    assert isinstance(estimator, UniformSoftValue)


# ------------------------------------------------------------------------------------------------
# make_env, observation_dim
# ------------------------------------------------------------------------------------------------
def test_make_env_any_gymnasium_id():
    env = make_env({"name": "CartPole-v1", "max_episode_steps": 9}, seed=0)
    assert observation_dim(env) == 4 and env.batch_size == torch.Size([])
    assert env._env.spec.max_episode_steps == 9
    rollout = env.rollout(50)  # random actions, cut by the time limit at the latest
    assert rollout.shape[0] <= 9
    # a DictConfig node, the recipe config, and module:Id
    env = make_env(OmegaConf.load(CONF_DIR / "env" / "cartpole.yaml"), seed=0)
    assert env._env.spec.max_episode_steps == 500
    assert observation_dim(make_env({"name": "gymnasium.envs.classic_control:CartPole-v1"}, seed=0)) == 4


def test_make_env_leaves_a_cpu_env_without_a_device():
    # TorchRL casts every step's output to an env's device; a device-less env skips that cast
    # (benchmarks/env_step.py: about a third of a CartPole transition) and still makes CPU tensors.
    for device in ("cpu", torch.device("cpu")):
        env = make_env({"name": "CartPole-v1"}, seed=0, device=device)
        assert env.device is None
        assert env.rollout(3).get("observation").device == torch.device("cpu")


def test_make_env_gives_float32_observations_of_float64_tasks():
    env = make_env({"name": "Hopper-v5"}, seed=0)  # MuJoCo observations are float64 in Gymnasium
    assert env.observation_spec["observation"].dtype == torch.float32
    rollout = env.rollout(5)
    assert rollout["observation"].dtype == rollout["next", "observation"].dtype == torch.float32
    assert make_env({"name": "CartPole-v1"}, seed=0).observation_spec["observation"].dtype == torch.float32


def test_make_env_eval_kwargs_only_for_evaluation():
    node = {"name": "Pendulum-v1", "kwargs": {"g": 5.0}, "eval_kwargs": {"g": 2.0}}
    assert make_env(node, seed=0)._env.unwrapped.g == 5.0
    assert make_env(node, seed=0, evaluation=True)._env.unwrapped.g == 2.0
    assert make_env({"name": "Pendulum-v1", "kwargs": {"g": 5.0}}, seed=0, evaluation=True)._env.unwrapped.g == 5.0


def test_make_env_seeds_train_and_eval_apart():
    node = {"name": "CartPole-v1"}
    first, again = make_env(node, seed=3).reset(), make_env(node, seed=3).reset()
    assert torch.equal(first["observation"], again["observation"])
    evaluation = make_env(node, seed=3, evaluation=True).reset()
    assert not torch.equal(first["observation"], evaluation["observation"])


def test_make_env_errors_name_the_option():
    with pytest.raises(ValueError, match=r"env\.name='NoSuchEnv-v0'"):
        make_env({"name": "NoSuchEnv-v0"}, seed=0)
    with pytest.raises(ValueError, match=r"env\.name='CartPole-v1'.*bogus"):
        make_env({"name": "CartPole-v1", "kwargs": {"bogus": 1}}, seed=0)
    with pytest.raises(ValueError, match=r"env\.max_episode_steps"):
        make_env({"name": "CartPole-v1", "max_episode_steps": 0}, seed=0)


def test_make_env_steps_several_copies_each_as_its_own_env():
    # Copy i of num_envs must be the env seeded seed + i: the same transitions for the same actions,
    # across episode ends (its ("next", "observation") the episode's last one, then a reset).
    node = {"name": "CartPole-v1"}
    together = make_env(node, seed=3, num_envs=2)
    alone = [make_env(node, seed=3 + i) for i in range(2)]
    assert together.batch_size == torch.Size([2]) and observation_dim(together) == 4
    torch.manual_seed(0)
    state, states, ends = together.reset(), [env.reset() for env in alone], []
    for _ in range(60):
        state["action"] = together.action_spec.rand()
        step, state = together.step_and_maybe_reset(state)
        for i, env in enumerate(alone):
            states[i]["action"] = step["action"][i]
            own, states[i] = env.step_and_maybe_reset(states[i])
            for key in ("observation", ("next", "observation"), ("next", "reward"), ("next", "terminated"), ("next", "truncated")):
                assert torch.equal(step[i][key], own[key]), key
            assert torch.equal(state[i]["observation"], states[i]["observation"])
        ends.append(step["next", "done"].view(-1).tolist())
    assert sum(map(sum, ends)) >= 4  # both copies ended episodes, and reset on their own
    # (when every copy ends in the same step, TorchRL resets them all once more: fresh episodes, other draws)
    assert [True, True] not in ends
    with pytest.raises(ValueError, match="num_envs"):
        make_env(node, seed=0, num_envs=0)


def test_observation_dim_needs_a_flat_vector():
    assert observation_dim(_CountdownEnv(3)) == 1
    env = _CountdownEnv(3)
    env.observation_spec = Composite(observation=Unbounded(shape=(2, 3)), pixels=Unbounded(shape=(5,)))
    with pytest.raises(ValueError, match=r"flat observation.*\(2, 3\)"):
        observation_dim(env)
    assert observation_dim(env, key="pixels") == 5


# ------------------------------------------------------------------------------------------------
# target_updater
# ------------------------------------------------------------------------------------------------
class _ValueLoss(LossModule):
    """The smallest TorchRL loss with target parameters."""

    value_network: TensorDictModule
    value_network_params: TensorDictParams
    target_value_network_params: TensorDictParams

    def __init__(self):
        super().__init__()
        net = TensorDictModule(torch.nn.Linear(2, 3), in_keys=["observation"], out_keys=["value"])
        self.convert_to_functional(net, "value_network", create_target_params=True)

    def forward(self, tensordict):
        return tensordict


def _online(loss):
    return loss.value_network_params.flatten_keys().clone()


def _target_params(loss):
    return loss.target_value_network_params.flatten_keys().clone()


def _move_online(loss, step):
    with torch.no_grad():
        for value in loss.value_network_params.flatten_keys().values():
            value.add_(float(step))


def _equal(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a.keys())


@pytest.mark.parametrize("interval", [1, 2, 3, 5])
def test_hard_target_update_copies_every_interval(interval):
    torch.manual_seed(0)
    loss = _ValueLoss()
    updater = target_updater(loss, kind="hard", interval=interval)
    assert _equal(_target_params(loss), _online(loss))  # initialised to the online network
    copied = _target_params(loss)
    for step in range(1, 4 * interval + 2):
        _move_online(loss, step)
        updater.step()
        if step % interval == 0:
            assert _equal(_target_params(loss), _online(loss)), step
            copied = _target_params(loss)
        else:
            assert _equal(_target_params(loss), copied), step
            assert not _equal(_target_params(loss), _online(loss)), step


def test_hard_target_update_resumes_its_count():
    torch.manual_seed(0)
    interval, cut = 4, 6

    def run(resume: bool):
        loss = _ValueLoss()
        updater = target_updater(loss, kind="hard", interval=interval)
        copies = []
        for step in range(1, 14):
            if resume and step == cut + 1:
                loss_state = _through_checkpoint(loss.state_dict())
                state = _through_checkpoint(updater.state_dict())
                loss = _ValueLoss()
                updater = target_updater(loss, kind="hard", interval=interval)
                loss.load_state_dict(loss_state)
                updater.load_state_dict(state)
            _move_online(loss, step)
            updater.step()
            copies.append(_equal(_target_params(loss), _online(loss)))
        return copies

    torch.manual_seed(0)
    uninterrupted = run(resume=False)
    torch.manual_seed(0)
    assert run(resume=True) == uninterrupted
    assert [i + 1 for i, c in enumerate(uninterrupted) if c] == [4, 8, 12]


def test_soft_target_update_is_polyak():
    torch.manual_seed(0)
    loss = _ValueLoss()
    tau = 0.1
    updater = target_updater(loss, kind="soft", tau=tau)
    target = _target_params(loss)
    for step in range(1, 5):
        _move_online(loss, step)
        updater.step()
        online = _online(loss)
        for key in target.keys():
            target[key] = (1 - tau) * target[key] + tau * online[key]
            torch.testing.assert_close(_target_params(loss)[key], target[key])
        assert not _equal(_target_params(loss), online)


def test_target_updater_rejects_bad_arguments():
    loss = _ValueLoss()
    with pytest.raises(ValueError, match="target_update"):
        target_updater(loss, kind="medium")
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="hard_update_interval"):
            target_updater(loss, kind="hard", interval=bad)


@pytest.mark.parametrize("autocast, dtype", [("none", torch.float32), ("bfloat16", torch.bfloat16)])
def test_autocast_runs_every_update_forward_in_its_dtype_and_keeps_float32_parameters(autocast, dtype, tmp_path):
    from hydra import compose, initialize_config_module

    from maxent_components.recipes import sac
    from maxent_components.recipes.parts import off_policy_loop
    from maxent_components.runs import RunDirectory

    overrides = [
        f"autocast={autocast}", "total_frames=240", "init_random_frames=120", "batch_size=32", "network.num_cells=[16,16]",
        "eval_interval=240", "eval_episodes=1", "checkpoint_interval=240", "plots=false", "progress=false",
    ]
    with initialize_config_module("maxent_components.recipes.conf", version_base=None):
        cfg = compose(sac.NAME, overrides=overrides)
    run = RunDirectory(tmp_path)
    run.start(OmegaConf.to_container(cfg, resolve=True), "autocast")
    env, eval_env, loss, optimizer = sac.build(cfg)
    loop = off_policy_loop(cfg, loss, optimizer, env=env, eval_env=eval_env, run=run, name=sac.NAME)
    seen = []  # the Q network runs only in updates (the SAC actor acts and is evaluated alone)
    hook = loss.qvalue_network.module.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    summary = loop.run()
    hook.remove()
    env.close()
    eval_env.close()
    # twin critics at (s', a') for the target, at (s, a) and at (s, a_π) for the actor: 6 calls per update
    assert summary["updates"] > 100 and len(seen) == 6 * summary["updates"] and set(seen) == {dtype}
    params = list(loss.parameters())
    assert all(p.dtype == torch.float32 and bool(torch.isfinite(p).all()) for p in params)


def test_loop_refuses_an_unknown_autocast_dtype():
    with pytest.raises(ValueError, match="autocast must be one of"):
        _loop_with(autocast="float16")


def _loop_with(**kwargs):
    from maxent_components.training.loop import OffPolicyLoop

    env = kwargs.pop("env", SimpleNamespace(device=torch.device("cpu"), batch_size=torch.Size([])))
    return OffPolicyLoop(kwargs.pop("loss", _Loss()), None, env=env, evaluator=None, run=None, total_frames=10, **kwargs)


class _Loss(torch.nn.Linear):
    """What the loop's constructor reads of a loss: an actor and where its parameters live."""

    actor = object()

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(2, 1, device=device)


def test_loop_refuses_a_loss_on_another_device_than_the_env():
    with pytest.raises(ValueError, match=r"env yields tensors on cpu but the loss has parameters on \['meta'\]"):
        _loop_with(loss=_Loss("meta"))
    _loop_with(env=SimpleNamespace(device=None, batch_size=torch.Size([])))  # a device-less env is on the CPU


def test_loop_keeps_trajectory_slices_to_one_environment():
    envs = SimpleNamespace(device=None, batch_size=torch.Size([2]))
    with pytest.raises(ValueError, match="slices of one episode need one environment; env steps 2 together"):
        _loop_with(env=envs, slice_len=5)
    assert _loop_with(env=envs).episodes.num_envs == 2


def test_devices_compare_with_their_index(monkeypatch):
    from maxent_components.training.builders import device_with_index as _ordinal

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert _ordinal("cuda") == torch.device("cuda", 1) == _ordinal(torch.device("cuda:1"))
    assert _ordinal("mps") == torch.device("mps", 0)
    assert _ordinal("cpu") == torch.device("cpu")


def _episode(eid: int, length: int) -> TensorDict:
    """An episode of ``length`` steps whose observations are ``(eid, step)``."""
    done = torch.zeros(length, 1, dtype=torch.bool)
    done[-1] = True
    step = torch.arange(length, dtype=torch.float32)
    obs = torch.stack([torch.full((length,), float(eid)), step], -1)
    return TensorDict({"observation": obs, "next": {"done": done, "observation": obs + 1}}, batch_size=[length])


def _whole_slices(slices: torch.Tensor) -> bool:
    """Whether every slice ``[..., L, 2]`` of ``(eid, step)`` observations is consecutive steps of one episode."""
    return bool((slices[..., 0] == slices[..., :1, 0]).all()) and bool((slices[..., 1:, 1] - slices[..., :-1, 1] == 1).all())


def test_slice_replay_sees_new_episodes_after_each_extend_and_never_crosses_an_end():
    # Episode boundaries are cached between writes: an extend must make the new episode sampleable.
    episode = _episode
    torch.manual_seed(0)
    buffer = uniform_replay_buffer(100, batch_size=4, slice_len=3)
    buffer.extend(episode(0, 6))
    seen = set()
    for round_, eid in enumerate((1, 2)):
        for _ in range(20):
            slices = buffer.sample().reshape(-1, 3)["observation"]
            assert _whole_slices(slices)
            seen |= set(slices[:, 0, 0].tolist())
        assert seen == set(range(round_ + 1)), seen
        buffer.extend(episode(eid, 5))


def test_minibatches_drawn_together_are_each_a_uniform_draw_of_their_own():
    buffer = uniform_replay_buffer(10, batch_size=4)
    buffer.extend(TensorDict({"observation": torch.arange(5.0)}, batch_size=[5]))
    assert list(minibatches(buffer, 0)) == []
    parts = list(minibatches(buffer, MINIBATCHES_PER_DRAW + 4))  # two draws
    assert [p.batch_size for p in parts] == [torch.Size([4])] * (MINIBATCHES_PER_DRAW + 4)
    torch.manual_seed(0)
    draws = torch.stack([torch.stack([p["observation"] for p in minibatches(buffer, 3)]) for _ in range(500)])  # [500, 3, 4]
    for position in range(3):  # each minibatch of a draw: every row with probability 1/5
        shares = torch.bincount(draws[:, position].flatten().long(), minlength=5) / draws[:, position].numel()
        assert torch.allclose(shares, torch.full((5,), 0.2), atol=0.04), shares
    # independent of each other: two minibatches agree at a position with probability 1/5, not always
    assert abs(float((draws[:, 0] == draws[:, 1]).float().mean()) - 0.2) < 0.04


def test_minibatches_of_slices_are_whole_slices_of_one_episode_each():
    torch.manual_seed(0)
    buffer = uniform_replay_buffer(100, batch_size=4, slice_len=3)
    for eid, length in enumerate((6, 5, 7)):
        buffer.extend(_episode(eid, length))
    parts = list(minibatches(buffer, 5, slice_len=3))
    assert [p.batch_size for p in parts] == [torch.Size([4, 3])] * 5
    assert all(_whole_slices(p["observation"]) for p in parts)
    assert {float(e) for p in parts for e in p["observation"][:, 0, 0]} == {0.0, 1.0, 2.0}


def test_minibatches_refuse_a_bad_count_a_buffer_without_batch_size_and_slices_that_do_not_fit():
    from torchrl.data import LazyTensorStorage, ReplayBuffer

    buffer = uniform_replay_buffer(10, batch_size=4)
    for count in (-1, 2.0):
        with pytest.raises(ValueError, match="count must be a non-negative integer"):
            minibatches(buffer, count)
    with pytest.raises(ValueError, match="built with a batch_size"):
        minibatches(ReplayBuffer(storage=LazyTensorStorage(10)), 1)
    with pytest.raises(ValueError, match="batch_size 4 is not a whole number of slices of slice_len=3"):
        minibatches(buffer, 1, slice_len=3)
