"""Drawing the minibatches of a collector batch's updates: one replay sample each, or all together.

After each collector batch the loop owes several updates (soft DQN on CartPole: 8 steps, then 8
updates; PCL: 8 steps, then 2). Each update could call ``buffer.sample()`` (an index draw, a gather of
every stored entry and, for trajectory slices, TorchRL's ``SliceSampler`` searching the storage for
episodes), or the loop can draw all their rows at once and split them
(:func:`maxent_components.training.builders.minibatches`, what ``OffPolicyLoop`` does). Both give
minibatches of the same distribution; this script times them side by side on the recipes' own buffer
(``uniform_replay_buffer``) filled with ``--stored`` CartPole-v1 transitions that the recipes' collector
(``off_policy_collector``) gathered with random actions. Reported: microseconds per minibatch, the median over ``--rounds``
interleaved rounds of ``--repeats`` draws of ``--count`` minibatches.

Usage::

    python benchmarks/replay_draw.py --threads 1                 # soft DQN's 8 updates per batch
    python benchmarks/replay_draw.py --threads 1 --count 2       # PCL's 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

from torchrl.envs.utils import RandomPolicy  # noqa: E402

from maxent_components.training.builders import (  # noqa: E402
    make_env,
    minibatches,
    off_policy_collector,
    uniform_replay_buffer,
)

#: the recipes' minibatches: soft DQN's 128 transitions, PCL's 32 slices of 10 steps
KINDS = {"transitions": (128, None), "slices": (32, 10)}


def filled_buffer(kind: str, stored: int):
    batch, slice_len = KINDS[kind]
    buffer = uniform_replay_buffer(stored, batch_size=batch * (slice_len or 1), slice_len=slice_len)
    env = make_env({"name": "CartPole-v1"}, seed=0)
    collector = off_policy_collector(env, RandomPolicy(env.action_spec), frames_per_batch=1000, total_frames=stored,
                                     init_random_frames=0)  # the recipes' collector, acting uniformly at random
    for data in collector:
        buffer.extend(data.reshape(-1))
    collector.shutdown()
    return buffer, slice_len


def per_minibatch_us(draw, count: int, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        draw(count)
    return (time.perf_counter() - start) * 1e6 / (repeats * count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--stored", type=int, default=5000, help="transitions in the buffer (default 5000)")
    parser.add_argument("--count", type=int, default=8, help="minibatches owed per collector batch (default 8)")
    parser.add_argument("--repeats", type=int, default=100, help="draws per round (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    if min(args.threads, args.count, args.repeats, args.rounds) < 1 or args.stored < 1000:
        parser.error("--threads, --count, --repeats and --rounds must be >= 1, --stored >= 1000")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}; {args.stored} stored CartPole transitions; {args.count} minibatches per draw; "
          f"µs per minibatch, median of {args.rounds} rounds")
    print("| minibatch | one sample each | drawn together | ratio |")
    print("|---|---|---|---|")
    result = {"stored": args.stored, "count": args.count, "threads": args.threads}
    for kind in KINDS:
        buffer, slice_len = filled_buffer(kind, args.stored)
        def separate(n, buffer=buffer, slice_len=slice_len):  # what the loop did before: one sample per update
            return [buffer.sample() if slice_len is None else buffer.sample().reshape(-1, slice_len) for _ in range(n)]

        def together(n, buffer=buffer, slice_len=slice_len):
            return list(minibatches(buffer, n, slice_len=slice_len))

        draws = {"separate": separate, "together": together}
        times = {name: [] for name in draws}
        for _ in range(args.rounds):
            for name, draw in draws.items():
                draw(args.count)  # warm-up
                times[name].append(per_minibatch_us(draw, args.count, args.repeats))
        median = {name: statistics.median(values) for name, values in times.items()}
        result[kind] = median
        print(f"| {kind} | {median['separate']:.0f} | {median['together']:.0f} | "
              f"{median['together'] / median['separate']:.2f} |", flush=True)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
