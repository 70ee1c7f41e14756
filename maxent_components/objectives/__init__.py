"""Losses and temperatures. Algorithms are compositions of one loss with an estimator and an actor:

- soft Q-learning (SQL): ``SoftQLoss(qnet, UniformSoftValue(action_spec=...), actor=SVGDSampler(...), alpha=1.0)``;
- SAC: ``SoftQLoss(qnet, PolicySoftValue(), actor=GaussianSampler(...), alpha=AutoTemperature(-dim_A), num_qvalue_nets=2)``;
- soft DQN: ``SoftQLoss(qnet, ExactSoftValue(), actor=BoltzmannSampler(action_spec=...), alpha=0.01)``;
- discrete SAC: ``SoftQLoss(qnet, PolicySoftValue(), actor=CategoricalSampler(...), alpha=AutoTemperature(...))``.

The loss owns the Q ensemble, its targets, the actor and the temperature; the parts are built
without a Q network and without ``α``.
"""

from maxent_components.objectives.pcl import PathConsistencyLoss
from maxent_components.objectives.soft_q import SoftQLoss
from maxent_components.objectives.targets import ForeachSoftUpdate
from maxent_components.temperature import (
    AnnealedTemperature,
    AutoTemperature,
    FixedTemperature,
    Temperature,
    as_temperature,
)

__all__ = [
    "ForeachSoftUpdate",
    "PathConsistencyLoss",
    "SoftQLoss",
    "Temperature",
    "FixedTemperature",
    "AutoTemperature",
    "AnnealedTemperature",
    "as_temperature",
]
