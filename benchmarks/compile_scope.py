"""What to put inside the compiled region of an update: the whole update, or only forward and backward.

``UpdateStep(compile=MODE)`` compiles an update after one eager call. Its ``compile_optimizer``
option chooses the region: the whole update (forward, backward, optimiser step, target update) or
only the forward and the backward, with the optimiser step and the Polyak update run eagerly
between compiled calls. Adam's fused kernel is not traced by dynamo (it runs eagerly inside the
compiled function, behind a graph break), the foreach kernel is. This script times both regions
side by side, interleaved in one process, for each Adam kernel, through the library's own
``UpdateStep``; it also checks that every compiled update moves the parameters, since a compiled
update that does not update would look fast.

Cases (the shapes of ``update_step.py`` and ``sac_update.py``):
- ``soft_dqn``: CartPole shapes, 2×128 Q network, batch 128, ExactSoftValue target;
- ``sql``: MultiGoal shapes, 2×128 networks, batch 64, 16 uniform value samples, 32 SVGD particles;
- ``sac``: HalfCheetah shapes, 2×256 networks, batch 256, twin critics, learned α.

On a GPU (``--device cuda``) the networks and the batch are created on the device and each update is
timed to its completion (the modes then worth comparing include ``--compile reduce-overhead``).

Usage::

    python benchmarks/compile_scope.py --threads 1
    python benchmarks/compile_scope.py --device cuda --compile reduce-overhead
    python benchmarks/compile_scope.py --cases soft_dqn --rounds 5 --json scope.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch
from torch import nn

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchrl\..*")

from torchrl.data import Bounded, OneHot  # noqa: E402

from maxent_components.modules.policies import noise_input_policy_network, tanh_normal_actor_network  # noqa: E402
from maxent_components.modules.qvalue import continuous_qvalue_network, discrete_qvalue_network  # noqa: E402
from maxent_components.objectives import ForeachSoftUpdate, SoftQLoss  # noqa: E402
from maxent_components.samplers import GaussianSampler, SVGDSampler  # noqa: E402
from maxent_components.soft_value import ExactSoftValue, PolicySoftValue, UniformSoftValue  # noqa: E402
from maxent_components.temperature import AutoTemperature  # noqa: E402
from maxent_components.training.update import COMPILE_MODES, UpdateStep  # noqa: E402

# benchmarks/ is on sys.path when this file is run as a script
from plain_loops import ADAM_KERNELS  # noqa: E402
from update_step import _transitions  # noqa: E402


def soft_dqn():
    batch = _transitions(128, 4, nn.functional.one_hot(torch.randint(2, (128,)), 2))
    loss = SoftQLoss(discrete_qvalue_network(4, 2, num_cells=(128, 128)), ExactSoftValue(), alpha=0.01,
                     action_spec=OneHot(2))
    return loss, batch, 1e-3


def sql():
    spec = Bounded(-1.0, 1.0, shape=(2,))
    batch = _transitions(64, 2, torch.rand(64, 2) * 2 - 1)
    sampler = SVGDSampler(policy_network=noise_input_policy_network(2, 2, num_cells=(128, 128)), action_spec=spec)
    loss = SoftQLoss(continuous_qvalue_network(2, 2, num_cells=(128, 128)),
                     UniformSoftValue(action_spec=spec, num_samples=16), actor=sampler, alpha=1.0)
    return loss, batch, 3e-4


def sac():
    spec = Bounded(-1.0, 1.0, shape=(6,))
    batch = _transitions(256, 17, torch.rand(256, 6) * 2 - 1)
    actor = GaussianSampler(policy_network=tanh_normal_actor_network(17, 6, num_cells=(256, 256)), action_spec=spec)
    loss = SoftQLoss(continuous_qvalue_network(17, 6, num_cells=(256, 256)), PolicySoftValue(), actor=actor,
                     alpha=AutoTemperature(-6.0), num_qvalue_nets=2)
    return loss, batch, 3e-4


CASES = {"soft_dqn": soft_dqn, "sql": sql, "sac": sac}
REGIONS = {"whole": True, "forward_backward": False}


def update(case: str, adam: str, compile_mode: str, compile_optimizer: bool):
    """The case's update through ``UpdateStep``, warmed up (eager call and compilation); and whether
    one further compiled call moved every parameter."""
    torch.manual_seed(0)
    loss, batch, lr = CASES[case]()
    loss.make_value_estimator(gamma=0.99)
    optimizer = torch.optim.Adam(loss.parameters(), lr=lr, **ADAM_KERNELS[adam])
    step = UpdateStep(loss, optimizer, ForeachSoftUpdate(loss, tau=0.005), compile=compile_mode,
                      compile_optimizer=compile_optimizer)
    for _ in range(3):
        step(batch)
    before = [p.detach().clone() for p in loss.parameters()]
    step(batch)
    moved = all(not torch.equal(a, b) for a, b in zip(before, loss.parameters()))
    return (lambda: step(batch)), moved


def _seconds(step, count: int, sync) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def run(case: str, adam: str, threads: int, args: argparse.Namespace) -> dict:
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    steps, moved = {}, {}
    with device:
        for region, compile_optimizer in REGIONS.items():
            steps[region], moved[region] = update(case, adam, args.compile, compile_optimizer)
    times = {region: [] for region in steps}
    for _ in range(args.rounds):  # interleaved, so that drift in machine load hits both alike
        for region, step in steps.items():
            times[region] += _seconds(step, args.updates[case], sync)
    us = {region: statistics.median(t) * 1e6 for region, t in times.items()}
    return {"case": case, "adam": adam, "threads": threads, "device": args.device, "compile": args.compile,
            **{f"{region}_us": round(value, 1) for region, value in us.items()},
            "ratio": round(us["forward_backward"] / us["whole"], 3), "all_parameters_moved": moved}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES), help="default: all")
    parser.add_argument("--adam", nargs="+", choices=("fused", "foreach"), default=["fused", "foreach"],
                        help="Adam kernels (default: both)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1], help="torch intra-op threads (default: 1)")
    parser.add_argument("--compile", default="default", choices=COMPILE_MODES[1:], help="torch.compile mode (default: default)")
    parser.add_argument("--device", default="cpu", help="torch device of the networks and the batch (default: cpu)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: 5)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="factor on the updates per round (200 soft DQN, 30 SQL, 20 SAC; default 1)")
    parser.add_argument("--json", default=None, help="also append the result lines to this file")
    args = parser.parse_args()
    if args.rounds < 1 or args.scale <= 0 or min(args.threads) < 1:
        parser.error("--rounds and --threads must be positive integers and --scale a positive factor")
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        parser.error(f"--device: {err}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch build or machine has no CUDA device")
    args.updates = {case: max(1, round(n * args.scale)) for case, n in {"soft_dqn": 200, "sql": 30, "sac": 20}.items()}
    rows = []
    for case in args.cases:
        for adam in args.adam:
            for threads in args.threads:
                rows.append(run(case, adam, threads, args))
                print(json.dumps(rows[-1]), flush=True)
    print("\n| case | Adam | threads | whole update (µs) | forward + backward only (µs) | ratio | parameters moved |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['adam']} | {r['threads']} | {r['whole_us']:.0f} | {r['forward_backward_us']:.0f} | "
              f"{r['ratio']:.3f} | {all(r['all_parameters_moved'].values())} |")
    if args.json:
        with open(args.json, "a") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
