"""How well a trained run's sampler draws from ``exp(Q(s, ·)/α)`` of its own learned Q.

``sampler_quality.py`` measures the samplers on targets with exact samples; this script asks the
same question inside a finished soft Q-learning run, where the target is the run's own learned Q.
It rebuilds the run's loss from its folder (``maxent_components.compose.load_run``), rolls its
policy out in the evaluation env to collect states (every ``--stride``-th step from a seeded reset),
and at each state draws ``--samples`` actions from

- ``actor``: the run's amortized sampler (what acts and what the soft value's proposal is);
- ``actor+mala``: those actions refined by ``--mala-steps`` MALA steps on ``Q/α``;
- ``retrained`` (with ``--retrain STEPS``): a fresh copy of the actor trained ``STEPS`` steps against
  the run's final Q, frozen, on states of another rollout: what the sampler reaches against a target
  that does not move, as it does during training;
- ``svgd_refine`` and ``svgd_from_ref`` (with ``--svgd-refine STEPS``): the actor's non-amortized SVGD
  moving the whole set of uniform starts, or of the second reference set, by ``STEPS`` steps: whether
  SVGD's own dynamics reach, and hold, the target the amortized map is trained towards;
- ``mala_long``: MALA chains started uniformly over the box, ``--reference-steps`` steps, and
  ``mala_long_b``: as many other chains (the reference's own noise floor);
- ``sir``: sampling-importance-resampling of ``--proposals`` uniform actions weighted by
  ``exp(Q/α)`` (exact as the proposals grow; its effective sample size says how far it is).

The two references (``mala_long`` and ``sir``) are compared with each other too, which bounds how
much their verdict can be trusted. SIR is used as a reference only where its effective sample size
reaches ``--min-ess``: where ``exp(Q/α)`` is sharp in several dimensions, nearly all its weight falls
on a handful of proposals, and its resampled set is a few repeated points. MALA's step size is tuned
per state on a grid (the largest whose acceptance over 30 steps is at least ``--target-acceptance``).

Reported per state and as medians over states: MMD² to the reference relative to uniform samples'
(``sampler_quality.mmd2``: 0 is the reference itself, 1 is no better than uniform), the spread (root
of the trace of the covariance) relative to the reference's, MALA's acceptance rate and SIR's
effective sample size. Where ``exp(Q/α)`` is nearly flat over the box, uniform samples are
themselves close to the reference (``mmd_uniform``, the denominator, is small, and SIR's effective
sample size approaches ``--proposals``), and the relative MMD² of every sampler is noisy there.

Usage::

    python -m maxent_components.recipes.sql env=halfcheetah seed=0 threads=1 total_frames=100000 \\
        hydra.run.dir=runs/sql_halfcheetah_0
    python benchmarks/sampler_on_learned_q.py runs/sql_halfcheetah_0 --json results.json
    python benchmarks/sampler_on_learned_q.py runs/sql_halfcheetah_0 --retrain 3000 --retrain-particles 128
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import warnings

import torch
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchrl\..*")

from maxent_components.compose import CompositionError, load_run  # noqa: E402
from maxent_components.modules.policies import noise_input_policy_network  # noqa: E402
from maxent_components.samplers import LangevinSampler, SVGDSampler  # noqa: E402
from maxent_components.samplers.uniform import sample_uniform_box  # noqa: E402
from maxent_components.specs import box_bounds  # noqa: E402
from maxent_components.temperature import AnnealedTemperature  # noqa: E402

# benchmarks/ is on sys.path when this file is run as a script
from sampler_quality import mmd2  # noqa: E402

STEP_SIZES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)


def states(loss, eval_env, num_states: int, stride: int, seed: int) -> TensorDict:
    """``num_states`` observations of one rollout of the run's policy, every ``stride``-th step."""
    eval_env.set_seed(seed)
    with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
        rollout = eval_env.rollout(num_states * stride, policy=loss.actor, break_when_any_done=False)
    picked = rollout[::stride][:num_states]
    return TensorDict({key: picked.get(key) for key in loss.qvalue_network.in_keys if key != "action"},
                      batch_size=picked.batch_size)


