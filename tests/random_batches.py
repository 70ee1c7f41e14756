"""Random transition batches in TorchRL's layout, for tests that need some batch, not a particular one."""

from __future__ import annotations

import torch
from tensordict import TensorDict


def random_transitions(action: torch.Tensor, obs_dim: int, generator: torch.Generator, *, end_prob: float = 0.0) -> TensorDict:
    """A batch of ``len(action)`` transitions with Gaussian observations and rewards drawn from
    ``generator``; each step ends (``terminated`` and, independently, ``done``) with ``end_prob``."""
    n = action.shape[0]

    def ends() -> torch.Tensor:
        if end_prob == 0.0:
            return torch.zeros(n, 1, dtype=torch.bool)
        return torch.rand(n, 1, generator=generator) < end_prob

    return TensorDict(
        {
            "observation": torch.randn(n, obs_dim, generator=generator),
            "action": action,
            "next": {
                "observation": torch.randn(n, obs_dim, generator=generator),
                "reward": torch.randn(n, 1, generator=generator),
                "done": ends(),
                "terminated": ends(),
            },
        },
        batch_size=[n],
    )
