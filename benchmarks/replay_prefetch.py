"""Replay prefetching: TorchRL's ``ReplayBuffer(prefetch=k)`` against drawing each minibatch when it is needed.

With ``prefetch=k`` the buffer keeps ``k`` samples under way in a background thread, so that the next
minibatch can be gathered while the current update runs. Whether that pays depends on whether the
gather and the update can overlap: both hold Python's global interpreter lock for much of their
time, and these machines have two cores. This script times, side by side, ``buffer.sample()``
followed by a soft DQN-sized update (a 4→128→128→2 MLP's forward, backward and fused Adam step) on
the same 20,000 stored CartPole-v1 transitions (``replay_draw.filled_buffer``), for each prefetch
depth, in interleaved rounds. Reported: microseconds per sample-and-update (median over rounds), the
update alone for reference, and one JSON line prefixed ``RESULT``.

The loop does not prefetch. Beside the time measured here, a prefetched minibatch is drawn before
the latest collector batch is written (from a buffer one batch older), and in another thread, so its
indices no longer come from the loop's generator in a fixed order, which is what lets a resumed run
repeat an uninterrupted one.

Usage::

    python benchmarks/replay_prefetch.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

from torchrl.data import LazyTensorStorage, ReplayBuffer  # noqa: E402

from replay_draw import filled_buffer  # noqa: E402 (benchmarks/ is on sys.path when run as a script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--depths", type=int, nargs="+", default=[0, 2, 4], help="prefetch depths; 0: none (default 0 2 4)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--updates", type=int, default=800, help="sample-and-updates per round (default 800)")
    options = parser.parse_args()
    if options.threads < 1 or options.rounds < 1 or options.updates < 1 or min(options.depths) < 0:
        parser.error("need --threads, --rounds and --updates >= 1 and --depths >= 0")
    torch.set_num_threads(options.threads)
    stored, _ = filled_buffer("transitions", 20_000)
    rows = stored.storage[: len(stored)]
    buffers = {}
    for depth in options.depths:
        buffers[depth] = ReplayBuffer(storage=LazyTensorStorage(len(rows)), batch_size=128, prefetch=depth or None)
        buffers[depth].extend(rows)
    net = torch.nn.Sequential(torch.nn.Linear(4, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)

    def update(batch) -> None:
        loss = net(batch["observation"]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def per_update_us(draw) -> float:
        start = time.perf_counter()
        for _ in range(options.updates):
            update(draw())
        return (time.perf_counter() - start) * 1e6 / options.updates

    fixed = rows[:128]
    times = {depth: [] for depth in options.depths}
    alone = []
    for _ in range(options.rounds):
        for depth, buffer in buffers.items():
            times[depth].append(per_update_us(buffer.sample))
        alone.append(per_update_us(lambda: fixed))
    median = {depth: statistics.median(values) for depth, values in times.items()}
    print(f"torch {torch.__version__}, {options.threads} thread(s), median of {options.rounds} rounds of {options.updates}")
    print("| prefetch | µs per sample + update |\n|---|---|")
    for depth, value in median.items():
        print(f"| {depth or 'none'} | {value:.1f} |")
    print(f"| (the update alone) | {statistics.median(alone):.1f} |")
    print("RESULT " + json.dumps({"threads": options.threads, "median_us": median, "update_alone_us": statistics.median(alone)}))


if __name__ == "__main__":
    main()
