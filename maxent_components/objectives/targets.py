"""Polyak target updates in one fused in-place step.

TorchRL's :class:`~torchrl.objectives.SoftUpdate` moves each target parameter towards its source,
``θ̄ ← (1 − τ) θ̄ + τ θ`` (Lillicrap et al., 2016, "Continuous control with deep reinforcement
learning"), through ``TensorDict.data`` views rebuilt on every call. :class:`ForeachSoftUpdate` is
that updater with the same construction, checks, state and equation, whose :meth:`step` gathers the
parameter tensors straight from the loss's tensordicts and updates them all with one
``torch._foreach_lerp_``; ``benchmarks/RESULTS.md`` has the measured difference.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchrl.objectives import SoftUpdate

from maxent_components.modules.params import parameter_leaves

__all__ = ["ForeachSoftUpdate"]


def _leaves(value) -> list[Tensor]:
    return [value] if isinstance(value, Tensor) else parameter_leaves(value)[1]


class ForeachSoftUpdate(SoftUpdate):
    """TorchRL's ``SoftUpdate(loss, tau=...)`` with the update of every target tensor in one
    ``torch._foreach_lerp_(targets, sources, τ)``.

    Example:
        >>> from maxent_components import ExactSoftValue, SoftQLoss
        >>> from maxent_components.modules.qvalue import discrete_qvalue_network
        >>> loss = SoftQLoss(discrete_qvalue_network(3, 2, num_cells=[8]), ExactSoftValue(), alpha=0.1)
        >>> updater = ForeachSoftUpdate(loss, tau=0.005)
        >>> updater.step()
    """

    def step(self) -> None:
        if not self.initialized:
            raise RuntimeError(f"{type(self).__name__} must be initialized (init_()) before calling step().")
        for name in self._target_names:  # as TorchRL: read the loss's parameters afresh
            getattr(self.loss_module, name)
        targets: list[Tensor] = []
        sources: list[Tensor] = []
        for key, source in self._sources.items():
            target = self._targets.get(f"target_{key}")
            if target.requires_grad:
                raise RuntimeError("the target parameter is part of a graph.")
            targets += _leaves(target)
            sources += _leaves(source)
        if len(targets) != len(sources):
            raise RuntimeError(f"{len(targets)} target tensors for {len(sources)} sources: the loss's parameters changed shape.")
        with torch.no_grad():
            torch._foreach_lerp_(targets, sources, 1.0 - self.eps)
