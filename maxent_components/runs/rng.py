"""Seeding, thread counts, and the random-number-generator states a checkpoint saves and restores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from maxent_components.checks import check_nonnegative_int, check_positive_int

__all__ = ["rng_state", "seed_everything", "set_rng_state", "set_threads"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch (environments are seeded where they are built)."""
    seed = check_nonnegative_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` with a check (small networks run fastest on one thread)."""
    torch.set_num_threads(check_positive_int("threads", threads))


def rng_state() -> dict[str, Any]:
    """The states of torch's, numpy's and Python's global generators, and of each CUDA device's once
    CUDA is in use (a run on the CPU leaves CUDA uninitialised)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states returned by :func:`rng_state` (the CUDA devices' on those this machine has)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") and torch.cuda.is_available():
        for index, device_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device=index)
