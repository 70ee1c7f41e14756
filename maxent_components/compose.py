"""Compose skills from finished runs: ``python -m maxent_components.compose RUN RUN [...] --out DIR``.

Each ``RUN`` is the folder of a finished recipe run (soft Q-learning, soft DQN, ...). Its Q network
is rebuilt from the run's recorded config by the recipe's own ``build`` and loaded from its verified
checkpoint (an ensemble becomes the mean of its members). The skills are composed into
``Q_w = Σ_i w_i Q_i`` (:class:`~maxent_components.modules.ComposedQ`; Haarnoja et al., 2018,
"Composable Deep Reinforcement Learning for Robotic Manipulation") and the Boltzmann policy
``π_w ∝ exp(Q_w / α)`` is run with no further training: MALA on ``Q_w / α`` for continuous actions,
exact sampling for discrete ones. The skills must share the temperature (the composition bound is
stated at one α) and the observation and action spaces.

Written into ``--out``: ``composed_q.pt`` (the composed network's state with the runs and weights
it came from), ``summary.json`` (evaluation returns and the task's diagnostics of the composed policy
on the environment of ``--eval-run``, the first run by default) and, on MultiGoal, ``q_contours.png``.
The summary is that of a run, so ``python -m maxent_components.study`` puts compositions beside
trained runs: its config is the evaluation run's at ``--seed`` plus a ``compose`` node (the skills'
config hashes without their seeds, the weights, the MALA options), its curve is one point at the
skills' env steps added up.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torchrl.data import Bounded

from maxent_components.modules import ComposedQ
from maxent_components.modules.qfunction import QFunction
from maxent_components.runs import read_checkpoint
from maxent_components.runs.directory import RunDirectory, config_identity
from maxent_components.runs.errors import CheckpointError
from maxent_components.runs.files import atomic_torch_save
from maxent_components.samplers import BoltzmannSampler, LangevinSampler
from maxent_components.training.evaluation import Evaluator, task_diagnostics

__all__ = ["Skill", "load_run", "load_skill", "main"]


class CompositionError(ValueError):
    """A run that cannot be composed, named with the reason (printed as one line by the command)."""


class Skill:
    """A finished run's Q network (its own parameters loaded), temperature and parts."""

    def __init__(self, path: Path, qnet, alpha: float, cfg, env, eval_env) -> None:
        self.path, self.qnet, self.alpha, self.cfg, self.env, self.eval_env = path, qnet, alpha, cfg, env, eval_env

    def close(self) -> None:
        for env in (self.env, self.eval_env):
            if not env.is_closed:
                env.close()


def load_run(folder: str | Path):
    """Rebuild the loss of the finished run in ``folder`` by its recipe's ``build`` and load its
    verified checkpoint; returns ``(config, env, eval_env, loss)``, on the CPU with one environment."""
    path = Path(folder)
    try:
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError):
        raise CompositionError(f"{path} holds no readable summary.json: not a run folder.") from None
    if not summary.get("finished"):
        raise CompositionError(f"{path} is not a finished run (its summary says finished: false).")
    if "composed_from" in summary:
        raise CompositionError(f"{path} holds a composition, not a trained skill; compose its skills directly.")
    recipe = summary.get("recipe")
    if recipe is None:
        raise CompositionError(f"{path}: its summary does not name its recipe (written by an older version); rerun it.")
    module = importlib.import_module(f"maxent_components.recipes.{recipe}")
    cfg = OmegaConf.create(summary["config"])
    # On the CPU with one environment, whatever the run trained with (and for runs recorded before
    # the device and num_envs options existed).
    env, eval_env, loss, _ = module.build(OmegaConf.merge(cfg, {"device": "cpu", "num_envs": 1}))
    try:
        loss.load_state_dict(read_checkpoint(path / "checkpoint.pt")["state"]["loss"])
    except CheckpointError as err:
        raise CompositionError(str(err)) from None
    return cfg, env, eval_env, loss


