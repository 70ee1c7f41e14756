"""Training: the off-policy loop the recipes call, its pieces, evaluation and builders.

- :mod:`~maxent_components.training.loop`: :class:`OffPolicyLoop` (collect, replay, update, target
  update, evaluate, log, checkpoint and resume);
- :mod:`~maxent_components.training.update`: :class:`UpdateStep` (one update of a loss: forward,
  backward, optimiser step, target update; eager or under ``torch.compile``);
- :mod:`~maxent_components.training.bookkeeping`: the UTD schedule, cadences, running means, phase timer,
  episode returns, non-finite guard, progress bar;
- :mod:`~maxent_components.training.evaluation`: evaluation episodes and task diagnostics;
- :mod:`~maxent_components.training.builders`: parts from config nodes (``_target_``), environments,
  collector, replay buffer and its minibatches, target updater;
- :mod:`~maxent_components.training.resume`, :mod:`~maxent_components.training.env_state`: what a
  checkpoint holds of the data pipeline, the logger and the environments;
- :mod:`~maxent_components.training.failures`: how a run names what stopped it;
- :mod:`~maxent_components.training.report`: the lines a run prints at its end.
"""

from typing import TYPE_CHECKING

from maxent_components._lazy import lazy_names

if TYPE_CHECKING:  # the names, for type checkers and the API reference; imported on first use
    from maxent_components.training.bookkeeping import (
        Cadence,
        EpisodeReturns,
        NonFiniteGuard,
        NonFiniteLossError,
        PhaseTimer,
        RunningMeans,
        UpdateSchedule,
        progress_bar,
    )
    from maxent_components.training.builders import (
        MINIBATCHES_PER_DRAW,
        build_part,
        make_env,
        minibatches,
        observation_dim,
        off_policy_collector,
        target_updater,
        uniform_replay_buffer,
    )
    from maxent_components.training.evaluation import Evaluator, evaluate_episodes, task_diagnostics
    from maxent_components.training.loop import OffPolicyLoop
    from maxent_components.training.report import run_report
    from maxent_components.training.update import UpdateStep

#: public name → the module it comes from (imported on first use, as the package's)
_EXPORTS = {
    **dict.fromkeys((
        "MINIBATCHES_PER_DRAW", "build_part", "make_env", "minibatches", "observation_dim",
        "off_policy_collector", "target_updater", "uniform_replay_buffer",
    ), "builders"),
    **dict.fromkeys(("Evaluator", "evaluate_episodes", "task_diagnostics"), "evaluation"),
    **dict.fromkeys(("OffPolicyLoop",), "loop"),
    **dict.fromkeys((
        "Cadence", "EpisodeReturns", "NonFiniteGuard", "NonFiniteLossError", "PhaseTimer", "RunningMeans",
        "UpdateSchedule", "progress_bar",
    ), "bookkeeping"),
    **dict.fromkeys(("run_report",), "report"),
    **dict.fromkeys(("UpdateStep",), "update"),
}

__all__ = [
    "Cadence",
    "EpisodeReturns",
    "Evaluator",
    "MINIBATCHES_PER_DRAW",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "OffPolicyLoop",
    "PhaseTimer",
    "RunningMeans",
    "UpdateSchedule",
    "UpdateStep",
    "build_part",
    "evaluate_episodes",
    "make_env",
    "minibatches",
    "observation_dim",
    "off_policy_collector",
    "progress_bar",
    "run_report",
    "target_updater",
    "task_diagnostics",
    "uniform_replay_buffer",
]

__getattr__, __dir__ = lazy_names(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()}, globals())
