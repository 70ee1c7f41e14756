"""Network factories in the key layout the estimators, samplers and losses expect, and
:class:`QFunction`, the one way Q is evaluated (under its own, one or an ensemble of parameter sets)."""

from maxent_components.modules.composed import ComposedQ
from maxent_components.modules.policies import (
    NoiseInputNetwork,
    noise_input_policy_network,
    tanh_normal_actor_network,
)
from maxent_components.modules.qfunction import QFunction
from maxent_components.modules.qvalue import (
    continuous_qvalue_network,
    discrete_qvalue_network,
)

__all__ = [
    "ComposedQ",
    "QFunction",
    "discrete_qvalue_network",
    "continuous_qvalue_network",
    "NoiseInputNetwork",
    "noise_input_policy_network",
    "tanh_normal_actor_network",
]