def load_skill(folder: str | Path) -> Skill:
    """Rebuild the Q network of the finished run in ``folder`` and load its checkpoint."""
    cfg, env, eval_env, loss = load_run(folder)
    params = loss.qvalue_network_params.data
    members = [params] if params.batch_dims == 0 else list(params.unbind(0))
    nets = []
    for member in members:
        net = copy.deepcopy(loss.qvalue_network)
        member.clone().to_module(net)
        nets.append(net.requires_grad_(False))
    qnet = nets[0] if len(nets) == 1 else ComposedQ(*nets)  # an ensemble: the mean of its members
    return Skill(Path(folder), qnet, float(loss.temperature.value()), cfg, env, eval_env)


def compose(skills: list[Skill], weights: list[float] | None) -> ComposedQ:
    """``ComposedQ`` of the skills, after checking they share α and the spaces."""
    first = skills[0]
    for skill in skills[1:]:
        if not math.isclose(skill.alpha, first.alpha, rel_tol=1e-6):
            raise CompositionError(
                f"the skills must share the temperature: alpha={first.alpha:g} in {first.path}, "
                f"alpha={skill.alpha:g} in {skill.path}."
            )
        for name in ("action_spec", "observation_spec"):
            if getattr(skill.env, name) != getattr(first.env, name):
                raise CompositionError(f"the skills must share the {name.split('_')[0]} space: {first.path} and {skill.path} differ.")
    try:
        return ComposedQ(*[skill.qnet for skill in skills], weights=weights)
    except (TypeError, ValueError) as err:
        raise CompositionError(str(err)) from None


def composed_policy(qnet: ComposedQ, action_spec, alpha: float, args: argparse.Namespace):
    """MALA on ``Q_w/α`` for a box of actions, exact Boltzmann sampling for discrete ones."""
    if isinstance(action_spec, Bounded):
        return LangevinSampler(qnet, action_spec=action_spec, alpha=alpha, num_steps=args.mala_steps,
                               step_size=args.step_size, metropolis=True)
    return BoltzmannSampler(qnet, action_spec=action_spec, alpha=alpha)


def _skill_identity(skill: Skill) -> str:
    """The skill's config hash without its seed: the same skill trained on another seed matches."""
    config = OmegaConf.to_container(skill.cfg, resolve=True)
    run_only, neutral = _identity_keys(skill)
    return config_identity(config, [*run_only, "seed"], neutral)[1][:12]


def _identity_keys(skill: Skill) -> tuple[list[str], dict]:
    """The run-only and neutral options its run recorded (:func:`~maxent_components.runs.config_identity`)."""
    summary = json.loads((skill.path / "summary.json").read_text())
    return summary.get("run_only", []), summary.get("neutral") or {}


def composed_run(skills: list[Skill], judge: Skill, qnet: ComposedQ, args: argparse.Namespace) -> tuple[dict, list[str], dict]:
    """The composed policy's config, as a run the study tool reads: the evaluation run's config at
    ``--seed`` plus a ``compose`` node naming the skills (seed-free config hashes) and the policy's
    options; and the run-only and neutral keys."""
    config = OmegaConf.to_container(judge.cfg, resolve=True)
    config["seed"] = args.seed
    config["compose"] = {
        "skills": [_skill_identity(skill) for skill in skills], "weights": [round(w, 12) for w in qnet.weights.tolist()],
        "mala_steps": args.mala_steps, "step_size": args.step_size, "episodes": args.episodes,
    }
    return config, *_identity_keys(judge)


