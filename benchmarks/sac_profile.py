"""Where a CPU SAC update spends its kernel time: the library's update beside the hand-written one.

Builds the library and plain updates of ``sac_update.py`` (HalfCheetah-v5 shapes), warms both up,
then profiles ``--rounds`` rounds of ``--updates`` updates each with ``torch.profiler`` and prints,
per contender and round, the self CPU time per update of the heaviest operators, split by input
shapes. Compare the rounds: the first profiled round can carry warm-up costs (memory first touched,
allocator growth) that later rounds do not.

Usage::

    python benchmarks/sac_profile.py --threads 1 --rounds 2 --updates 50
"""

from __future__ import annotations

import argparse
import collections

import torch
from torch.profiler import ProfilerActivity, profile

# benchmarks/ is on sys.path when this file is run as a script
import sac_update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=2, help="profiled rounds per contender (default 2)")
    parser.add_argument("--updates", type=int, default=50, help="updates per profiled round (default 50)")
    parser.add_argument("--warmup", type=int, default=20, help="unprofiled updates first (default 20)")
    parser.add_argument("--top", type=int, default=10, help="operators listed per round (default 10)")
    args = parser.parse_args()
    if min(args.threads, args.rounds, args.updates, args.top) < 1 or args.warmup < 0:
        parser.error("--threads, --rounds, --updates and --top must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    options = argparse.Namespace(device="cpu", compile="none", cudagraphs=False, adam="default", autocast="none")
    data = sac_update._tensordict(sac_update._transitions(sac_update.BUFFER))
    steps = {"library": sac_update.library_update(data, options), "plain": sac_update.plain_update(data, options)}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    for index in range(args.rounds):
        for name, step in steps.items():
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                for _ in range(args.updates):
                    step()
            totals: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0])
            for event in prof.events():
                if event.name.startswith("aten::"):
                    entry = totals[(event.name, str(event.input_shapes[:2]))]
                    entry[0] += 1
                    entry[1] += event.self_cpu_time_total
            print(f"== {name}, round {index + 1}: self CPU µs per update (calls per update)")
            for (op, shapes), (calls, micros) in sorted(totals.items(), key=lambda kv: -kv[1][1])[: args.top]:
                print(f"  {op:28s} {shapes[:60]:60s} {micros / args.updates:8.0f} ({calls / args.updates:.0f})")


if __name__ == "__main__":
    main()
