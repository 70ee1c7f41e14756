"""Soft-value estimators: ``V(s) = α log ∫_A exp(Q(s, a)/α) da`` and the policy soft value ``V^π``.

Each estimator reads the state (``"observation"``) and writes ``"soft_value"`` ``[*B, 1]``; plug one
into a soft Q loss, or write its estimate at ``("next", "state_value")`` ahead of TorchRL's TD
estimators. They own no parameters: the Q network, samplers and temperatures are referenced.

========================  ====================================================================
``ExactSoftValue``        ``α logsumexp_a Q(s, a)/α`` over a finite action set (α = 0: max)
``UniformSoftValue``      ``α [logsumexp_k Q(s, a_k)/α − log K + log vol(A)]``, ``a_k ∼ U(A)``
``ImportanceSoftValue``   ``α [logsumexp_k (Q(s, a_k)/α − log q(a_k|s)) − log K]``, ``a_k ∼ q``
``PolicySoftValue``       ``E_{a∼π}[Q(s, a) − α log π(a|s)]`` (exact sum or Monte Carlo)
========================  ====================================================================
"""

from maxent_components.soft_value.base import SoftValueEstimator
from maxent_components.soft_value.exact import ExactSoftValue
from maxent_components.soft_value.importance import ImportanceSoftValue
from maxent_components.soft_value.policy import PolicySoftValue
from maxent_components.soft_value.uniform import UniformSoftValue

__all__ = [
    "SoftValueEstimator",
    "ExactSoftValue",
    "UniformSoftValue",
    "ImportanceSoftValue",
    "PolicySoftValue",
]