def retrained(loss, pool: TensorDict, args: argparse.Namespace, lr: float, num_cells, gen: torch.Generator):
    """A fresh copy of the run's actor (re-initialised; ``--retrain-particles`` particles, the median
    rule ``--retrain-bandwidth`` times ``--retrain-bandwidth-scale``, ``--retrain-noise-dim`` noise
    inputs) trained ``--retrain`` steps against the run's final, frozen Q on batches of ``pool``'s
    states; with ``--retrain-anneal A0`` at ``α_t`` lowered log-linearly from ``A0·α`` to the run's
    ``α`` over the first half of the steps (the sampler's own annealing, annealed SVGD)."""
    fresh = copy.deepcopy(loss.actor)
    if args.retrain_noise_dim is not None:
        obs_dim = pool.get(fresh.tensor_keys.observation).shape[-1]
        fresh.noise_dim = args.retrain_noise_dim
        fresh.policy_network = noise_input_policy_network(
            obs_dim, fresh.action_dim, noise_dim=fresh.noise_dim, num_cells=num_cells)
    for module in fresh.modules():
        if module is not fresh and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    fraction = loss.actor.num_fixed / loss.actor.num_particles
    fresh.num_particles, fresh.num_fixed = args.retrain_particles, int(round(args.retrain_particles * fraction))
    if args.retrain_bandwidth is not None:
        fresh.bandwidth = args.retrain_bandwidth
    if args.retrain_bandwidth_scale is not None:
        fresh.bandwidth_scale = args.retrain_bandwidth_scale
    fresh.bind(loss.qfunction(), loss.temperature)  # its loss's target: the run's final Q
    # The sampler's own annealing (SVGDSampler's anneal_from / anneal_steps), the run's schedule not carried.
    fresh.anneal = None if args.retrain_anneal == 1.0 else AnnealedTemperature(
        alpha_init=args.retrain_anneal, alpha_final=1.0, num_steps=max(1, args.retrain // 2))
    optimizer = torch.optim.Adam(fresh.parameters(), lr=lr)
    for _ in range(args.retrain):
        batch = pool[torch.randint(len(pool), (args.retrain_batch,), generator=gen)]
        optimizer.zero_grad()
        fresh.loss(batch)["loss_actor"].backward()
        optimizer.step()
        if fresh.anneal is not None:
            fresh.anneal.step()
    return fresh


def mala(loss, steps: int, step_size: float, init=None) -> LangevinSampler:
    sampler = LangevinSampler(action_spec=loss.actor.action_spec, num_steps=steps, step_size=step_size,
                              metropolis=True, init="uniform" if init is None else init)
    return sampler.bind(loss.qfunction(), loss.temperature)


def tuned_step_size(loss, state: TensorDict, target: float, gen: torch.Generator) -> tuple[float, float]:
    """The largest step on the grid whose acceptance over 30 steps from uniform starts is ≥ ``target``."""
    for step in STEP_SIZES:
        _, info = mala(loss, 30, step).sample_with_info(state, 256, generator=gen)
        rate = float(info["acceptance_rate"].mean())
        if rate >= target:
            return step, rate
    return STEP_SIZES[-1], rate


def sir(loss, state: TensorDict, num_proposals: int, num_samples: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """Resample ``num_samples`` of ``num_proposals`` uniform actions with weights ``exp(Q/α)``; the ESS."""
    proposals = sample_uniform_box(*box_bounds(loss.actor.action_spec), num_proposals, (1,), generator=gen)
    with torch.no_grad():
        q = loss.qfunction().state_action_values(state, proposals).amin(0)[:, 0]  # min over members
    log_w = q / float(loss.temperature.value())
    w = torch.softmax(log_w.double(), 0)
    ess = float(1.0 / w.square().sum())
    picked = torch.multinomial(w, num_samples, replacement=True, generator=gen)
    return proposals[picked, 0].double(), ess


def spread(x: torch.Tensor) -> float:
    return float(torch.cov(x.T).trace().sqrt()) if x.shape[1] > 1 else float(x.std())


def measure(loss, state: TensorDict, args: argparse.Namespace, gen: torch.Generator, fresh=None) -> dict:
    step, tuned_rate = tuned_step_size(loss, state, args.target_acceptance, gen)
    draws, info = {}, {"step_size": step, "tuned_acceptance": tuned_rate}
    start = time.perf_counter()
    with torch.no_grad():
        draws["actor"] = loss.actor.sample(state, args.samples, generator=gen)[0][:, 0].double()
        if fresh is not None:
            draws["retrained"] = fresh.sample(state, args.samples, generator=gen)[0][:, 0].double()
    actions, out = mala(loss, args.mala_steps, step, init=loss.actor).sample_with_info(state, args.samples, generator=gen)
    draws["actor+mala"], info["actor+mala_acceptance"] = actions[:, 0].double(), float(out["acceptance_rate"].mean())
    actions, out = mala(loss, args.reference_steps, step).sample_with_info(state, args.samples, generator=gen)
    draws["mala_long"], info["mala_long_acceptance"] = actions[:, 0].double(), float(out["acceptance_rate"].mean())
    draws["mala_long_b"] = mala(loss, args.reference_steps, step).sample(state, args.samples, generator=gen)[0][:, 0].double()
    draws["sir"], info["sir_ess"] = sir(loss, state, args.proposals, args.samples, gen)
    if args.svgd_refine:  # the non-amortized SVGD on the whole set, at MALA's tuned step
        start_uniform = sample_uniform_box(*box_bounds(loss.actor.action_spec), args.samples, (1,), generator=gen)
        for name, init in (("svgd_refine", start_uniform), ("svgd_from_ref", draws["mala_long_b"][:, None])):
            draws[name] = loss.actor.refine(state, init.to(start_uniform.dtype), num_steps=args.svgd_refine,
                                            step_size=step)[:, 0].double()
    info["seconds"] = time.perf_counter() - start
    uniform = sample_uniform_box(*box_bounds(loss.actor.action_spec), args.samples, (), generator=gen).double()
    usable = ["mala_long"] + (["sir"] if info["sir_ess"] >= args.min_ess else [])
    for ref in usable:
        reference = draws[ref]
        h = float(torch.cdist(reference, reference).square().median())
        if h == 0:  # most of the reference is one repeated point (resampling with a tiny ESS): no bandwidth
            continue
        base = info[f"mmd_uniform[{ref}]"] = mmd2(uniform, reference, h)
        for name, x in draws.items():
            if name != ref and (name != "sir" or "sir" in usable) and not (name == "mala_long_b" and ref == "sir"):
                info[f"mmd_rel[{name}|{ref}]"] = mmd2(x, reference, h) / base
                info[f"spread[{name}|{ref}]"] = spread(x) / spread(reference)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the folder of a finished run whose actor samples continuous actions")
    parser.add_argument("--states", type=int, default=16, help="states measured (default 16)")
    parser.add_argument("--stride", type=int, default=50, help="rollout steps between two states (default 50)")
    parser.add_argument("--samples", type=int, default=1000, help="actions drawn per state and sampler (default 1000)")
    parser.add_argument("--mala-steps", type=int, default=20, help="MALA steps refining the actor's actions (default 20)")
    parser.add_argument("--reference-steps", type=int, default=1000, help="steps of the long MALA reference (default 1000)")
    parser.add_argument("--proposals", type=int, default=2**17, help="uniform proposals of the SIR reference (default 2^17)")
    parser.add_argument("--min-ess", type=float, default=100.0,
                        help="SIR's effective sample size below which it is not used as a reference (default 100)")
    parser.add_argument("--target-acceptance", type=float, default=0.6, help="MALA acceptance the step tuning aims for (default 0.6)")
    parser.add_argument("--svgd-refine", type=int, default=0, metavar="STEPS",
                        help="also move the samples by STEPS steps of non-amortized SVGD at MALA's tuned step, from "
                             "uniform starts (svgd_refine) and from the second reference set (svgd_from_ref); default 0: not")
    retrain = parser.add_argument_group("a fresh actor trained against the run's final Q (retrained)")
    retrain.add_argument("--retrain", type=int, default=0, metavar="STEPS", help="training steps (default 0: none)")
    retrain.add_argument("--retrain-particles", type=int, default=32, help="particles per state (default 32)")
    retrain.add_argument("--retrain-bandwidth", choices=("reference", "paper"), default=None,
                         help="the SVGD median rule (default: the run's)")
    retrain.add_argument("--retrain-bandwidth-scale", type=float, default=None,
                         help="factor on the median rule's bandwidth (default: the run's)")
    retrain.add_argument("--retrain-noise-dim", type=int, default=None,
                         help="noise inputs of the sampling network (default: the run's, the action dimension)")
    retrain.add_argument("--retrain-anneal", type=float, default=1.0, metavar="A0",
                         help="train at α_t annealed log-linearly from A0·α to α over the first half (default 1: not)")
    retrain.add_argument("--retrain-batch", type=int, default=64, help="states per training step (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    for name in ("states", "stride", "samples", "mala_steps", "reference_steps", "proposals", "retrain_particles", "retrain_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.svgd_refine < 0:
        parser.error(f"--svgd-refine must be a number of steps >= 0, got {args.svgd_refine}")
    if args.retrain < 0:
        parser.error(f"--retrain must be a number of steps >= 0, got {args.retrain}")
    if args.retrain_bandwidth_scale is not None and args.retrain_bandwidth_scale <= 0:
        parser.error(f"--retrain-bandwidth-scale must be a positive factor, got {args.retrain_bandwidth_scale}")
    if args.retrain_noise_dim is not None and args.retrain_noise_dim < 1:
        parser.error(f"--retrain-noise-dim must be a positive integer, got {args.retrain_noise_dim}")
    if args.retrain_anneal < 1:
        parser.error(f"--retrain-anneal must be a starting factor >= 1 on the run's α, got {args.retrain_anneal}")
    if not 0 < args.target_acceptance < 1:
        parser.error(f"--target-acceptance must lie in (0, 1), got {args.target_acceptance}")
    torch.set_num_threads(args.threads)
    try:
        cfg, env, eval_env, loss = load_run(args.run)
    except CompositionError as err:
        sys.exit(f"error: {err}")
    if not hasattr(loss.actor, "action_spec") or loss.actor.action_spec.domain != "continuous":
        sys.exit(f"error: {args.run}: its actor ({type(loss.actor).__name__}) does not sample continuous actions.")
    if args.svgd_refine and not isinstance(loss.actor, SVGDSampler):
        sys.exit(f"error: --svgd-refine needs an SVGDSampler actor; {args.run}'s is a {type(loss.actor).__name__}.")
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    batch = states(loss, eval_env, args.states, args.stride, args.seed)
    fresh = None
    if args.retrain:
        pool = states(loss, eval_env, 2000, 1, args.seed + 1)  # another rollout than the measured states'
        lr = cfg.optim.lr_actor or cfg.optim.lr_qvalue
        start = time.perf_counter()
        fresh = retrained(loss, pool, args, lr, cfg.network.num_cells, gen)
        print(f"retrained a fresh actor with {args.retrain_particles} particles for {args.retrain} steps "
              f"(Adam {lr:g}, batches of {args.retrain_batch}) in {time.perf_counter() - start:.0f} s")
    print(f"{args.run}: {cfg.env.name}, {type(loss.actor).__name__}, alpha={float(loss.temperature.value()):g}, "
          f"{len(batch)} states; MMD² to the reference relative to uniform samples (0 = the reference)")
    rows = []
    for i in range(len(batch)):
        row = {"state": i, **measure(loss, batch[i : i + 1], args, gen, fresh)}
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "state"))
    medians = {k: statistics.median(r[k] for r in rows if k in r) for k in keys}
    print("| quantity | states | median | range |\n|---|---|---|---|")
    for k in keys:
        values = [r[k] for r in rows if k in r]
        print(f"| {k} | {len(values)} | {medians[k]:.4g} | {min(values):.4g} – {max(values):.4g} |")
    env.close()
    eval_env.close()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "env": cfg.env.name, "rows": rows, "medians": medians}, handle, indent=1)


if __name__ == "__main__":
    main()
