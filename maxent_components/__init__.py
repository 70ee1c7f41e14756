"""maxent_components: maximum-entropy RL components for PyTorch, native to TorchRL and tensordict.

Swap the soft-value estimator (:mod:`maxent_components.soft_value`) and the policy sampler
(:mod:`maxent_components.samplers`) independently; the loss (:mod:`maxent_components.objectives`)
composes them into soft Q-learning, SAC, discrete SAC and new variants. The algebra lives in
:mod:`maxent_components.functional`, exact finite-MDP ground truth in :mod:`maxent_components.tabular`.

Importing the package registers the ``maxent_components/MultiGoal-v0`` Gymnasium environment. The
public names are imported on first use (``from maxent_components import SoftQLoss`` imports the
objectives then), so that a recipe's ``--help`` answers without loading PyTorch.
"""

from typing import TYPE_CHECKING

from maxent_components._compat import skip_absent_pandas_lookup
from maxent_components._lazy import lazy_names
from maxent_components.envs.multigoal import register_envs as _register_envs

skip_absent_pandas_lookup()

from maxent_components._version import __version__  # noqa: E402, F401 - the package's version

_register_envs()

#: public name → the module it comes from
_EXPORTS = {
    "ComposedQ": "maxent_components.modules",
    **dict.fromkeys(
        ("SoftQLoss", "PathConsistencyLoss", "FixedTemperature", "AutoTemperature", "AnnealedTemperature"),
        "maxent_components.objectives",
    ),
    **dict.fromkeys(("ExactSoftValue", "UniformSoftValue", "ImportanceSoftValue", "PolicySoftValue"),
                    "maxent_components.soft_value"),
    **dict.fromkeys(
        ("BoltzmannSampler", "CategoricalSampler", "GaussianSampler", "ClippedGaussianSampler", "SVGDSampler",
         "LangevinSampler", "UniformSampler", "MixtureSampler", "SteinSampler", "DiffusionSampler"),
        "maxent_components.samplers",
    ),
}
_SUBMODULES = ("functional", "tabular")

if TYPE_CHECKING:  # the names, for type checkers and the API reference; imported on first use
    from maxent_components import functional, tabular
    from maxent_components.modules import ComposedQ
    from maxent_components.objectives import (
        AnnealedTemperature,
        AutoTemperature,
        FixedTemperature,
        PathConsistencyLoss,
        SoftQLoss,
    )
    from maxent_components.samplers import (
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
    from maxent_components.soft_value import ExactSoftValue, ImportanceSoftValue, PolicySoftValue, UniformSoftValue

__all__ = [
    "functional",
    "tabular",
    "AnnealedTemperature",
    "AutoTemperature",
    "BoltzmannSampler",
    "CategoricalSampler",
    "ClippedGaussianSampler",
    "ComposedQ",
    "DiffusionSampler",
    "ExactSoftValue",
    "FixedTemperature",
    "GaussianSampler",
    "ImportanceSoftValue",
    "LangevinSampler",
    "MixtureSampler",
    "PathConsistencyLoss",
    "PolicySoftValue",
    "SVGDSampler",
    "SoftQLoss",
    "SteinSampler",
    "UniformSampler",
    "UniformSoftValue",
]

__getattr__, __dir__ = lazy_names(
    __name__, {**_EXPORTS, **{name: f"{__name__}.{name}" for name in _SUBMODULES}}, globals()
)
