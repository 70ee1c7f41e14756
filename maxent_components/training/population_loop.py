"""The off-policy loop of a population: ``N`` members collected, replayed and updated as one program.

:class:`PopulationLoop` is :class:`~maxent_components.training.loop.OffPolicyLoop` with every step
made member-wise: the ``N`` environments (member ``k``'s seeded as its own run's) are stepped
together and each acts with its own member (:class:`~maxent_components.training.population.PopulationPolicy`);
the transitions go to one replay buffer and come back with independent indices per member; one
``torch.vmap``'d loss, one backward and one optimiser step update all members, and the target
update and the schedules act on the stacked tensors element-wise. Evaluations, logs, the
non-finite guard and the summaries are per member (:class:`Member`): each member's run folder gets
what a single run of its seed would write. One checkpoint holds the whole population.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tensordict import TensorDictBase

from maxent_components.runs.directory import RunDirectory
from maxent_components.runs.errors import RunFailure
from maxent_components.runs.logs import RunLogger
from maxent_components.runs.rng import rng_state, set_rng_state
from maxent_components.training.bookkeeping import EpisodeReturns, NonFiniteLossError, progress_bar
from maxent_components.training.builders import off_policy_collector
from maxent_components.training.env_state import env_state, restore_env_state
from maxent_components.training.evaluation import Evaluator, scored_evaluation
from maxent_components.training.failures import first_non_finite
from maxent_components.training.loop import _PIECES, OffPolicyLoop
from maxent_components.training.population import (
    Population,
    PopulationPolicy,
    member_minibatches,
    member_replay_buffer,
)
from maxent_components.training.resume import (
    buffer_state,
    collector_carrier,
    restore_buffer,
    restore_carrier,
)
from maxent_components.validation import check_env_data

__all__ = ["Member", "PopulationLoop"]


class Member:
    """What one member keeps of its own: its evaluator, run folder, logger, evaluations and episodes."""

    def __init__(self, index: int, seed: int, evaluator: Evaluator, run: RunDirectory, logger_backend: str) -> None:
        self.index, self.seed, self.evaluator, self.run = index, seed, evaluator, run
        self.logger = RunLogger(logger_backend, run.log_dir)
        self.history: list[dict[str, Any]] = []
        self.solved_at: int | None = None
        self.episodes = EpisodeReturns()
        self.last_rollouts: list[TensorDictBase] = []

    @property
    def name(self) -> str:
        return f"member {self.index} (seed {self.seed})"

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "solved_at": self.solved_at, "episodes": self.episodes.state_dict(),
                "logger": self.logger.state_dict(), "eval_env": env_state(self.evaluator.env)}

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        self.history, self.solved_at = list(state["history"]), state["solved_at"]
        self.episodes.load_state_dict(state["episodes"])
        return restore_env_state(self.evaluator.env, state["eval_env"])


class _MemberLoggers:
    """The members' loggers, opened, written and closed together (what the loop's one logger does)."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members

    @property
    def logger(self):
        return self.members[0].logger.logger

    def open(self, *, resume: list | None = None, step: int | None = None) -> None:
        for index, member in enumerate(self.members):
            member.logger.open(resume=None if resume is None else resume[index], step=step)

    def state_dict(self) -> list:
        return [member.logger.state_dict() for member in self.members]

    def close(self) -> None:
        for member in self.members:
            if member.logger.logger is not None:
                member.logger.close()


