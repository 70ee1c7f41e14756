"""Amortized Gaussian policies: the tanh-Gaussian trained towards ``π ∝ exp(Q/α)`` (the SAC actor),
and the clipped Gaussian of likelihood-based losses (continuous PCL)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn
from torchrl.envs.utils import exploration_type

from maxent_components.checks import check_positive_int, data_checks
from maxent_components.functional import clipped_normal_log_prob, normal_log_density
from maxent_components.modules.plans import module_plan
from maxent_components.modules.policies import tanh_normal_actor_network
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers._continuous import _DETERMINISTIC, ContinuousSampler
from maxent_components.specs import outside_box
from maxent_components.temperature import Temperature
from maxent_components.validation import check_nonempty

__all__ = ["ClippedGaussianSampler", "GaussianSampler"]


class GaussianSampler(ContinuousSampler):
    """Tanh-Gaussian policy ``a = low + (high − low)(tanh(u) + 1)/2``, ``u ∼ N(μ_φ(s), diag σ_φ(s)²)``.

    Trained with the reparameterised KL loss of soft actor-critic (Haarnoja et al., 2018, "Soft
    Actor-Critic: Off-Policy Maximum Entropy Deep Reinforcement Learning with a Stochastic Actor",
    eq. 12)

    .. math:: J_π(φ) = E_{s, ξ ∼ N(0, I)}\\big[α \\log π_φ(a_φ(ξ; s) | s) − Q(s, a_φ(ξ; s))\\big],

    which is ``α · KL(π_φ(·|s) ‖ exp(Q(s, ·)/α)/Z(s))`` up to a constant in ``φ``. The density is
    tractable by the change of variables (SAC appendix C, eq. 21)

    .. math:: \\log π(a|s) = \\log N(u; μ, σ²) − Σ_d \\big[\\log\\frac{high_d − low_d}{2} + \\log(1 − \\tanh^2 u_d)\\big],

    with ``log(1 − tanh² u) = 2(log 2 − u − softplus(−2u))`` (finite for all ``u``). Densities are
    with respect to Lebesgue measure on the box. ``sample`` is reparameterised (``rsample``) and
    returns log-probabilities, so the sampler can be the proposal of an importance-sampled soft
    value or the policy of a policy soft value inside an actor loss.

    Being unimodal, the policy cannot represent a multimodal ``exp(Q/α)``: minimising the reverse
    KL makes it settle on (mostly) one mode — use :class:`~maxent_components.samplers.svgd.SVGDSampler`
    or :class:`~maxent_components.samplers.langevin.LangevinSampler` for multimodal targets.

    Args:
        qvalue_network: a TensorDict module reading ``"observation"`` and ``"action"`` and writing
            ``"state_action_value"`` ``[*B, 1]``; omit it inside a ``SoftQLoss``, which binds its own.
            Referenced, not owned: :meth:`loss` never reaches its parameters. Acting needs no Q.
        policy_network: a module ``observation ↦ (loc, scale)`` of the pre-tanh Gaussian (e.g.
            :func:`~maxent_components.modules.policies.tanh_normal_actor_network`). Built as an MLP
            from ``observation_dim`` and ``num_cells`` when omitted.

    Keyword Args:
        action_spec: a bounded continuous box (``torchrl.data.Bounded``).
        alpha: the temperature ``α`` (a float or a :class:`~maxent_components.temperature.Temperature`);
            omit it inside a ``SoftQLoss``, which binds its own (and learns it with ``loss_alpha``
            when it is an :class:`~maxent_components.temperature.AutoTemperature`).
        observation_dim: input size of the default policy network (needed without ``policy_network``).
        num_cells: hidden sizes of the default policy network.
        num_loss_samples: actions per state in :meth:`loss`.

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> from torchrl.data import Bounded
        >>> q = TensorDictModule(lambda s, a: -(a - 0.5).square().sum(-1, keepdim=True),
        ...                      in_keys=["observation", "action"], out_keys=["state_action_value"])
        >>> sampler = GaussianSampler(q, action_spec=Bounded(-1, 1, shape=(2,)), alpha=0.1,
        ...                           observation_dim=3, num_cells=(32,))
        >>> td = TensorDict(observation=torch.zeros(4, 3), batch_size=[4])
        >>> actions, log_prob = sampler.sample(td, num_samples=8)
        >>> actions.shape, log_prob.shape
        (torch.Size([8, 4, 2]), torch.Size([8, 4]))
        >>> sorted(sampler.loss(td).keys())
        ['alpha', 'entropy', 'loss_actor']
    """

    has_log_prob = True

    def __init__(
        self,
        qvalue_network=None,
        policy_network: nn.Module | None = None,
        *,
        action_spec,
        alpha: float | Temperature | None = None,
        observation_dim: int | None = None,
        num_cells: Sequence[int] = (256, 256),
        num_loss_samples: int = 1,
    ) -> None:
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.policy_network = self._policy_or_default(
            policy_network,
            observation_dim,
            lambda obs_dim: tanh_normal_actor_network(obs_dim, self.action_dim, num_cells=num_cells),
        )
        self.num_loss_samples = check_positive_int("num_loss_samples", num_loss_samples)

    # -- the distribution -----------------------------------------------------------------------
    def distribution_params(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """``(loc, scale)`` of the pre-tanh Gaussian, each ``[*B, D]``."""
        obs = tensordict.get(self.tensor_keys.observation)
        plan = module_plan(self.policy_network)  # a plain MLP runs layer by layer, without module calls
        out = self.policy_network(obs) if plan is None else plan([obs])
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("policy_network must return a pair (loc, scale).")
        loc, scale = out
        shape = (*tensordict.batch_size, self.action_dim)
        loc, scale = loc.reshape(shape), scale.reshape(shape)
        if data_checks() and not torch.compiler.is_compiling():
            if not bool(torch.isfinite(loc).all() and torch.isfinite(scale).all()):
                raise ValueError("policy_network returned non-finite loc or scale.")
            if not bool((scale > 0).all()):
                raise ValueError("policy_network returned a non-positive scale.")
        return loc, scale

    def _log_prob_u(self, u: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        return normal_log_density(u, loc, scale).sum(-1) - self.log_abs_det_jacobian(u)

    # The map from the Gaussian variable ``u`` to an action and the two log-probabilities: the only
    # places where the tanh and the clipped policy differ.
    def _action(self, u: Tensor) -> Tensor:
        return self.squash(u)

    def _sample_log_prob(self, u: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        return self._log_prob_u(u, loc, scale)

    def _action_log_prob(self, action: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        return self._log_prob_u(self.unsquash(action), loc, scale)

    def log_prob(self, tensordict: TensorDictBase, action: Tensor) -> Tensor:
        """``log π(a|s)`` of actions ``[*S, *B, *action_shape]`` (any leading sample dims); returns ``[*S, *B]``.

        Actions on the boundary of the box are moved inside by ``1e-6`` (in ``tanh u``) so that the
        result is finite; actions outside the box have density zero, ``−inf`` (as for every sampler
        with a density; under :class:`~maxent_components.checks.set_data_checks`, an error).
        """
        outside = outside_box(action, self.low, self.high)
        if data_checks() and bool(outside.any()):
            raise ValueError(f"{type(self).__name__}.log_prob: actions outside the box low={self.low.tolist()}, high={self.high.tolist()}.")
        loc, scale = self.distribution_params(tensordict)
        return self._action_log_prob(action, loc, scale).masked_fill(outside, -math.inf)

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Reparameterised samples ``[n, *B, *action_shape]`` and their log-probabilities ``[n, *B]``."""
        num_samples = check_positive_int("num_samples", num_samples)
        loc, scale = self.distribution_params(tensordict)
        noise = torch.randn(
            (num_samples, *loc.shape), generator=generator, dtype=loc.dtype, device=loc.device
        )
        u = loc + scale * noise
        return self._action(u), self._sample_log_prob(u, loc, scale)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Write one action (the action of the mean under a deterministic exploration type) and its log-prob."""
        if exploration_type() in _DETERMINISTIC:
            loc, scale = self.distribution_params(tensordict)
            tensordict.set(self.tensor_keys.action, self._action(loc))
            tensordict.set(self.tensor_keys.action_log_prob, self._sample_log_prob(loc, loc, scale))
            return tensordict
        return super().forward(tensordict)

    # -- training -------------------------------------------------------------------------------
    def loss(
        self,
        tensordict: TensorDictBase,
        *,
        qvalue: QFunction | None = None,
        generator: torch.Generator | None = None,
    ) -> TensorDict:
        """``loss_actor = E[α log π(a|s) − min_i Q_i(s, a)]`` and the detached ``alpha`` and ``entropy``.

        ``qvalue`` is the Q function to train against (default: the bound one); it is used with
        detached parameters, and ``α`` is detached (a learned ``α`` has its own loss, which
        ``SoftQLoss`` adds from the ``entropy`` reported here: the mean of ``−log π``).
        """
        check_nonempty(type(self).__name__, tensordict)
        actions, log_prob = self.sample(tensordict, self.num_loss_samples, generator=generator)
        q = self._qvalue(tensordict, actions, self._q(qvalue).detached())
        alpha = self._temperature().value()
        loss_actor = (alpha * log_prob - q).mean()
        return TensorDict(
            {
                "loss_actor": loss_actor,
                "alpha": torch.as_tensor(alpha, dtype=loss_actor.dtype).detach(),
                "entropy": -log_prob.detach().mean(),
            },
            batch_size=[],
        )


class ClippedGaussianSampler(GaussianSampler):
    """Gaussian policy in action space with clipping, ``a = clip(u, low, high)``, ``u ∼ N(μ_φ(s), diag σ_φ(s)²)``,
    whose log-probability is bounded at the edges of the box: the policy of likelihood-based losses
    such as :class:`~maxent_components.objectives.PathConsistencyLoss` on continuous actions.

    ``μ = c + h·m_φ(s)`` and ``σ = h·s_φ(s)`` with the box's centre ``c`` and half-width ``h``, so
    the network (the same as :class:`GaussianSampler`'s) works in units of the box. ``log π`` is the
    censored normal of :func:`~maxent_components.functional.clipped_normal_log_prob`: a density on
    the open box and probability masses ``Φ(·)`` on its faces, with respect to Lebesgue measure plus a
    unit point mass at each bound (per dimension). A tanh-squashed Gaussian's density instead grows
    without bound as its mass moves to the edge, which a fit of ``log π`` to replayed actions (PCL's
    consistency) exploits: on Pendulum-v1 such a policy collapsed to the two corners of the box
    (pre-tanh means of ±400) and never swung up.

    The policy has no reparameterised KL loss: the clip makes the integrand of SAC's actor objective
    jump where ``u`` crosses a bound, so its pathwise gradient is biased. It has no :meth:`loss`
    (``has_loss`` is ``False``, and ``SoftQLoss`` refuses it as an actor or a proposal); use
    :class:`GaussianSampler` for SAC.

    Examples:
        >>> from torchrl.data import Bounded
        >>> sampler = ClippedGaussianSampler(action_spec=Bounded(-2, 2, shape=(1,)), observation_dim=3, num_cells=(16,))
        >>> td = TensorDict(observation=torch.zeros(5, 3), batch_size=[5])
        >>> actions, log_prob = sampler.sample(td, num_samples=4)
        >>> bool(((actions >= -2) & (actions <= 2)).all()), bool((log_prob == sampler.log_prob(td, actions)).all())
        (True, True)
    """

    def distribution_params(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """``(μ, σ)`` of the unclipped Gaussian in action units, each ``[*B, D]``."""
        loc, scale = super().distribution_params(tensordict)
        low, high = self._flat_bounds()
        half = (high - low) / 2
        return (low + high) / 2 + half * loc, half * scale

    def _clip(self, u: Tensor) -> Tensor:
        low, high = self._flat_bounds()
        return torch.minimum(torch.maximum(u, low), high)

    def _clipped_log_prob(self, flat_actions: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        low, high = self._flat_bounds()
        return clipped_normal_log_prob(flat_actions, loc, scale, low, high).sum(-1)

    def _action(self, u: Tensor) -> Tensor:
        return self._clip(u).reshape(*u.shape[:-1], *self.action_shape)

    def _sample_log_prob(self, u: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        return self._clipped_log_prob(self._clip(u), loc, scale)

    def _action_log_prob(self, action: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        flat = action.reshape(*action.shape[: action.dim() - len(self.action_shape)], self.action_dim)
        return self._clipped_log_prob(flat, loc, scale)

    @property
    def has_loss(self) -> bool:
        """``False``: no loss of this sampler trains its network (PCL trains it through ``log_prob``)."""
        return False

    def loss(self, tensordict: TensorDictBase, *, qvalue: QFunction | None = None, generator=None) -> TensorDict:
        raise NotImplementedError(
            "ClippedGaussianSampler has no reparameterised KL loss (the clip biases its pathwise gradient): "
            "use GaussianSampler as the actor of SoftQLoss (SAC); the clipped policy is for PCL."
        )
