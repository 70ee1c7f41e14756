"""The compiled kernel that slows the compiled SAC update down, on its own: a ReLU that also writes a boolean mask.

In the compiled SAC update (``sac_update.py --compile default``) one generated C++ kernel takes most
of the time outside the matrix multiplies: it applies a ReLU to a 256×256 activation in place and
writes the mask ``relu(x) <= 0`` that the backward reads (8 calls per update). This script times,
eagerly and under ``torch.compile`` (after warm-up calls), on one ``[1, 256, 256]`` tensor:

- ``relu``: ``torch.relu(x)``;
- ``relu + mask``: ``(y, y <= 0)`` with ``y = torch.relu(x)``, the same work as that kernel.

Reported: median microseconds per call over ``--rounds`` rounds of ``--calls`` calls.

Usage::

    python benchmarks/relu_mask.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from timing import per_call_us, timing_options  # benchmarks/ is on sys.path when run as a script


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


def relu_and_mask(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.relu(x)
    return y, y <= 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args = timing_options(parser, calls=1000)
    x = torch.randn(1, 256, 256, generator=torch.Generator().manual_seed(0))
    contenders = {}
    for name, fn in (("relu", relu), ("relu + mask", relu_and_mask)):
        compiled = torch.compile(fn)
        for _ in range(5):  # compile, then warm up
            compiled(x)
        contenders[(name, "eager")] = fn
        contenders[(name, "compiled")] = compiled
    times: dict[tuple[str, str], list[float]] = {key: [] for key in contenders}
    for _ in range(args.rounds):
        for key, fn in contenders.items():
            times[key].append(per_call_us(fn, x, calls=args.calls))
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, {args.threads} "
          f"thread(s); µs per call on [1, 256, 256], median of {args.rounds} rounds")
    print("| function | eager | compiled | compiled / eager |")
    print("|---|---|---|---|")
    for name in ("relu", "relu + mask"):
        eager, compiled = median[(name, "eager")], median[(name, "compiled")]
        print(f"| {name} | {eager:.1f} | {compiled:.1f} | {compiled / eager:.1f} |")
    print("RESULT " + json.dumps({"threads": args.threads, "median_us": {f"{k[0]}, {k[1]}": v for k, v in median.items()}}))


if __name__ == "__main__":
    main()
