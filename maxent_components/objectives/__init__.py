"""Losses and temperatures. Algorithms are compositions of these with estimators and samplers:

- soft Q-learning (SQL): ``SoftQLoss(qnet, UniformSoftValue(qnet, ...))`` + ``SVGDSampler``;
- SAC: ``SoftQLoss(qnet, PolicySoftValue(qnet, GaussianSampler(...)))`` + ``AutoTemperature``;
- soft DQN: ``SoftQLoss(qnet, ExactSoftValue(qnet))`` + ``BoltzmannSampler``;
- discrete SAC: ``SoftQLoss(qnet, PolicySoftValue(qnet, CategoricalSampler(...)))``.
"""

from maxent_components.objectives.soft_q import SoftQLoss
from maxent_components.temperature import (
    AnnealedTemperature,
    AutoTemperature,
    FixedTemperature,
    Temperature,
    as_temperature,
)

__all__ = [
    "SoftQLoss",
    "Temperature",
    "FixedTemperature",
    "AutoTemperature",
    "AnnealedTemperature",
    "as_temperature",
]
