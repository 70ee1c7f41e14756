"""The off-policy loop's bookkeeping: schedules, cadences, running means, timers, guards and the
progress bar, each with the state a checkpoint saves.

- :class:`UpdateSchedule`: how many gradient updates an environment batch pays for (UTD ratio);
- :class:`Cadence`: "every ``interval`` steps" for evaluation, logging and checkpoints;
- :class:`RunningMeans`: logged losses averaged over the updates since the last row, as tensors
  (no host synchronisation per update);
- :class:`PhaseTimer`: where the wall time goes (collection, updates, evaluation);
- :class:`EpisodeReturns`: undiscounted returns of the training episodes;
- :class:`NonFiniteGuard`: abort once a logged loss is not finite;
- :class:`progress_bar`: a tqdm bar on a terminal, one line per evaluation in a log, nothing when disabled.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from tensordict import TensorDictBase
from torch import Tensor

from maxent_components.checks import (
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
)

__all__ = [
    "Cadence",
    "EpisodeReturns",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "PhaseTimer",
    "RunningMeans",
    "UpdateSchedule",
    "progress_bar",
]


#: the most updates per environment step a schedule takes (more would not finish a run)
MAX_UTD_RATIO = 1000


class UpdateSchedule:
    """Gradient updates owed for collected environment steps, at ``utd_ratio`` updates per step.

    No update is owed for a batch that leaves fewer than ``learning_starts`` steps collected. A
    fractional ratio carries its remainder over to later batches, so over a run the number of
    updates is ``⌊utd_ratio · (steps of the batches since learning started)⌋`` up to float
    rounding, whatever the batch size.

    Example:
        >>> schedule = UpdateSchedule(utd_ratio=0.5, learning_starts=4)
        >>> [schedule.due(frames, 3) for frames in (3, 6, 9, 12)]
        [0, 1, 2, 1]
    """

    def __init__(self, *, utd_ratio: float, learning_starts: int = 0) -> None:
        self.utd_ratio = check_positive_float("utd_ratio", utd_ratio)
        if self.utd_ratio > MAX_UTD_RATIO:
            raise ValueError(f"utd_ratio must be at most {MAX_UTD_RATIO} updates per env step, got {utd_ratio!r}.")
        self.learning_starts = check_nonnegative_int("learning_starts", learning_starts)
        self.credit = 0.0

    def state_dict(self) -> dict[str, float]:
        return {"credit": self.credit}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.credit = float(state["credit"])

    def due(self, frames: int, new_frames: int) -> int:
        """Updates to run now that ``new_frames`` more steps bring the total collected to ``frames``."""
        if frames < self.learning_starts:
            return 0
        self.credit += self.utd_ratio * new_frames
        # Spend the credit one update at a time (not floor()) so that a run's update count does not
        # depend on how the remainder rounds: the same arithmetic every recipe has always used.
        count = 0
        while self.credit >= 1.0:
            self.credit -= 1.0
            count += 1
        return count


class Cadence:
    """"Every ``interval`` steps": :meth:`due` is true when the step count has reached the next
    multiple of ``interval``, which then moves one interval on. A count that jumps over several
    multiples is due once and catches up one interval per later call.

    Example:
        >>> every = Cadence(100)
        >>> [every.due(step) for step in (50, 100, 250, 260, 300)]
        [False, True, True, False, True]
    """

    def __init__(self, interval: int) -> None:
        self.interval = check_positive_int("interval", interval)
        self.next = self.interval

    def due(self, step: int) -> bool:
        if step < self.next:
            return False
        self.next += self.interval
        return True

    def state_dict(self) -> dict[str, int]:
        return {"next": self.next}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.next = int(state["next"])


class RunningMeans:
    """Means of logged scalars over the updates since the last :meth:`pop`.

    The sums stay tensors (detached): converting every update to a Python number would
    synchronise with the device each time. A value passed as ``None`` (a term this update did not
    produce) is left out of its sum but still counts as an update, as the mean is per update.
    """

    def __init__(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self.count = 0

    def add(self, **values: Tensor | None) -> None:
        present = {name: value.detach() for name, value in values.items() if value is not None}
        if self._sums and present.keys() == self._sums.keys():  # the same terms as before: one fused add
            names = list(self._sums)
            self._sums = dict(zip(names, torch._foreach_add([self._sums[n] for n in names], [present[n] for n in names])))
        else:
            for name, value in present.items():
                self._sums[name] = self._sums[name] + value if name in self._sums else value
        self.count += 1

    def pop(self) -> dict[str, Tensor]:
        """The means (0-d tensors) since the last call, and start over; empty when nothing was added."""
        means = {name: total / self.count for name, total in self._sums.items()}
        self._sums = {}
        self.count = 0
        return means

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self._sums), "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums, self.count = dict(state["sums"]), int(state["count"])


class PhaseTimer:
    """Wall-clock seconds spent in each named phase of a run, and since the timer was made.

    Example:
        >>> timer = PhaseTimer("collect", "update")
        >>> with timer("update"):
        ...     pass
        >>> sorted(timer.summary())
        ['time_collect_s', 'time_update_s']
    """

    def __init__(self, *phases: str) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(phases, 0.0)
        self._start = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": dict(self.seconds), "elapsed": self.elapsed()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue counting from a saved state (a resumed run reports the time of all its parts)."""
        self.seconds = dict(state["seconds"])
        self._start = time.perf_counter() - float(state["elapsed"])

    def _check(self, phase: str) -> None:
        if phase not in self.seconds:
            raise KeyError(f"unknown phase {phase!r}; this timer has phases {list(self.seconds)}.")

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        self._check(phase)
        tick = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - tick

    def iterate(self, iterable: Iterable[Any], phase: str) -> Iterator[Any]:
        """The items of ``iterable``, the time spent producing each one counted to ``phase``."""
        self._check(phase)  # here, not in the generator, so a bad phase fails at the call
        return self._timed(iter(iterable), phase)

    def _timed(self, iterator: Iterator[Any], phase: str) -> Iterator[Any]:
        while True:
            tick = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.seconds[phase] += time.perf_counter() - tick
                return
            self.seconds[phase] += time.perf_counter() - tick
            yield item

    def elapsed(self) -> float:
        """Seconds since the timer was made."""
        return time.perf_counter() - self._start

    def summary(self) -> dict[str, float]:
        """``{"time_<phase>_s": seconds}`` for the run summary."""
        return {f"time_{phase}_s": seconds for phase, seconds in self.seconds.items()}



