"""Evaluation episodes: returns, lengths and a task's own diagnostics."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from tensordict import TensorDictBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

from maxent_components.checks import (
    check_choice,
    check_nonnegative_int,
    check_positive_int,
)
from maxent_components.validation import EnvironmentDataError, check_env_data

__all__ = ["Evaluator", "evaluate_episodes", "scored_evaluation", "task_diagnostics"]

_EXPLORATION = {
    "deterministic": ExplorationType.DETERMINISTIC,
    "random": ExplorationType.RANDOM,
    "mode": ExplorationType.MODE,
    "mean": ExplorationType.MEAN,
}


def evaluate_episodes(
    env: Any,
    policy: Callable[[TensorDictBase], TensorDictBase],
    *,
    num_episodes: int,
    max_steps: int,
    exploration: Literal["deterministic", "random", "mode", "mean"] = "deterministic",
) -> list[TensorDictBase]:
    """``num_episodes`` rollouts of ``policy`` in the unbatched TorchRL ``env``, each until its first
    ``done`` or ``max_steps`` steps, under ``set_exploration_type(exploration)`` and ``no_grad``."""
    check_choice("exploration", exploration, tuple(_EXPLORATION))
    num_episodes = check_positive_int("num_episodes", num_episodes)
    max_steps = check_positive_int("max_steps", max_steps)
    if tuple(env.batch_size) != ():
        raise ValueError(f"evaluation needs an unbatched environment, got batch_size={tuple(env.batch_size)}.")
    with torch.no_grad(), set_exploration_type(_EXPLORATION[exploration]):
        return [env.rollout(max_steps, policy, break_when_any_done=True, auto_reset=True) for _ in range(num_episodes)]


class Evaluator:
    """Evaluate ``policy`` in ``env``: the mean return, the mean length and the task's diagnostics.

    Args:
        env: an unbatched TorchRL environment kept for evaluation.
        policy: the acting module (e.g. ``SoftQLoss.actor``).

    Keyword Args:
        num_episodes: episodes per evaluation.
        max_steps: step limit of an episode.
        exploration: ``"deterministic"`` (the policy's mode or mean action) or ``"random"`` (samples).
        diagnostics: ``f(rollouts) -> {name: float}`` of the task (e.g. goals reached on MultiGoal).
        random_episodes: further episodes with sampled actions, whose mean return is reported as
            ``eval_return_random`` (the maximum-entropy policy itself, beside its mode or mean).

    Calling it returns ``(metrics, rollouts)``: ``eval_return``, ``eval_length``, the diagnostics
    (of the ``exploration`` episodes) and ``eval_return_random``. Every rollout is checked first
    (:func:`~maxent_components.validation.check_env_data`): a non-finite reward or
    observation is an :class:`~maxent_components.validation.EnvironmentDataError` naming
    the episode and its frame, never a ``nan`` return.
    """

    def __init__(
        self,
        env: Any,
        policy: Callable[[TensorDictBase], TensorDictBase],
        *,
        num_episodes: int,
        max_steps: int,
        exploration: Literal["deterministic", "random"] = "deterministic",
        diagnostics: Callable[[Sequence[TensorDictBase]], dict[str, float]] | None = None,
        random_episodes: int = 0,
    ) -> None:
        self.env, self.policy = env, policy
        self.num_episodes = check_positive_int("eval_episodes", num_episodes)
        self.max_steps = check_positive_int("max_steps", max_steps)
        self.exploration = check_choice("eval_exploration", exploration, ("deterministic", "random"))
        self.diagnostics = diagnostics
        self.random_episodes = check_nonnegative_int("eval_random_episodes", random_episodes)

    def __call__(self) -> tuple[dict[str, float], list[TensorDictBase]]:
        rollouts = evaluate_episodes(
            self.env, self.policy, num_episodes=self.num_episodes, max_steps=self.max_steps,
            exploration=self.exploration,
        )
        self._check(rollouts, "evaluation episode")
        returns = torch.stack([r.get(("next", "reward")).sum() for r in rollouts]).double()
        metrics = {
            "eval_return": float(returns.mean()),
            "eval_length": sum(r.shape[0] for r in rollouts) / len(rollouts),
        }
        if self.diagnostics is not None:
            metrics.update(self.diagnostics(rollouts))
        if self.random_episodes:
            sampled = evaluate_episodes(
                self.env, self.policy, num_episodes=self.random_episodes, max_steps=self.max_steps, exploration="random"
            )
            self._check(sampled, "sampled-action evaluation episode")
            metrics["eval_return_random"] = float(torch.stack([r.get(("next", "reward")).sum() for r in sampled]).double().mean())
        return metrics, rollouts

    def _check(self, rollouts: Sequence[TensorDictBase], where: str) -> None:
        spec = self.env.action_spec
        for index, rollout in enumerate(rollouts, start=1):
            check_env_data(rollout, action_spec=spec, where=f"{where} {index}")


def task_diagnostics(task: Any):
    """The ``diagnostics`` function of an ``env`` node: a dotted name, or a node with ``_target_`` and
    keyword arguments (bound with ``functools.partial``); ``None`` when the task has none."""
    node = task.get("diagnostics")
    if not node:
        return None
    from omegaconf import DictConfig, OmegaConf

    from maxent_components.training.builders import import_object

    if isinstance(node, str):
        name, options = "env.diagnostics", {"_target_": node}
    else:
        name, options = "env.diagnostics._target_", OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    function = import_object(name, options.pop("_target_"))
    if not callable(function):
        raise ValueError(f"{name} must name a function of the evaluation rollouts, got {type(function).__name__}.")
    return functools.partial(function, **options) if options else function


def scored_evaluation(evaluator: Callable[[], tuple[dict[str, float], Any]], step: int, *, who: str = ""
                      ) -> tuple[dict[str, float], Any]:
    """Run ``evaluator`` for the training loop at env step ``step``: its metrics and rollouts.

    Raises:
        EnvironmentDataError: the evaluation environment returned bad data; the step (and ``who``,
            a population member's name) lead the message.
        FloatingPointError: a metric is not finite, named with its value.
    """
    where = f"{who}: evaluation at step {step}" if who else f"evaluation at step {step}"
    try:
        metrics, rollouts = evaluator()
    except EnvironmentDataError as err:
        raise EnvironmentDataError(f"{where}, {err}") from None
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise FloatingPointError(f"{where} gave {name}={value}.")
    return metrics, rollouts
