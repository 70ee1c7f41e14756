"""What the per-call micro-benchmarks share: their options (threads, rounds, calls) and the timer.

Scripts import it as a sibling module (``benchmarks/`` is on ``sys.path`` when one is run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch


def timing_options(parser: argparse.ArgumentParser, *, calls: int, rounds: int = 5) -> argparse.Namespace:
    """Add ``--threads``, ``--rounds`` and ``--calls`` to ``parser``, parse the command line, check
    them (a usage error below 1) and set torch's intra-op threads."""
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    parser.add_argument("--calls", type=int, default=calls, help=f"calls per round (default {calls})")
    options = parser.parse_args()
    if min(options.threads, options.rounds, options.calls) < 1:
        parser.error("--threads, --rounds and --calls must be >= 1")
    torch.set_num_threads(options.threads)
    return options


def per_call_us(call: Callable[..., Any], *args: Any, calls: int) -> float:
    """Microseconds per ``call(*args)``, over ``calls`` calls in a row."""
    start = time.perf_counter()
    for _ in range(calls):
        call(*args)
    return (time.perf_counter() - start) * 1e6 / calls
