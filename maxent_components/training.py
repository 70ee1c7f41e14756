"""Small pieces of the off-policy training loop shared by the recipes.

Each helper does one thing and leaves the algorithm-specific update in the recipe, which still
reads top to bottom: environment, networks, loss and sampler, then the loop. None of them draws
random numbers, so a recipe built from them consumes its generators exactly as the inline loop did.

- :func:`off_policy_collector` and :func:`uniform_replay_buffer`: the data pipeline;
- :class:`UpdateSchedule`: how many gradient updates an environment batch pays for (UTD ratio);
- :class:`Cadence`: "every ``interval`` steps" for evaluation and logging;
- :class:`RunningMeans`: logged losses averaged over the updates since the last row, as tensors;
- :class:`PhaseTimer`: where the wall time goes (collection, updates, evaluation);
- :func:`solved_report`: the closing line of a run that stops once solved.

The ``main`` plumbing (presets, skipping a finished run) lives with the run directory in
:mod:`maxent_components.runs`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

# torchrl.collectors defines deprecated weight-updater classes at import time; those warnings are
# about TorchRL's internals, not about anything a recipe does. The filter must precede the import.
warnings.filterwarnings(
    "ignore", message=r"Creating \w+ which inherits from WeightUpdaterBase is deprecated", category=DeprecationWarning
)

from tensordict.nn import TensorDictModuleBase
from torch import Tensor
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.envs import EnvBase

__all__ = [
    "Cadence",
    "PhaseTimer",
    "RunningMeans",
    "UpdateSchedule",
    "off_policy_collector",
    "solved_report",
    "uniform_replay_buffer",
]


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


# ------------------------------------------------------------------------------------------------
# Data pipeline
# ------------------------------------------------------------------------------------------------
def off_policy_collector(
    env: EnvBase,
    policy: TensorDictModuleBase,
    *,
    frames_per_batch: int,
    total_frames: int,
    init_random_frames: int,
) -> Collector:
    """A single-process TorchRL collector acting with ``policy`` (uniformly random for the first
    ``init_random_frames`` steps), yielding ``frames_per_batch`` steps at a time up to ``total_frames``."""
    return Collector(
        env,
        policy,
        frames_per_batch=frames_per_batch,
        total_frames=total_frames,
        init_random_frames=init_random_frames,
        # The samplers read only the observation: no policy transform is needed.
        auto_register_policy_transforms=False,
    )


def uniform_replay_buffer(capacity: int, *, batch_size: int) -> ReplayBuffer:
    """A replay buffer of ``capacity`` transitions sampled uniformly, ``batch_size`` at a time."""
    _check_positive_int("capacity", capacity)
    _check_positive_int("batch_size", batch_size)
    return ReplayBuffer(storage=LazyTensorStorage(capacity), batch_size=batch_size)


# ------------------------------------------------------------------------------------------------
# Loop schedules
# ------------------------------------------------------------------------------------------------
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
        if isinstance(utd_ratio, bool) or not isinstance(utd_ratio, (int, float)) or not utd_ratio > 0:
            raise ValueError(f"utd_ratio must be a positive number, got {utd_ratio!r}.")
        if isinstance(learning_starts, bool) or not isinstance(learning_starts, int) or learning_starts < 0:
            raise ValueError(f"learning_starts must be a non-negative int, got {learning_starts!r}.")
        self.utd_ratio = float(utd_ratio)
        self.learning_starts = learning_starts
        self.credit = 0.0

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
        _check_positive_int("interval", interval)
        self.interval = interval
        self.next = interval

    def due(self, step: int) -> bool:
        if step < self.next:
            return False
        self.next += self.interval
        return True


# ------------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------------
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
        for name, value in values.items():
            if value is None:
                continue
            value = value.detach()
            self._sums[name] = self._sums[name] + value if name in self._sums else value
        self.count += 1

    def pop(self) -> dict[str, Tensor]:
        """The means (0-d tensors) since the last call, and start over; empty when nothing was added."""
        means = {name: total / self.count for name, total in self._sums.items()}
        self._sums = {}
        self.count = 0
        return means


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


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
def solved_report(summary: Mapping[str, Any]) -> str:
    """One line on a run that stops once solved: the bar, where it was met, the last evaluation."""
    solved = (
        f"solved (mean evaluation return >= {summary['target_return']:g}) at step {summary['solved_at_step']}"
        if summary["solved"]
        else f"not solved within {summary['env_steps']} steps"
    )
    return (
        f"{summary['algorithm']} on {summary['env_name']}, seed {summary['seed']}: {solved}; last evaluation "
        f"return {summary['eval_return_mean']:.1f}; {summary['env_steps']} env steps, {summary['updates']} "
        f"updates, {summary['wall_time_s']:.1f} s; run directory {summary['run_dir']}"
    )
