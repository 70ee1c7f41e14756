"""Importance-sampled soft value with any proposal sampler that has a tractable density."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torch import Tensor

from maxent_components.checks import check_positive_int
from maxent_components.functional import (
    effective_sample_size,
    importance_log_weights,
    importance_sampled_soft_value,
)
from maxent_components.modules.qfunction import QFunction
from maxent_components.soft_value.base import SoftValueEstimator
from maxent_components.temperature import Temperature

__all__ = ["ImportanceSoftValue"]


class ImportanceSoftValue(SoftValueEstimator):
    """Importance-sampled soft value with a proposal ``q(a|s)``, reporting the effective sample size.

    .. math::

        \\hat V(s) = α \\Big[\\log \\sum_{k=1}^K \\exp\\big(Q(s, a_k)/α − \\log q(a_k|s)\\big) − \\log K\\Big],
        \\qquad a_k \\sim q(\\cdot|s),

    the log of the unbiased importance-sampling estimate of ``∫ exp(Q(s, a)/α) da`` (Haarnoja et
    al., 2017, "Reinforcement Learning with Deep Energy-Based Policies", eq. 10, which allows "an
    arbitrary distribution over the action space"; the uniform case is :class:`UniformSoftValue`).
    Consistent as ``K → ∞`` when ``q`` covers the support of ``exp(Q/α)``, and biased low for finite
    ``K`` (Jensen). The estimate is exact for every ``K`` when ``q ∝ exp(Q/α)``. Good proposals are
    the policy itself (a Gaussian policy), or a mixture of the policy with a uniform component
    (:class:`~maxent_components.samplers.mixture.MixtureSampler`) to keep the weights bounded.

    Also writes Kish's effective sample size ``ESS = (Σ_k w_k)² / Σ_k w_k² ∈ [1, K]`` of the weights
    ``w_k = exp(Q(s, a_k)/α)/q(a_k|s)`` at ``"ess"`` ``[*B, 1]`` (detached): an ESS near 1 flags a
    proposal that misses the mass of ``exp(Q/α)``.

    The proposal's samples and log-densities are detached: the estimate is a regression target and
    must not train the proposal. Gradients still flow to the Q network's parameters.

    Args:
        qvalue_network: a tensordict module reading the observation and ``"action"`` and writing
            ``"state_action_value"`` ``[*, 1]``; referenced, not owned. Omit it inside a ``SoftQLoss``.
        proposal: a sampler whose ``sample(td, K, generator=...)`` returns ``(actions [K, *B, *A],
            log_prob [K, *B])`` (e.g. ``GaussianSampler``, ``UniformSampler``, ``MixtureSampler``);
            referenced, not owned. Samplers without tractable log-probabilities raise an error.
            Omitted inside a ``SoftQLoss``, the loss's actor is the proposal. An amortized proposal
            that is not the loss's actor is trained by the loss (``loss_proposal``) towards
            ``exp(Q/α)``, the distribution it should approximate.

    Keyword Args:
        alpha: the temperature ``α > 0``, a float or a Temperature (referenced); omit it inside a
            ``SoftQLoss``.
        num_samples: ``K``, proposal draws per state.
        generator: default ``torch.Generator`` passed to the proposal.

    Reads ``"observation"``; writes ``"soft_value"`` and ``"ess"`` ``[*B, 1]``. Sampling runs under
    ``ExplorationType.RANDOM``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> from maxent_components.modules.qvalue import continuous_qvalue_network
        >>> from maxent_components.samplers.uniform import UniformSampler
        >>> spec = Bounded(-1.0, 1.0, shape=(2,))
        >>> qnet = continuous_qvalue_network(3, 2, num_cells=[16])
        >>> estimator = ImportanceSoftValue(qnet, UniformSampler(action_spec=spec), alpha=1.0, num_samples=32)
        >>> td = estimator(TensorDict({"observation": torch.randn(8, 3)}, batch_size=[8]))
        >>> td["soft_value"].shape, bool(((td["ess"] >= 1) & (td["ess"] <= 32)).all())
        (torch.Size([8, 1]), True)
    """

    @dataclass
    class _AcceptedKeys(SoftValueEstimator._AcceptedKeys):
        """Keys of :class:`ImportanceSoftValue`.

        Attributes:
            observation: the state read by the Q network and the proposal.
            action: where the Q network reads the action.
            state_action_value: where the Q network writes ``Q(s, a)``.
            soft_value: where ``V(s)`` ``[*B, 1]`` is written.
            ess: where the effective sample size ``[*B, 1]`` is written.
        """

        action: NestedKey = "action"
        state_action_value: NestedKey = "state_action_value"
        ess: NestedKey = "ess"

    default_keys = _AcceptedKeys
    action_spaces = ("continuous",)  # samples of the action box

    def __init__(
        self,
        qvalue_network=None,
        proposal=None,
        *,
        alpha: float | Temperature | None = None,
        num_samples: int = 16,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(qvalue_network, alpha=alpha, allow_zero_alpha=False, generator=generator)
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.__dict__["proposal"] = None
        if proposal is not None:
            self._set_sampler(proposal)

    sampler_slot = "proposal"

    def _check_sampler(self, proposal) -> None:
        if not getattr(proposal, "has_log_prob", True):
            raise ValueError(
                f"proposal ({type(proposal).__name__}) has no tractable log-probability; importance "
                f"sampling needs log q(a|s). Use a GaussianSampler, UniformSampler or MixtureSampler."
            )

    def _refresh_keys(self) -> None:
        super()._refresh_keys()
        self.out_keys = [*self.out_keys, self.tensor_keys.ess]

    def estimate(
        self,
        tensordict: TensorDictBase,
        qvalue: QFunction,
        alpha: float | Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        actions, log_q = self._draw(
            self._drawn_from(), "proposal", tensordict, self.num_samples, generator,
            needed_for="importance sampling needs log q(a|s)",
        )
        actions, log_q = actions.detach(), log_q.detach()
        q = self._q_at_actions(tensordict, qvalue, actions)  # [N, K, *B]
        value = importance_sampled_soft_value(q, log_q, alpha, dim=1)
        ess = effective_sample_size(importance_log_weights(q.detach(), log_q, alpha), 1)
        return {"soft_value": value, "ess": ess}

    def _write_extras(self, tensordict: TensorDictBase, out: dict[str, Tensor]) -> None:
        tensordict.set(self.tensor_keys.ess, out["ess"].mean(0).unsqueeze(-1))

    def extra_repr(self) -> str:
        proposal = "the loss's actor" if self.proposal is None else type(self.proposal).__name__
        return f"{super().extra_repr()}, num_samples={self.num_samples}, proposal={proposal}"
