"""The off-policy loop every recipe calls: collect → replay → update → target update → evaluate → log → checkpoint.

One update is the same for every algorithm (:class:`~maxent_components.training.update.UpdateStep`:
``out = loss(batch)``, one backward of the sum of its ``loss_*`` terms, one optimiser step, the
target update; eager or under ``torch.compile``), then one ``step()`` of every schedule in the loss
(an annealed ``α``, a sampler's own annealing). Around it the loop keeps the update-to-data
schedule, the warm-up, the evaluation, logging and checkpoint cadences, a progress bar, a phase
timer and a non-finite guard that reads the device once per log interval.

**Checkpoints and resume.** Every ``checkpoint_interval`` env steps the loop writes one atomic
``checkpoint.pt`` of everything a run's future depends on (networks, optimiser, target updater, replay
buffer, collector and environment states, RNGs, counters, metrics); a run started on a folder holding
a checkpoint of the same config continues from it and, on one thread, ends with exactly the metrics of
an uninterrupted run (an environment whose state cannot be saved starts a new episode, with a warning).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from tensordict import TensorDictBase

from maxent_components.checks import check_nonnegative_int, check_positive_float, check_positive_int
from maxent_components.runs.directory import RunDirectory
from maxent_components.runs.errors import RunFailure, RunWriteError
from maxent_components.runs.logs import RunLogger
from maxent_components.runs.rng import rng_state, set_rng_state
from maxent_components.temperature import scheduled_temperatures
from maxent_components.training.bookkeeping import (
    Cadence,
    EpisodeReturns,
    NonFiniteGuard,
    PhaseTimer,
    RunningMeans,
    UpdateSchedule,
    progress_bar,
)
from maxent_components.training.builders import (
    device_with_index,
    minibatches,
    off_policy_collector,
    stored_keys,
    uniform_replay_buffer,
)
from maxent_components.training.env_state import env_state, restore_env_state
from maxent_components.training.evaluation import Evaluator, scored_evaluation
from maxent_components.training.failures import first_non_finite, raised_by_environment, short_message
from maxent_components.training.resume import (
    buffer_state,
    collector_carrier,
    logger_state,
    restore_buffer,
    restore_carrier,
    state_mismatch,
)
from maxent_components.training.update import AUTOCAST_DTYPES, UpdateStep
from maxent_components.validation import EnvironmentDataError, check_env_data

__all__ = ["AUTOCAST_DTYPES", "OffPolicyLoop"]

_PIECES = ("schedule", "eval_cadence", "log_cadence", "checkpoint_cadence", "means", "episodes", "timer")


class OffPolicyLoop:
    """Train ``loss`` with ``optimizer`` on transitions collected by ``loss.actor`` in ``env``.

    Args:
        loss: a :class:`~maxent_components.objectives.SoftQLoss` with an actor (it acts).
        optimizer: one optimiser over ``loss.parameters()`` (or its parameter groups).

    Keyword Args:
        env: the training environment (TorchRL): unbatched, or ``[num_envs]`` copies stepped together.
        target_updater: TorchRL's ``SoftUpdate`` / ``HardUpdate`` of the loss (``None``: no targets).
        evaluator: an :class:`~maxent_components.training.evaluation.Evaluator`.
        run: the :class:`~maxent_components.runs.directory.RunDirectory` to checkpoint into and log under.
        total_frames: env-step budget.
        frames_per_batch: env steps per collector batch; the updates owed follow each batch.
        init_random_frames: uniformly random steps before the actor acts and learning starts.
        utd_ratio: gradient updates per env step.
        batch_size, buffer_size: the uniform replay buffer, keeping what the loss reads (``stored_keys``);
            the minibatches owed after a collector batch are drawn together (``builders.minibatches``).
        slice_len: sample trajectory slices of this length instead of transitions (TorchRL's
            ``SliceSampler``, slices inside one episode): ``batch_size`` slices of shape
            ``[batch_size, slice_len]``, as path consistency learning needs.
        eval_interval, log_interval: env steps between evaluations and between logged rows (the
            last batch is always evaluated and logged).
        checkpoint_interval: env steps between checkpoints (``None``: a tenth of the budget).
        reward_scale: rewards are multiplied by it before the update (buffer and returns stay raw).
        solved_metric, solved_threshold: the run is *solved* at the first evaluation whose
            ``solved_metric`` reaches ``solved_threshold`` (``None``: never).
        stop_when_solved: stop there.
        logger_backend: TorchRL logger (``"csv"``, ``"tensorboard"``, ``"wandb"``, ``"mlflow"``).
        progress: show a progress bar.
        name: the run's name on the progress bar.
        env_name: the task's name, for the message of an environment that fails.
        autocast: ``"none"`` or ``"bfloat16"``: the loss's forward under ``torch.autocast`` in that
            dtype (matrix multiplies in bfloat16; the backward follows the forward's dtypes).
        compile: ``"none"`` or a ``torch.compile`` mode: each update compiled as a whole after the
            first (:class:`~maxent_components.training.update.UpdateStep`).
    """

    def __init__(
        self,
        loss,
        optimizer: torch.optim.Optimizer,
        *,
        env,
        target_updater=None,
        evaluator: Evaluator,
        run: RunDirectory,
        total_frames: int,
        frames_per_batch: int = 1,
        init_random_frames: int = 0,
        utd_ratio: float = 1.0,
        batch_size: int = 256,
        buffer_size: int = 1_000_000,
        slice_len: int | None = None,
        eval_interval: int = 5_000,
        log_interval: int = 1_000,
        checkpoint_interval: int | None = None,
        reward_scale: float = 1.0,
        solved_metric: str | None = None,
        solved_threshold: float | None = None,
        stop_when_solved: bool = False,
        logger_backend: str = "csv",
        progress: bool = True,
        name: str = "train",
        env_name: str | None = None,
        autocast: str = "none",
        compile: str = "none",
    ) -> None:
        if loss.actor is None:
            raise ValueError("loss has no actor: the loop collects with loss.actor.")
        self.device = device_with_index(env.device or "cpu")  # where the env's tensors, the loss and the replay rows live
        elsewhere = {str(device_with_index(p.device)) for p in loss.parameters()} - {str(self.device)}
        if elsewhere:
            raise ValueError(f"env yields tensors on {self.device} but the loss has parameters on {sorted(elsewhere)}; "
                             "build the env with that device (make_env(..., device=...)) or move the loss (loss.to(...)).")
        self.loss, self.optimizer, self.env, self.target_updater = loss, optimizer, env, target_updater
        self.schedules = scheduled_temperatures(loss)
        self.evaluator, self.run_dir = evaluator, run
        self.total_frames = check_positive_int("total_frames", total_frames)
        self.frames_per_batch = check_positive_int("frames_per_batch", frames_per_batch)
        self.init_random_frames = check_nonnegative_int("init_random_frames", init_random_frames)
        self.batch_size, self.buffer_size = batch_size, buffer_size
        self.slice_len = None if slice_len is None else check_positive_int("slice_len", slice_len)
        num_envs = env.batch_size.numel()  # copies stepped together; a batch is flattened env by env
        if self.slice_len is not None and num_envs != 1:
            raise ValueError(f"slices of one episode need one environment; env steps {num_envs} together.")
        self.reward_scale = check_positive_float("reward_scale", reward_scale)
        interval = checkpoint_interval or max(self.total_frames // 10, 1)
        self.schedule = UpdateSchedule(utd_ratio=utd_ratio, learning_starts=self.init_random_frames)
        self.eval_cadence, self.log_cadence = Cadence(eval_interval), Cadence(log_interval)
        self.checkpoint_cadence = Cadence(check_positive_int("checkpoint_interval", interval))
        self.means, self.episodes, self.guard = RunningMeans(), EpisodeReturns(num_envs=num_envs), NonFiniteGuard()
        self.timer = PhaseTimer("collect", "update", "eval")
        self.solved_metric, self.solved_threshold = solved_metric, solved_threshold
        self.stop_when_solved, self.logger_backend = bool(stop_when_solved), logger_backend
        self.progress, self.name, self.env_name = bool(progress), name, env_name
        self.update_step = UpdateStep(loss, optimizer, target_updater, autocast=autocast, compile=compile)
        self.stored = stored_keys(loss) if self.slice_len is None else None  # what the buffer keeps of a batch
        self.started_from: dict[str, Any] | None = None  # set when the loss was warm-started (init_from)
        self.counters: dict[str, Any] = {"frames": 0, "updates": 0, "solved_at": None, "history": []}
        self.last_rollouts: list[TensorDictBase] = []

    def run(self) -> dict[str, Any]:
        """Train to the budget (or until solved), checkpointing on the way; return the summary.

        Raises :class:`~maxent_components.runs.errors.RunFailure` (with the summary so far) when the
        run cannot go on: non-finite data or losses, a diverged state (never checkpointed), an
        environment that raises, a file that cannot be written.
        """
        collector, buffer, logger = self._pipeline()
        try:
            state = None
            if self.run_dir.has_checkpoint():
                noted = len(self.run_dir.notes)
                state = self.run_dir.load_checkpoint()["state"]
                for note in self.run_dir.notes[noted:]:  # a checkpoint passed over, and why
                    print(f"{self.name}: {note}")
            try:
                if state is not None:
                    self._restore(state, collector, buffer)
                logger.open(resume=None if state is None else self._logger_state(state), step=self.counters["frames"])
            except (KeyError, ValueError, TypeError, RuntimeError) as err:  # a layout of another version
                raise RunFailure(f"the checkpoint in {self.run_dir.path} verifies but this library version cannot "
                                 f"restore it ({type(err).__name__}: {short_message(err)}); move it away to restart "
                                 "the run.") from None
            self._train(collector, buffer, logger)
        except (EnvironmentDataError, FloatingPointError) as err:
            raise RunFailure(str(err), summary=self.summary()) from None
        except RunFailure as err:
            err.summary = err.summary or self.summary()
            raise
        except OSError as err:  # a full disk or a read-only folder, while logging
            raise RunWriteError(f"could not write the logs in {self.run_dir.log_dir}: {err.strerror or err}",
                                summary=self.summary()) from None
        except KeyboardInterrupt as err:  # SIGINT or SIGTERM: the command line marks the run failed with this
            err.summary = self.summary()
            raise
        except Exception as err:
            explained = self._explain(err)
            if explained is err:
                raise
            raise explained from err
        finally:
            collector.shutdown()
            if logger.logger is not None:
                try:
                    logger.close()
                except OSError:
                    pass  # what could not be flushed was reported by the write that failed
        return self.summary()

    def _pipeline(self):
        """The collector acting with the actor, the replay buffer and the metrics logger of the run."""
        collector = off_policy_collector(
            self.env, self.loss.actor, frames_per_batch=self.frames_per_batch,
            total_frames=self.total_frames, init_random_frames=self.init_random_frames,
        )
        buffer = uniform_replay_buffer(self.buffer_size, batch_size=self.batch_size, slice_len=self.slice_len, device=self.device)
        return collector, buffer, RunLogger(self.logger_backend, self.run_dir.log_dir)

    def _logger_state(self, state: dict[str, Any]) -> Any:
        """What the checkpoint ``state`` holds for the logger to resume with."""
        return logger_state(state, self.logger_backend)

    def _explain(self, err: Exception) -> Exception:
        """The failure an unexpected error stands for: a diverged state (a NaN policy fails inside
        ``torch.multinomial``), an environment that raised, or else the error itself."""
        step, what = self.counters["frames"], f"{type(err).__name__}: {short_message(err)}"
        bad = first_non_finite({"loss": self.loss.state_dict()})
        if bad is not None:
            return RunFailure(f"the run diverged after {step} env steps: {bad} is not finite ({what}); "
                              f"{self._diverged()}", summary=self.summary())
        if raised_by_environment(err):
            env = f"the environment {self.env_name}" if self.env_name else "the environment"
            return RunFailure(f"{env} failed after {step} env steps: {what}", summary=self.summary())
        return err

    def _train(self, collector, buffer, logger) -> None:
        c = self.counters
        with progress_bar(self.total_frames, enabled=self.progress, desc=self.name) as bar:
            bar.skip_to(c["frames"])
            for batch in self.timer.iterate(collector, "collect"):
                batch = batch.reshape(-1)
                check_env_data(batch, first_frame=c["frames"], action_spec=self.env.action_spec_unbatched)
                c["frames"] += batch.numel()
                buffer.extend(batch if self.stored is None else batch.select(*self.stored, strict=False))
                self.episodes.update(batch.get(("next", "reward")), batch.get(("next", "done")))
                due = self.schedule.due(c["frames"], batch.numel())
                with self.timer("update"):
                    for sample in minibatches(buffer, due, slice_len=self.slice_len):
                        self._update(sample)
                stop = self._after_batch(collector, buffer, logger, solved=c["solved_at"] is not None)
                last = c["history"][-1] if c["history"] else {}
                bar.update(batch.numel(), **{k: v for k, v in last.items() if k != "step" and v is not None})
                if stop:
                    break

    def _after_batch(self, collector, buffer, logger, *, solved: bool) -> bool:
        """Evaluate, log and checkpoint as their cadences say once a batch is trained on; True to stop."""
        frames = self.counters["frames"]
        evaluated = self.eval_cadence.due(frames) or frames >= self.total_frames
        if evaluated:
            self._evaluate()
        if self.log_cadence.due(frames) or evaluated:
            self._log(logger, evaluated)
        stop = self.stop_when_solved and solved
        if self.checkpoint_cadence.due(frames) or stop or frames >= self.total_frames:
            self._checkpoint(collector, buffer, logger)
        return stop

    def _update(self, sample: TensorDictBase) -> None:
        if self.reward_scale != 1.0:
            # A sampled batch is a copy of the stored rows: scaling it leaves the buffer as collected.
            sample.get(("next", "reward")).mul_(self.reward_scale)
        out = self.update_step(sample)
        for schedule in self.schedules:
            schedule.step()
        self.counters["updates"] += 1
        self.means.add(**{key: value for key, value in out.items() if value.ndim == 0})

    def _evaluate(self) -> None:
        c = self.counters
        with self.timer("eval"):
            metrics, self.last_rollouts = scored_evaluation(self.evaluator, c["frames"])
        c["history"].append({"step": c["frames"], **metrics})
        if c["solved_at"] is None and self._reached(metrics):
            c["solved_at"] = c["frames"]

    def _reached(self, metrics: dict[str, float]) -> bool:
        """Whether an evaluation's ``metrics`` meet the run's solved bar (never, without one)."""
        if self.solved_metric is None or self.solved_threshold is None:
            return False
        return metrics[self.solved_metric] >= self.solved_threshold

    def _log(self, logger, evaluated: bool) -> None:
        c = self.counters
        row = self.means.pop()
        self.guard.check(row, step=c["frames"])  # once per log interval: a NaN update makes its mean NaN
        seconds = self.timer.seconds["update"]
        row.update(updates=c["updates"], fps=c["frames"] / max(self.timer.elapsed(), 1e-9))
        if c["updates"] and seconds > 0:
            row["updates_per_s"] = c["updates"] / seconds
        if self.episodes.count:
            row["train_return"] = self.episodes.mean_recent()
        if evaluated:
            row.update({k: v for k, v in c["history"][-1].items() if k != "step"})
        logger.log(row, step=c["frames"])

    def summary(self) -> dict[str, Any]:
        """The run's numbers: budget used, last and best evaluation, when solved, time, the curve."""
        c, history = self.counters, self.counters["history"]
        last = history[-1] if history else {}
        seconds = self.timer.seconds["update"]
        summary = {
            "env_steps": c["frames"],
            "updates": c["updates"],
            "updates_per_s": c["updates"] / seconds if c["updates"] and seconds > 0 else None,
            "train_episodes": self.episodes.count,
            "eval_return_mean": last.get("eval_return"),
            "best_eval_return": max((h["eval_return"] for h in history), default=None),
            "solved": c["solved_at"] is not None,
            "solved_at_step": c["solved_at"],
            "solved_metric": self.solved_metric,
            "solved_threshold": self.solved_threshold,
            "wall_time_s": self.timer.elapsed(),
            **self.timer.summary(),
            "time_compile_s": self.update_step.compile_seconds,
            "history": history,
        }
        if self.started_from is not None:
            summary["started_from"] = self.started_from
        for key in last:
            if key not in ("step", "eval_return", "eval_length"):
                summary[key] = last[key]
                summary[f"best_{key}"] = max(h[key] for h in history)
        return summary

    def _diverged(self) -> str:
        step = self.run_dir.last_checkpoint_step()
        kept = "no checkpoint was written" if step is None else f"the checkpoint at step {step} is finite and kept"
        return f"{kept}; {_ADVICE}"

    # -- checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self, collector, buffer, logger) -> None:
        step = self.counters["frames"]
        bad = first_non_finite({"loss": self.loss.state_dict(), "optimizer": self.optimizer.state_dict()})
        if bad is not None:  # never save a diverged state: the last checkpoint stays the last finite one
            raise RunFailure(f"the run diverged by step {step}: {bad} is not finite, so it is not checkpointed; "
                             f"{self._diverged()}", summary=self.summary())
        try:
            self.run_dir.save_checkpoint(self._state(collector, buffer, logger), step=self.counters["frames"])
        except OSError as err:
            raise RunWriteError(
                f"could not write {self.run_dir.checkpoint_path}: {err.strerror or err}", summary=self.summary()
            ) from None

    def _state(self, collector, buffer, logger) -> dict[str, Any]:
        state = {
            "loss": self.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "target_updater": None if self.target_updater is None else self.target_updater.state_dict(),
            "buffer": buffer_state(buffer),
            "collector": collector.state_dict(),
            "carrier": collector_carrier(collector),
            "env": env_state(self.env),
            "eval_env": env_state(self.evaluator.env),
            "rng": rng_state(),
            "counters": dict(self.counters),
            "logger": logger.state_dict(),
        }
        state.update({name: getattr(self, name).state_dict() for name in _PIECES})
        return state

    def _restore(self, state: dict[str, Any], collector, buffer) -> None:
        mismatch = state_mismatch(state["loss"], self.loss.state_dict(), prefix="loss.")
        if mismatch is not None:
            raise ValueError(mismatch)
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.target_updater is not None:
            self.target_updater.load_state_dict(state["target_updater"])
        restore_buffer(buffer, state["buffer"], device=self.device)
        collector.load_state_dict(state["collector"])
        for name in _PIECES:
            getattr(self, name).load_state_dict(state[name])
        self.counters = dict(state["counters"])
        restored = restore_env_state(self.env, state["env"]) and restore_env_state(self.evaluator.env, state["eval_env"])
        if restored:
            restore_carrier(collector, state["carrier"], device=self.device)
        else:
            warnings.warn("an environment's state could not be saved: the resumed run starts a new episode.", stacklevel=2)
        set_rng_state(state["rng"])


_ADVICE = "lower the learning rates, check the reward scale and the temperature, or look at the logged losses for where it diverged."