class EpisodeReturns:
    """Undiscounted returns of the training episodes seen in collector batches.

    ``update(reward, done)`` takes the ``("next", "reward")`` and ``("next", "done")`` entries of a
    collector batch of ``num_envs`` environments stepped together, flattened env by env (``[E·T]``,
    ``[E·T, 1]`` or ``[E, T, 1]``: each environment's ``T`` steps in time order), and closes an
    episode at each ``done``; a partial episode carries over to the next batch, per environment.

    Examples:
        >>> tracker = EpisodeReturns()
        >>> tracker.update(torch.ones(5, 1), torch.tensor([[False], [False], [True], [False], [False]]))
        >>> tracker.update(torch.ones(2, 1), torch.tensor([[False], [True]]))
        >>> tracker.returns, tracker.mean_recent()
        ([3.0, 4.0], 3.5)
    """

    def __init__(self, *, window: int = 10, num_envs: int = 1) -> None:
        self.window = check_positive_int("window", window)
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.returns: list[float] = []
        self._current = [0.0] * self.num_envs

    def state_dict(self) -> dict[str, Any]:
        return {"returns": list(self.returns), "current": list(self._current)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        current = state["current"]
        current = [float(current)] if isinstance(current, (int, float)) else [float(c) for c in current]
        if len(current) != self.num_envs:
            raise ValueError(f"the saved returns are of {len(current)} environments, not num_envs={self.num_envs}.")
        self.returns, self._current = list(state["returns"]), current

    def update(self, reward: Tensor, done: Tensor) -> None:
        reward = reward.reshape(-1)
        done = done.reshape(-1)
        if reward.shape != done.shape or reward.numel() % self.num_envs:
            raise ValueError(
                f"reward and done must hold the same steps of {self.num_envs} environment(s), "
                f"got {tuple(reward.shape)} and {tuple(done.shape)}."
            )
        steps = reward.numel() // self.num_envs
        rewards, dones = reward.tolist(), done.tolist()
        for env in range(self.num_envs):
            current = self._current[env]
            for r, d in zip(rewards[env * steps : (env + 1) * steps], dones[env * steps : (env + 1) * steps]):
                current += r
                if d:
                    self.returns.append(current)
                    current = 0.0
            self._current[env] = current

    @property
    def count(self) -> int:
        """Number of completed episodes."""
        return len(self.returns)

    def mean_recent(self) -> float | None:
        """Mean return of the last ``window`` completed episodes (``None`` before the first one)."""
        if not self.returns:
            return None
        recent = self.returns[-self.window :]
        return sum(recent) / len(recent)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the run is aborted rather than continued on garbage."""


class NonFiniteGuard:
    """Abort a run with a clear error when a loss term is not finite.

    ``check(losses, step=...)`` looks at every ``loss_*`` entry of a TensorDict (or mapping) and
    raises :class:`NonFiniteLossError` naming the non-finite terms and the step. Each check reads
    the device once; the loop checks the logged means once per log interval (a NaN in any update
    makes its mean NaN).

    Examples:
        >>> guard = NonFiniteGuard()
        >>> guard.check({"loss_qvalue": torch.tensor(1.0)}, step=10)
        >>> guard.check({"loss_qvalue": torch.tensor(float("nan"))}, step=11)
        Traceback (most recent call last):
        ...
        maxent_components.training.bookkeeping.NonFiniteLossError: non-finite loss at step 11: loss_qvalue=nan. ...
    """

    def check(self, losses: TensorDictBase | Mapping[str, Tensor], *, step: int) -> None:
        items = losses.items() if isinstance(losses, Mapping) else losses.items(include_nested=False)
        terms = {k: v for k, v in items if isinstance(k, str) and k.startswith("loss") and isinstance(v, Tensor)}
        if not terms:
            return
        # One stacked reduction instead of one host synchronisation per term (on the first term's
        # device: a loss may report a CPU scalar beside its device tensors).
        device = next(iter(terms.values())).device
        finite = torch.stack([torch.isfinite(v.detach()).all().to(device) for v in terms.values()])
        if bool(finite.all()):
            return
        bad = {k: float(v.detach().float().mean()) for (k, v), ok in zip(terms.items(), finite.tolist()) if not ok}
        shown = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {shown}. Aborting the run; lower the learning rate, "
            f"check the reward scale and the temperature, or inspect the logged metrics for where it diverged."
        )


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class progress_bar:  # noqa: N801 - used like a function, as tqdm itself is
    """A tqdm bar over environment steps on a terminal; elsewhere (stderr a file or a pipe, as in a
    sweep's log) one line per change of the shown values (an evaluation) instead of carriage-return
    redraws. Costs nothing when disabled.

    Examples:
        >>> with progress_bar(1000, enabled=False, desc="train") as bar:
        ...     bar.update(10, loss=0.5)
    """

    def __init__(self, total: int, *, enabled: bool = True, desc: str | None = None) -> None:
        self._bar, self._lines, self.total, self.desc = None, False, int(total), desc or "train"
        self.n, self._shown = 0, None
        if enabled and _is_terminal(sys.stderr):
            from tqdm.auto import tqdm

            # mininterval keeps redraws (and their cost) to a few per second.
            self._bar = tqdm(total=self.total, desc=desc, unit="step", mininterval=0.5, dynamic_ncols=True)
        elif enabled:
            self._lines = True

    def skip_to(self, n: int) -> None:
        """Start at ``n`` steps (a resumed run)."""
        self.n += int(n)
        if self._bar is not None:
            self._bar.update(int(n))

    def update(self, n: int, **postfix: float | str) -> None:
        """Advance by ``n`` steps; ``postfix`` values are shown next to the bar (or on a new line)."""
        if self._bar is None and not self._lines:
            return
        self.n += int(n)
        shown = {k: (f"{float(v):.4g}" if not isinstance(v, str) else v) for k, v in postfix.items()}
        if self._bar is not None:
            if shown:
                self._bar.set_postfix(shown, refresh=False)
            self._bar.update(int(n))
        elif shown and shown != self._shown:
            self._shown = shown
            values = ", ".join(f"{k}={v}" for k, v in shown.items())
            print(f"{self.desc}: {self.n}/{self.total} steps, {values}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._lines = False

    def __enter__(self) -> progress_bar:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
