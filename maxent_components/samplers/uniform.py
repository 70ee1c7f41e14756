"""The uniform proposal over a bounded continuous action box.

``UniformSampler`` draws ``a ∼ U(A)`` on a box ``A = [low, high]``, with the exact density
``log q(a|s) = −Σ_i log(high_i − low_i)`` inside the box (and ``−inf`` outside). It ignores the Q
function, so it serves three purposes: the proposal of the uniform soft-value estimate of soft
Q-learning (Haarnoja et al., 2017, "Reinforcement Learning with Deep Energy-Based Policies",
section 3.2, eq. 10), a defensive component of an importance-sampling proposal, and a random
exploration policy for warm-up steps of a collector.

It exposes ``log_prob(tensordict, action)``, the density of given actions, which a mixture
(:mod:`maxent_components.samplers.mixture`) needs from each of its components.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.data import Bounded

from maxent_components.checks import check_positive_int, data_checks
from maxent_components.samplers.base import PolicySampler
from maxent_components.specs import box_bounds, box_log_volume, outside_box

__all__ = [
    "UniformSampler",
    "box_bounds",
    "box_log_volume",
    "sample_uniform_box",
]


def sample_uniform_box(
    low: Tensor,
    high: Tensor,
    num_samples: int,
    batch_shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``num_samples`` independent draws per state from ``U([low, high])``: ``[n, *B, *action_shape]``.

    Every estimator and sampler draws uniform actions through this function, so equal generator
    states give equal actions across them.
    """
    shape = (num_samples, *batch_shape, *low.shape)
    u = torch.rand(shape, generator=generator, dtype=low.dtype, device=low.device)
    return low + (high - low) * u


class UniformSampler(PolicySampler):
    """The uniform policy ``q(a|s) = 1/vol(A)`` on a bounded action box ``A = [low, high]``.

    ``log q(a|s) = −Σ_i log(high_i − low_i)`` for ``a ∈ A`` and ``−inf`` outside. Used as the
    proposal of the uniform soft-value estimate ``V(s) ≈ α log((vol(A)/K) Σ_k exp(Q(s, a_k)/α))``,
    ``a_k ∼ U(A)``, of soft Q-learning (Haarnoja et al., 2017, section 3.2), as a defensive component
    of a :class:`MixtureSampler`, and as a random exploration policy (``forward`` writes ``"action"``
    and ``"action_log_prob"`` like any sampler, so it can drive a TorchRL collector; having no mode,
    it samples under every exploration type).

    Args:
        qvalue_network: ignored (the uniform policy does not depend on ``Q``); accepted so that the
            sampler is constructed like every other one.

    Keyword Args:
        action_spec: a ``torchrl.data.Bounded`` spec with finite bounds; its shape is the shape of
            one action (pass the unbatched spec of a batched environment).

    Examples:
        >>> from torchrl.data import Bounded
        >>> from tensordict import TensorDict
        >>> sampler = UniformSampler(action_spec=Bounded(-1.0, 1.0, shape=(2,)))
        >>> td = TensorDict({"observation": torch.zeros(5, 3)}, batch_size=[5])
        >>> actions, log_prob = sampler.sample(td, 4, generator=torch.Generator().manual_seed(0))
        >>> actions.shape, log_prob.shape, round(log_prob[0, 0].item(), 4)  # -log(2 * 2)
        (torch.Size([4, 5, 2]), torch.Size([4, 5]), -1.3863)
    """

    def __init__(
        self,
        qvalue_network=None,
        *,
        action_spec: Bounded,
    ) -> None:
        super().__init__(None, action_spec=action_spec)
        low, high = box_bounds(action_spec)
        # Non-persistent: the box is a property of the spec, not state to checkpoint, but it must
        # follow the module across devices.
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)
        self.register_buffer("log_volume", box_log_volume(low, high), persistent=False)

    @property
    def action_shape(self) -> torch.Size:
        return self.low.shape

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``num_samples`` uniform actions per state ``[n, *B, *A]`` and their log-density ``[n, *B]``."""
        num_samples = check_positive_int("num_samples", num_samples)
        batch_shape = tensordict.batch_size
        actions = sample_uniform_box(
            self.low, self.high, num_samples, batch_shape, generator=generator
        )
        log_prob = (-self.log_volume).expand(num_samples, *batch_shape)
        return actions, log_prob

    def log_prob(self, tensordict: TensorDictBase, action: Tensor) -> Tensor:
        """Exact log-density of ``action`` ``[*S, *B, *A]`` under ``U(A)``: ``[*S, *B]``.

        ``−log vol(A)`` inside the closed box, ``−inf`` outside.
        """
        outside = outside_box(action, self.low, self.high)
        if data_checks() and bool(outside.any()):
            raise ValueError(f"{type(self).__name__}.log_prob: actions outside the box low={self.low.tolist()}, high={self.high.tolist()}.")
        log_q = (-self.log_volume).to(action.dtype)
        return torch.where(outside, torch.full_like(log_q, -math.inf), log_q)
