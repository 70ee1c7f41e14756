"""maxent_components: maximum-entropy RL components for PyTorch, native to TorchRL and tensordict.

Swap the soft-value estimator (:mod:`maxent_components.soft_value`) and the policy sampler
(:mod:`maxent_components.samplers`) independently; the loss (:mod:`maxent_components.objectives`)
composes them into soft Q-learning, SAC, discrete SAC and new variants. The algebra lives in
:mod:`maxent_components.functional`, exact finite-MDP ground truth in :mod:`maxent_components.tabular`.

Importing the package registers the ``maxent_components/MultiGoal-v0`` Gymnasium environment.
"""

from maxent_components import functional, tabular
from maxent_components.envs import register_envs as _register_envs
from maxent_components.objectives import (
    AnnealedTemperature,
    AutoTemperature,
    FixedTemperature,
    SoftQLoss,
)
from maxent_components.samplers import (
    BoltzmannSampler,
    CategoricalSampler,
    GaussianSampler,
    LangevinSampler,
    MixtureSampler,
    SVGDSampler,
    UniformSampler,
)
from maxent_components.soft_value import (
    ExactSoftValue,
    ImportanceSoftValue,
    PolicySoftValue,
    UniformSoftValue,
)

__version__ = "0.1.0"

_register_envs()

__all__ = [
    "functional",
    "tabular",
    "SoftQLoss",
    "FixedTemperature",
    "AutoTemperature",
    "AnnealedTemperature",
    "ExactSoftValue",
    "UniformSoftValue",
    "ImportanceSoftValue",
    "PolicySoftValue",
    "BoltzmannSampler",
    "CategoricalSampler",
    "GaussianSampler",
    "SVGDSampler",
    "LangevinSampler",
    "UniformSampler",
    "MixtureSampler",
]
