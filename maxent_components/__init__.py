"""maxent_components: maximum-entropy RL components for PyTorch, native to TorchRL and tensordict.

Swap the soft-value estimator (:mod:`maxent_components.soft_value`) and the policy sampler
(:mod:`maxent_components.samplers`) independently; the loss (:mod:`maxent_components.objectives`)
composes them into soft Q-learning, SAC, discrete SAC and new variants. The algebra lives in
:mod:`maxent_components.functional`, exact finite-MDP ground truth in :mod:`maxent_components.tabular`.

Importing the package registers the ``maxent_components/MultiGoal-v0`` Gymnasium environment.
"""

from maxent_components._compat import skip_absent_pandas_lookup

skip_absent_pandas_lookup()

from maxent_components import functional, tabular  # noqa: E402
from maxent_components.envs import register_envs as _register_envs  # noqa: E402
from maxent_components.modules import ComposedQ  # noqa: E402
from maxent_components.objectives import (  # noqa: E402
    AnnealedTemperature,
    AutoTemperature,
    FixedTemperature,
    PathConsistencyLoss,
    SoftQLoss,
)
from maxent_components.samplers import (  # noqa: E402
    BoltzmannSampler,
    CategoricalSampler,
    ClippedGaussianSampler,
    DiffusionSampler,
    GaussianSampler,
    LangevinSampler,
    MixtureSampler,
    SteinSampler,
    SVGDSampler,
    UniformSampler,
)
from maxent_components.soft_value import (  # noqa: E402
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
    "ComposedQ",
    "SoftQLoss",
    "PathConsistencyLoss",
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
    "ClippedGaussianSampler",
    "SVGDSampler",
    "LangevinSampler",
    "UniformSampler",
    "MixtureSampler",
    "SteinSampler",
    "DiffusionSampler",
]
