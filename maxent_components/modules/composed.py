"""``ComposedQ``: a Q network that is the weighted sum of several, for composing learned skills.

Haarnoja et al. (2018), "Composable Deep Reinforcement Learning for Robotic Manipulation": soft
Q-functions ``Q_1 … Q_n`` learned for rewards ``r_1 … r_n`` at one temperature ``α`` compose into
``Q_w = Σ_i w_i Q_i``, whose Boltzmann policy ``π_w ∝ exp(Q_w / α)`` is a good policy for
``r_w = Σ_i w_i r_i`` without training on it; its loss is bounded by the constituents' disagreement
(exact terms on finite MDPs: :func:`maxent_components.tabular.compose_soft_q`). The bound holds for
weights on the simplex, the default being equal weights (the paper's mean). Other weights are
accepted — ``weights=[1, 1]`` is the sum, the same policy as the mean at temperature ``2α`` — but
the bound is stated for the simplex.

``ComposedQ`` keeps the library's Q layout (it reads the union of its members' ``in_keys`` and
writes their common out key), so every soft-value estimator, sampler and loss uses it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import Tensor, nn

__all__ = ["ComposedQ"]


class ComposedQ(TensorDictModuleBase):
    """``Q_w(s, a) = Σ_i w_i Q_i(s, a)`` of ``n ≥ 2`` Q networks in the library's layout.

    Args:
        *qvalue_networks: the Q networks (tensordict modules), all writing the same out key
            (``"action_value"`` for discrete actions, ``"state_action_value"`` for continuous ones).

    Keyword Args:
        weights: ``n`` finite weights, not all zero; ``1/n`` each by default. Kept as a buffer
            (saved with the module, never trained).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from maxent_components.modules import continuous_qvalue_network
        >>> reach_right = continuous_qvalue_network(2, 2, num_cells=[8])
        >>> reach_top = continuous_qvalue_network(2, 2, num_cells=[8])
        >>> q = ComposedQ(reach_right, reach_top)
        >>> td = TensorDict(observation=torch.zeros(4, 2), action=torch.zeros(4, 2), batch_size=[4])
        >>> q(td)["state_action_value"].shape
        torch.Size([4, 1])
    """

    def __init__(self, *qvalue_networks: nn.Module, weights: Sequence[float] | Tensor | None = None) -> None:
        super().__init__()
        if len(qvalue_networks) == 1 and isinstance(qvalue_networks[0], (list, tuple)):
            qvalue_networks = tuple(qvalue_networks[0])
        if len(qvalue_networks) < 2:
            raise ValueError(f"ComposedQ needs at least two Q networks, got {len(qvalue_networks)}.")
        for i, net in enumerate(qvalue_networks):
            if not isinstance(net, nn.Module) or not hasattr(net, "in_keys") or not hasattr(net, "out_keys"):
                raise TypeError(
                    f"qvalue_networks[{i}] must be a tensordict module with in_keys and out_keys, "
                    f"got {type(net).__name__}."
                )
        out_keys = [list(net.out_keys) for net in qvalue_networks]
        if any(keys != out_keys[0] for keys in out_keys) or len(out_keys[0]) != 1:
            raise ValueError(
                "qvalue_networks must all write one and the same out key (all discrete or all "
                f"continuous Q networks), got out_keys {out_keys}."
            )
        n = len(qvalue_networks)
        w = torch.full((n,), 1.0 / n) if weights is None else torch.as_tensor(weights, dtype=torch.get_default_dtype())
        if w.shape != (n,) or not bool(torch.isfinite(w).all()) or not bool((w != 0).any()):
            raise ValueError(f"weights must be {n} finite numbers, not all zero (one per Q network), got {w.tolist()}.")
        self.qvalue_networks = nn.ModuleList(qvalue_networks)
        self.register_buffer("weights", w)
        in_keys: list = []
        for net in qvalue_networks:
            in_keys += [key for key in net.in_keys if key not in in_keys]
        self.in_keys = in_keys
        self.out_keys = out_keys[0]

    def constituent_values(self, tensordict: TensorDictBase) -> Tensor:
        """Each member's Q, stacked on a new leading dimension ``[n, *B, ...]``."""
        key = self.out_keys[0]
        return torch.stack([net(tensordict.select(*net.in_keys)).get(key) for net in self.qvalue_networks])

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        values = self.constituent_values(tensordict)
        weights = self.weights.to(values.dtype).reshape(-1, *([1] * (values.dim() - 1)))
        tensordict.set(self.out_keys[0], (weights * values).sum(0))
        return tensordict
