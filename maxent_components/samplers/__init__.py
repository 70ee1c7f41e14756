"""Policy samplers: draw ``a ∼ π(a|s) ∝ exp(Q(s, a)/α)``.

==========================  ==============================================================
``BoltzmannSampler``        exact categorical ``softmax(Q/α)`` over a finite action set
``CategoricalSampler``      amortized categorical policy (the discrete-SAC actor)
``GaussianSampler``         amortized tanh-Gaussian policy (the SAC actor), tractable log-prob
``ClippedGaussianSampler``  Gaussian clipped to the box, bounded log-prob (continuous PCL)
``SVGDSampler``             amortized Stein variational gradient descent (soft Q-learning)
``SteinSampler``            a Gaussian carried by SVGD steps, with its density (S2AC)
``DiffusionSampler``        a denoising diffusion policy with a bound on its entropy (DIME)
``LangevinSampler``         unadjusted or Metropolis-adjusted Langevin dynamics on ``Q/α``
``UniformSampler``          uniform over the action box (an importance-sampling proposal)
``MixtureSampler``          a weighted mixture of samplers with an exact mixture log-prob
==========================  ==============================================================
"""

from maxent_components.samplers.base import PolicySampler
from maxent_components.samplers.boltzmann import BoltzmannSampler
from maxent_components.samplers.categorical import CategoricalSampler
from maxent_components.samplers.diffusion import DiffusionSampler
from maxent_components.samplers.gaussian import ClippedGaussianSampler, GaussianSampler
from maxent_components.samplers.langevin import LangevinSampler
from maxent_components.samplers.mixture import MixtureSampler, defensive_proposal
from maxent_components.samplers.stein import SteinSampler
from maxent_components.samplers.svgd import SVGDSampler
from maxent_components.samplers.uniform import UniformSampler

__all__ = [
    "PolicySampler",
    "BoltzmannSampler",
    "CategoricalSampler",
    "GaussianSampler",
    "ClippedGaussianSampler",
    "SVGDSampler",
    "SteinSampler",
    "DiffusionSampler",
    "LangevinSampler",
    "UniformSampler",
    "MixtureSampler",
    "defensive_proposal",
]