def run(args: argparse.Namespace) -> dict:
    skills = [load_skill(folder) for folder in args.runs]
    judge = load_skill(args.eval_run) if args.eval_run else skills[0]
    try:
        qnet = compose(skills, args.weights)
        alpha = skills[0].alpha
        config, run_only, neutral = composed_run(skills, judge, qnet, args)
        _, digest = config_identity(config, run_only, neutral)
        out = RunDirectory(args.out)
        held = out.read_summary()
        if held is not None and held.get("config_hash") != digest:
            raise CompositionError(f"{out.path} holds another run or composition; choose another --out.")
        out.start(config, digest, run_only=run_only, neutral=neutral)
        started = time.perf_counter()
        torch.manual_seed(args.seed)
        policy = composed_policy(qnet, judge.eval_env.action_spec, alpha, args)
        judge.eval_env.set_seed(args.seed)
        task = judge.cfg.env
        evaluator = Evaluator(judge.eval_env, policy, num_episodes=args.episodes, max_steps=int(task.max_episode_steps),
                              exploration="random", diagnostics=task_diagnostics(task))
        metrics, rollouts = evaluator()
        sources = [str(skill.path) for skill in skills]
        atomic_torch_save({"runs": sources, "weights": qnet.weights.tolist(), "alpha": alpha, "state_dict": qnet.state_dict()},
                          out.path / "composed_q.pt")
        sources_summaries = [json.loads((skill.path / "summary.json").read_text()) for skill in skills]
        env_steps = sum(int(s.get("env_steps") or 0) for s in sources_summaries)
        row = {"step": env_steps, **metrics}
        metric, threshold = task.get("solved_metric"), task.get("solved_threshold")
        spent = time.perf_counter() - started
        solved = metric is not None and threshold is not None and row.get(metric, -math.inf) >= threshold
        summary = {
            "composed_from": sources, "weights": qnet.weights.tolist(), "alpha": alpha, "eval_run": str(judge.path),
            "env_steps": env_steps, "updates": sum(int(s.get("updates") or 0) for s in sources_summaries),
            "updates_per_s": None, "eval_return_mean": metrics["eval_return"], "best_eval_return": metrics["eval_return"],
            "eval_returns": [float(r["next", "reward"].sum()) for r in rollouts],
            "eval_lengths": [int(r.shape[0]) for r in rollouts],
            "solved": bool(solved), "solved_at_step": env_steps if solved else None,
            "solved_metric": metric, "solved_threshold": threshold,
            # the cost of the composed policy: the skills' training and this evaluation, as its env steps
            "wall_time_s": sum(float(s.get("wall_time_s") or 0.0) for s in sources_summaries) + spent,
            "composition_time_s": spent, "history": [row],
            **{k: v for k, v in metrics.items() if k not in ("eval_return", "eval_length")},
        }
        if judge.cfg.env.name.endswith("MultiGoal-v0") and isinstance(judge.eval_env.action_spec, Bounded):
            from maxent_components.plotting import plot_q_contours

            summary["q_contours"] = str(plot_q_contours(
                QFunction(qnet), policy, action_spec=judge.eval_env.action_spec, path=out.path / "q_contours.png",
                generator=torch.Generator().manual_seed(args.seed), title="composed skills: Q_w(s, ·) and MALA samples",
            ))  # fmt: skip
        out.finish(summary)
        return summary
    finally:
        for skill in {id(s): s for s in [*skills, judge]}.values():
            skill.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compose", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="folders of finished runs, one per skill (at least two)")
    parser.add_argument("--out", required=True, help="folder to write composed_q.pt, summary.json and figures into")
    parser.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per run (default: equal, 1/n)")
    parser.add_argument("--eval-run", default=None, help="evaluate on this run's environment (default: the first run's)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes of the composed policy (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation (default 0)")
    parser.add_argument("--mala-steps", type=int, default=100, help="MALA steps per action, continuous actions (default 100)")
    parser.add_argument("--step-size", type=float, default=0.05, help="MALA step size (default 0.05)")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error(f"at least two runs are needed to compose, got {len(args.runs)}")
    if args.weights is not None and len(args.weights) != len(args.runs):
        parser.error(f"--weights needs one number per run: {len(args.runs)} runs, {len(args.weights)} weights")
    if args.episodes < 1 or args.mala_steps < 1 or not args.step_size > 0:
        parser.error("--episodes and --mala-steps must be >= 1 and --step-size > 0")
    try:
        summary = run(args)
    except CompositionError as err:
        print(f"compose: error: {err}", file=sys.stderr)
        return 2
    print(f"compose: the composed policy returned {summary['eval_return_mean']:.1f} on average over "
          f"{args.episodes} episodes; files in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