class PopulationLoop(OffPolicyLoop):
    """Train the members of ``population`` together, each writing its own run folder.

    Args:
        population: the :class:`~maxent_components.training.population.Population` to train.
        optimizer: one optimiser over ``population.parameters()`` (element-wise, as Adam).

    Keyword Args:
        env: ``N`` environments stepped together (batch size ``[N]``), copy ``k`` member ``k``'s.
        evaluators: one :class:`~maxent_components.training.evaluation.Evaluator` per member, each on
            that member's evaluation environment and acting with ``population.template.actor``.
        runs: one run folder per member (its summary and logs are written there).
        run: the folder of the shared checkpoint.
        seeds: the members' seeds (named in messages and summaries).
        **options: as :class:`~maxent_components.training.loop.OffPolicyLoop` (``total_frames`` and the
            other step counts are per member); ``compile`` and ``slice_len`` are not supported.
    """

    def __init__(self, population: Population, optimizer, *, env, target_updater=None, evaluators, runs, run,
                 seeds, **options: Any) -> None:
        if options.get("compile", "none") != "none" or options.get("slice_len") is not None:
            raise ValueError("a population is trained eagerly on transitions: compile and slice_len are not supported.")
        members = population.num_members
        if tuple(env.batch_size) != (members,) or not len(evaluators) == len(runs) == len(seeds) == members:
            raise ValueError(f"a population of {members} needs {members} environments (got batch size "
                             f"{tuple(env.batch_size)}), evaluators, run folders and seeds.")
        super().__init__(population.template, optimizer, env=env, target_updater=target_updater, evaluator=evaluators[0],
                         run=run, **options)
        self.population = population
        self.members = [Member(k, s, e, r, self.logger_backend) for k, (s, e, r) in enumerate(zip(seeds, evaluators, runs))]
        self._checked = False

    # -- the pipeline and the loop ---------------------------------------------------------------
    def _pipeline(self):
        n = self.population.num_members
        collector = off_policy_collector(
            self.env, PopulationPolicy(self.population), frames_per_batch=self.frames_per_batch * n,
            total_frames=self.total_frames * n, init_random_frames=self.init_random_frames * n,
        )
        buffer = member_replay_buffer(self.buffer_size, members=n, batch_size=self.batch_size, device=self.device)
        return collector, buffer, _MemberLoggers(self.members)

    def _train(self, collector, buffer, logger) -> None:
        c, n = self.counters, self.population.num_members
        with progress_bar(self.total_frames, enabled=self.progress, desc=self.name) as bar:
            bar.skip_to(c["frames"])
            for batch in self.timer.iterate(collector, "collect"):  # [N, T]: member k's steps in row k
                steps = batch.shape[-1]
                for member in self.members:
                    rows = batch[member.index]
                    check_env_data(rows, first_frame=c["frames"], action_spec=self.env.action_spec_unbatched,
                                   where=f"{member.name} collected")
                    member.episodes.update(rows.get(("next", "reward")), rows.get(("next", "done")))
                c["frames"] += steps
                buffer.extend(batch.transpose(0, 1).reshape(-1))  # step-major: member k on rows ≡ k (mod N)
                due = self.schedule.due(c["frames"], steps)
                with self.timer("update"):
                    for sample in member_minibatches(buffer, due, members=n):
                        self._update(sample)
                stop = self._after_batch(collector, buffer, logger,
                                         solved=all(m.solved_at is not None for m in self.members))
                bar.update(steps, **self._shown())
                if stop:
                    break

    def _update(self, sample: TensorDictBase) -> None:
        if self.reward_scale != 1.0:
            sample.get(("next", "reward")).mul_(self.reward_scale)
        if not self._checked:  # values and structure checked once, on member 0's rows, outside vmap
            self.population.first_batch_checks(sample)
            self._checked = True
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.update_step.autocast == "bfloat16"):
            out = self.population.loss(sample)
        sum(value.sum() for key, value in out.items() if key.startswith("loss_")).backward()
        self.optimizer.step()
        if self.target_updater is not None:  # element-wise on the stacked tensors: members never mix
            self.population.update_targets(self.target_updater)
        with self.population.swapped():  # the schedules count in place, on the stacked counters
            for schedule in self.schedules:
                schedule.step()
        self.counters["updates"] += 1
        self.means.add(**dict(out.items()))

    def _evaluate(self) -> None:
        c = self.counters
        for member in self.members:
            with self.timer("eval"), self.population.member(member.index):
                metrics, member.last_rollouts = scored_evaluation(member.evaluator, c["frames"], who=member.name)
            member.history.append({"step": c["frames"], **metrics})
            if member.solved_at is None and self._reached(metrics):
                member.solved_at = c["frames"]

    def _log(self, logger, evaluated: bool) -> None:
        c = self.counters
        means = self.means.pop()
        names = list(means)
        values = torch.stack([means[name].float() for name in names], -1).tolist() if names else [[]] * len(self.members)
        seconds, elapsed = self.timer.seconds["update"], max(self.timer.elapsed(), 1e-9)
        for member, row_values in zip(self.members, values):
            row = dict(zip(names, row_values))
            bad = {k: v for k, v in row.items() if k.startswith("loss") and not math.isfinite(v)}
            if bad:
                shown = ", ".join(f"{k}={v}" for k, v in bad.items())
                raise NonFiniteLossError(f"non-finite loss of {member.name} at step {c['frames']}: {shown}. Aborting "
                                         f"the population; lower the learning rate or check that member's data.")
            row.update(updates=c["updates"], fps=c["frames"] / elapsed)
            if c["updates"] and seconds > 0:
                row["updates_per_s"] = c["updates"] / seconds
            if member.episodes.count:
                row["train_return"] = member.episodes.mean_recent()
            if evaluated:
                row.update({k: v for k, v in member.history[-1].items() if k != "step"})
            member.logger.log(row, step=c["frames"])

    def _shown(self) -> dict[str, float]:
        """The progress bar's values: the members' mean of the last evaluation return."""
        last = [m.history[-1]["eval_return"] for m in self.members if m.history]
        return {"eval_return": sum(last) / len(last)} if last else {}

    # -- summaries -------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The members' summaries (``{"members": [...]}``), each as a single run of its seed reports it."""
        return {"members": [self.member_summary(member.index) for member in self.members]}

    def member_summary(self, index: int) -> dict[str, Any]:
        member = self.members[index]
        saved = (self.counters["history"], self.counters["solved_at"], self.episodes)
        self.counters["history"], self.counters["solved_at"], self.episodes = member.history, member.solved_at, member.episodes
        try:
            summary = OffPolicyLoop.summary(self)
        finally:
            self.counters["history"], self.counters["solved_at"], self.episodes = saved
        summary["population"] = {"size": len(self.members), "member": index, "seeds": [m.seed for m in self.members]}
        return summary

    # -- checkpoints -----------------------------------------------------------------------------
    def _first_bad_member(self) -> str | None:
        for member in self.members:
            bad = first_non_finite(self.population.params[member.index].to_dict())
            if bad is not None:
                return f"{member.name}'s {bad}"
        return None

    def _explain(self, err: Exception) -> Exception:
        bad = self._first_bad_member()
        if bad is not None:
            return RunFailure(f"the population diverged after {self.counters['frames']} env steps: {bad} is not "
                              f"finite ({type(err).__name__}); {self._diverged()}", summary=self.summary())
        return super()._explain(err)

    def _checkpoint(self, collector, buffer, logger) -> None:
        bad = self._first_bad_member()
        if bad is not None:
            raise RunFailure(f"the population diverged by step {self.counters['frames']}: {bad} is not finite, so it "
                             f"is not checkpointed; {self._diverged()}", summary=self.summary())
        super()._checkpoint(collector, buffer, logger)
        for member in self.members:  # what each member's run folder shows of the run so far
            member.run.fail(self.member_summary(member.index), "unfinished: trained in a population, not yet done")

    def _state(self, collector, buffer, logger) -> dict[str, Any]:
        state = {
            "population": self.population.params.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "target_updater": None if self.target_updater is None else self.target_updater.state_dict(),
            "buffer": buffer_state(buffer),
            "collector": collector.state_dict(),
            "carrier": collector_carrier(collector),
            "env": env_state(self.env),
            "rng": rng_state(),
            "counters": dict(self.counters),
            "members": [member.state_dict() for member in self.members],
        }
        state.update({name: getattr(self, name).state_dict() for name in _PIECES if name != "episodes"})
        return state

    def _restore(self, state: dict[str, Any], collector, buffer) -> None:
        with torch.no_grad():
            self.population.params.update_(state["population"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.target_updater is not None:
            self.target_updater.load_state_dict(state["target_updater"])
        restore_buffer(buffer, state["buffer"], device=self.device)
        collector.load_state_dict(state["collector"])
        for name in _PIECES:
            if name != "episodes":
                getattr(self, name).load_state_dict(state[name])
        self.counters = dict(state["counters"])
        restored = restore_env_state(self.env, state["env"])
        for member, saved in zip(self.members, state["members"]):
            restored = member.load_state_dict(saved) and restored
        if restored:
            restore_carrier(collector, state["carrier"], device=self.device)
        set_rng_state(state["rng"])

    def _logger_state(self, state: dict[str, Any]) -> list:
        return [saved["logger"] for saved in state["members"]]
