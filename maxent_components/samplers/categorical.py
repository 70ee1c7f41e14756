"""Amortized categorical policy trained towards the Boltzmann policy: the discrete-SAC actor.

The actor ``π_φ(·|s)`` minimises the KL divergence to the Boltzmann policy of the critic,
``KL(π_φ(·|s) ‖ exp((Q(s, ·) − V(s))/α)) = (1/α) Σ_a π_φ(a|s)(α log π_φ(a|s) − Q(s, a)) + V(s)/α``;
dropping the ``φ``-free ``V(s)`` and the factor ``1/α`` gives the discrete-SAC actor objective
``J_π(φ) = E_s[Σ_a π_φ(a|s)(α log π_φ(a|s) − Q(s, a))]`` (Christodoulou, 2019, "Soft Actor-Critic
for Discrete Action Settings", eq. 12). With a finite action set the expectation over ``a`` is an exact
sum, so no reparameterisation is needed. Its minimiser for fixed ``Q`` is ``softmax(Q/α)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor, nn
from torchrl.data import TensorSpec
from torchrl.modules import MLP

from maxent_components.checks import check_finite, check_positive_int, data_checks
from maxent_components.functional import entropy
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers._discrete import DiscreteSampler
from maxent_components.temperature import Temperature
from maxent_components.validation import check_nonempty

__all__ = ["CategoricalSampler", "categorical_policy_network"]


def categorical_policy_network(
    observation_dim: int,
    num_actions: int,
    *,
    num_cells: Sequence[int] = (256, 256),
    activation_class: type[nn.Module] = nn.ReLU,
    observation_key: NestedKey = "observation",
    logits_key: NestedKey = "logits",
) -> TensorDictModule:
    """An MLP ``s ↦ logits(·|s) ∈ R^{|A|}`` reading ``"observation"`` and writing ``"logits"``.

    The layout :class:`CategoricalSampler` expects: unnormalised log-probabilities ``[*B, |A|]``.
    """
    mlp = MLP(
        in_features=observation_dim,
        out_features=num_actions,
        num_cells=list(num_cells),
        activation_class=activation_class,
    )
    return TensorDictModule(mlp, in_keys=[observation_key], out_keys=[logits_key])


class CategoricalSampler(DiscreteSampler):
    """A learned categorical policy ``π_φ(a|s) = softmax(logits_φ(s))_a`` (the discrete-SAC actor).

    Trained by :meth:`loss`,
    ``J_π(φ) = E_s[Σ_a π_φ(a|s)(α log π_φ(a|s) − Q(s, a))]`` (Christodoulou, 2019, eq. 12), whose
    minimiser for a fixed ``Q`` is the Boltzmann policy ``softmax(Q(s, ·)/α)``. ``Q`` enters without
    gradient (only ``φ`` is trained by this loss) and ``α`` is detached (a learned temperature is
    trained by its own term, which ``SoftQLoss`` adds from the reported ``entropy``). As the actor of
    a ``SoftQLoss`` with a :class:`~maxent_components.soft_value.PolicySoftValue` it is discrete SAC.

    Args:
        qvalue_network: a tensordict module reading the observation and writing ``"action_value"``
            ``[*B, |A|]``; referenced, not owned. Omit it inside a ``SoftQLoss``, which binds its own
            (the ``min`` over its Q ensemble, as TorchRL's and the paper's discrete SAC).
        policy_network: a tensordict module reading the observation and writing unnormalised
            ``"logits"`` ``[*B, |A|]`` (see :func:`categorical_policy_network`); owned and trained
            by :meth:`loss`.

    Keyword Args:
        action_spec: a TorchRL ``OneHot`` (actions are one-hot vectors) or ``Categorical`` spec
            (actions are integer indices). Anything else raises ``ValueError``.
        alpha: the temperature, a float or a :class:`~maxent_components.temperature.Temperature`
            (omit it inside a ``SoftQLoss``, which binds its own).
        use_action_mask: read a boolean ``"action_mask"`` ``[*B, |A|]`` (True = allowed); masked
            actions get probability zero and contribute nothing to the loss.
        observation_dim: input size of the default policy network (needed without ``policy_network``).
        num_cells: hidden sizes of the default policy network.

    ``forward`` samples under ``ExplorationType.RANDOM`` and takes the most probable action
    ``argmax_a π_φ(a|s)`` under ``DETERMINISTIC``, ``MODE`` and ``MEAN``.

    Examples:
        >>> from torchrl.data import OneHot
        >>> from tensordict import TensorDict
        >>> from maxent_components.modules.qvalue import discrete_qvalue_network
        >>> qnet = discrete_qvalue_network(3, 4, num_cells=[8])
        >>> policy = categorical_policy_network(3, 4, num_cells=[8])
        >>> sampler = CategoricalSampler(qnet, policy, action_spec=OneHot(4), alpha=0.5)
        >>> td = TensorDict({"observation": torch.randn(5, 3)}, batch_size=[5])
        >>> losses = sampler.loss(td)
        >>> losses["loss_actor"].backward()
        >>> sorted(losses.keys())
        ['alpha', 'entropy', 'loss_actor']
    """

    @dataclass
    class _AcceptedKeys(DiscreteSampler._AcceptedKeys):
        """Keys of :class:`CategoricalSampler`.

        Attributes:
            action_value: where the Q network writes ``Q(s, ·)``.
            logits: where the policy network writes its logits.
        """

        logits: NestedKey = "logits"

    default_keys = _AcceptedKeys

    def __init__(
        self,
        qvalue_network: TensorDictModuleBase | None = None,
        policy_network: TensorDictModuleBase | None = None,
        *,
        action_spec: TensorSpec,
        alpha: float | Temperature | None = None,
        use_action_mask: bool = False,
        observation_dim: int | None = None,
        num_cells: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__(
            qvalue_network, action_spec=action_spec, alpha=alpha, use_action_mask=use_action_mask
        )
        if policy_network is None:
            if observation_dim is None:
                raise ValueError("observation_dim is required when policy_network is not given (it sizes the default MLP).")
            policy_network = categorical_policy_network(
                check_positive_int("observation_dim", observation_dim), self.num_actions, num_cells=num_cells
            )
        if not isinstance(policy_network, nn.Module):
            raise TypeError(
                f"policy_network must be a tensordict module writing logits, got "
                f"{type(policy_network).__name__}."
            )
        self.policy_network = policy_network

    # -- the policy ---------------------------------------------------------------------------
    def log_probs(self, tensordict: TensorDictBase) -> Tensor:
        """``log π_φ(·|s)`` ``[*B, |A|]`` (differentiable in ``φ``); masked actions get ``−inf``."""
        td = tensordict.select(*self.policy_network.in_keys, strict=False)
        logits = self.policy_network(td).get(self.tensor_keys.logits)
        if logits.shape[-1] != self.num_actions:
            raise ValueError(
                f"the policy network wrote {self.tensor_keys.logits!r} with last dimension "
                f"{logits.shape[-1]}, but action_spec has {self.num_actions} actions."
            )
        if data_checks():
            check_finite(f"policy logits {self.tensor_keys.logits!r}", logits)
        mask = self._mask(tensordict)
        if mask is not None:
            mask = mask.expand_as(logits)
            logits = logits.masked_fill(~mask, -torch.inf)
        return torch.log_softmax(logits, dim=-1)

    # -- training -----------------------------------------------------------------------------
    def loss(self, tensordict: TensorDictBase, *, qvalue: QFunction | None = None) -> TensorDict:
        """Discrete-SAC actor loss and the detached ``alpha`` and ``entropy``.

        ``loss_actor = mean_s Σ_a π_φ(a|s)(α log π_φ(a|s) − min_i Q_i(s, a))`` (Christodoulou, 2019,
        eq. 12) with ``qvalue`` (default: the bound one) evaluated without gradient; ``entropy`` is
        the batch mean of the exact ``H(s) = −Σ_a π_φ(a|s) log π_φ(a|s)``.
        """
        check_nonempty(type(self).__name__, tensordict)
        log_pi = self.log_probs(tensordict)
        with torch.no_grad():
            q = self.action_values(tensordict, self._q(qvalue).detached())
        alpha = self._temperature().value()
        allowed = torch.isfinite(log_pi)
        # Zero-probability actions must contribute 0, not 0·(−inf) = NaN, in value and gradient.
        safe_log_pi = log_pi.masked_fill(~allowed, 0.0)
        pi = log_pi.exp()
        per_state = (pi * (alpha * safe_log_pi - q.masked_fill(~allowed, 0.0))).sum(-1)
        loss_actor = per_state.mean()
        return TensorDict(
            {
                "loss_actor": loss_actor,
                "alpha": torch.as_tensor(alpha, dtype=loss_actor.dtype),
                "entropy": entropy(log_pi).detach().mean(),
            },
            batch_size=[],
        )
