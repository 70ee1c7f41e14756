"""Q-value networks in the layout every component of the library expects.

Discrete actions: a tensordict module reading ``"observation"`` and writing ``"action_value"``
(``[*B, |A|]``), the layout of TorchRL's ``QValueModule``. Continuous actions: a module reading
``"observation"`` and ``"action"`` and writing ``"state_action_value"`` (``[*B, 1]``), the layout of
TorchRL's ``ValueOperator``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules import MLP, ValueOperator

__all__ = ["discrete_qvalue_network", "continuous_qvalue_network"]


def discrete_qvalue_network(
    observation_dim: int,
    num_actions: int,
    *,
    num_cells: Sequence[int] = (256, 256),
    activation_class: type[nn.Module] = nn.ReLU,
    observation_key: str = "observation",
    action_value_key: str = "action_value",
) -> TensorDictModule:
    """An MLP ``s ↦ Q(s, ·) ∈ R^{|A|}`` reading ``"observation"`` and writing ``"action_value"``."""
    mlp = MLP(
        in_features=observation_dim,
        out_features=num_actions,
        num_cells=list(num_cells),
        activation_class=activation_class,
    )
    return TensorDictModule(mlp, in_keys=[observation_key], out_keys=[action_value_key])


def continuous_qvalue_network(
    observation_dim: int,
    action_dim: int,
    *,
    num_cells: Sequence[int] = (256, 256),
    activation_class: type[nn.Module] = nn.ReLU,
    observation_key: str = "observation",
    action_key: str = "action",
) -> ValueOperator:
    """An MLP ``(s, a) ↦ Q(s, a)`` on the concatenation ``[s, a]``, writing ``"state_action_value"``."""
    mlp = MLP(
        in_features=observation_dim + action_dim,
        out_features=1,
        num_cells=list(num_cells),
        activation_class=activation_class,
    )
    return ValueOperator(mlp, in_keys=[observation_key, action_key])
