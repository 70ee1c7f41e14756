"""Exact Boltzmann sampling over a finite action set: ``π(a|s) = softmax_a(Q(s, a)/α)``.

With finitely many actions the maximum-entropy policy needs no approximation: by the Gibbs
variational principle the optimal policy of the soft Q-function is
``π(a|s) = exp((Q(s, a) − V(s))/α)`` with ``V(s) = α log Σ_a exp(Q(s, a)/α)`` (Haarnoja et al., 2017,
"Reinforcement Learning with Deep Energy-Based Policies", eq. 6; the discrete case is the Boltzmann
policy of soft Q-learning / soft DQN, Fox et al., 2016, "Taming the Noise in Reinforcement Learning
via Soft Updates"). The sampler evaluates ``Q(s, ·)`` once and draws from that categorical exactly.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torch import Tensor

from maxent_components.functional import boltzmann_log_prob
from maxent_components.samplers._discrete import (
    DiscreteSampler,
    encode_discrete_actions,
)

__all__ = ["BoltzmannSampler"]


class BoltzmannSampler(DiscreteSampler):
    """Exact sampler of the Boltzmann policy ``π(a|s) = softmax_a(Q(s, a)/α)`` over discrete actions.

    ``log π(a|s) = (Q(s, a) − V(s))/α`` with ``V(s) = α log Σ_b exp(Q(s, b)/α)`` (Haarnoja et al.,
    2017, eq. 6; Fox et al., 2016). ``α = 0`` gives the greedy policy (uniform over ties). Paired with
    :class:`~maxent_components.soft_value.ExactSoftValue` inside
    :class:`~maxent_components.objectives.soft_q.SoftQLoss` this is soft DQN.

    Args:
        qvalue_network: a tensordict module reading the observation and writing
            ``"action_value"`` ``[*B, |A|]`` (e.g. :func:`~maxent_components.modules.qvalue.discrete_qvalue_network`);
            referenced, not owned. Omit it inside a ``SoftQLoss``: the loss binds the sampler to the
            ``min`` over its trained Q ensemble, so the sampler acts with the Q being learned.

    Keyword Args:
        action_spec: a TorchRL ``OneHot`` (the ``GymEnv`` default; actions are one-hot vectors) or
            ``Categorical`` spec (actions are integer indices). Anything else raises ``ValueError``.
        alpha: the temperature, a float or a :class:`~maxent_components.temperature.Temperature`
            (omit it inside a ``SoftQLoss``, which binds its own).
        use_action_mask: read a boolean ``"action_mask"`` ``[*B, |A|]`` (True = allowed) and
            restrict the policy to the allowed actions.

    ``forward`` samples under ``ExplorationType.RANDOM`` (what collectors use) and takes the greedy
    action ``argmax_a Q(s, a)`` (among the allowed ones) under ``DETERMINISTIC``, ``MODE`` and
    ``MEAN`` (a categorical has no mean action; its mode is the natural point estimate); it also
    writes ``log π(a|s)`` of the written action at ``"action_log_prob"``.

    Examples:
        >>> from torchrl.data import OneHot
        >>> from tensordict import TensorDict
        >>> from maxent_components.modules.qvalue import discrete_qvalue_network
        >>> qnet = discrete_qvalue_network(3, 4, num_cells=[8])
        >>> sampler = BoltzmannSampler(qnet, action_spec=OneHot(4), alpha=0.5)
        >>> td = TensorDict({"observation": torch.randn(5, 3)}, batch_size=[5])
        >>> actions, log_prob = sampler.sample(td, 7)
        >>> actions.shape, log_prob.shape
        (torch.Size([7, 5, 4]), torch.Size([7, 5]))
    """

    # The constructor is DiscreteSampler's: the policy is a function of Q alone.

    # -- the policy ---------------------------------------------------------------------------
    def log_probs(self, tensordict: TensorDictBase) -> Tensor:
        """``log π(·|s) = log softmax(Q(s, ·)/α)`` ``[*B, |A|]``; masked actions get ``−inf``."""
        q = self.action_values(tensordict)
        return boltzmann_log_prob(q, self._temperature().value(), mask=self._mask(tensordict))

    def greedy(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """The greedy action ``argmax_a Q(s, a)`` (allowed actions only) and its ``log π`` under the policy."""
        q = self.action_values(tensordict)
        mask = self._mask(tensordict)
        log_probs = boltzmann_log_prob(q, self._temperature().value(), mask=mask)
        masked_q = q if mask is None else q.masked_fill(~mask.expand_as(q), -torch.inf)
        index = masked_q.argmax(-1)
        log_prob = log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return encode_discrete_actions(index, self.action_spec), log_prob
