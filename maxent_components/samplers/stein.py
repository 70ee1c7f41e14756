"""A Gaussian carried by Stein variational gradient descent, with its density: S2AC's policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn
from torchrl.envs.utils import exploration_type

from maxent_components.checks import (
    check_choice,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    data_checks,
)
from maxent_components.functional import (
    median_bandwidth,
    normal_log_density,
    squared_distances,
    svgd_direction,
    svgd_step_log_det,
)
from maxent_components.modules.policies import tanh_normal_actor_network
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers._continuous import _DETERMINISTIC, ContinuousSampler
from maxent_components.temperature import Temperature
from maxent_components.validation import check_nonempty

__all__ = ["SteinSampler"]


class SteinSampler(ContinuousSampler):
    """A state's Gaussian ``q_0(·|s)`` moved by ``L`` SVGD steps towards ``exp(Q(s, ·)/α)``, with the
    log-density of the result: the policy of Stein soft actor-critic (S2AC; Messaoud et al., 2024,
    "S²AC: Energy-Based Reinforcement Learning with Stein Soft Actor Critic", ICLR).

    **The flow.** Everything lives in the unconstrained space ``u`` of
    :class:`~maxent_components.samplers.gaussian.GaussianSampler` (``a = low + (high − low)(tanh u + 1)/2``) with the target
    ``log p_u(u) = Q(s, a(u))/α + Σ_d log|da_d/du_d|`` (the density of ``u`` whose image is
    ``exp(Q/α)``). Per state, ``M = num_particles`` particles ``y_j⁰ ∼ q_0 = N(μ_φ(s), diag σ_φ(s)²)``
    make the Stein field of each step,

    .. math:: φ_l(x) = \\frac{1}{M} Σ_j \\big[κ(y_j^l, x) ∇ \\log p_u(y_j^l) + ∇_{y_j^l} κ(y_j^l, x)\\big],

    with the RBF kernel ``κ(y, x) = exp(−‖y − x‖²/h_l)`` and ``h_l`` the library's median rule on the
    particles (:func:`~maxent_components.functional.median_bandwidth`), and move by it,
    ``y^{l+1} = y^l + ε φ_l(y^l)`` (SVGD, Liu & Wang, 2016). An action is a further draw
    ``x⁰ ∼ q_0`` carried by the same ``L`` maps, ``x^{l+1} = x^l + ε φ_l(x^l)``. Given the particles
    the maps are deterministic, so the change of variables gives its density exactly (S2AC's
    entropy of an SVGD policy),

    .. math:: \\log q_L(x^L|s) = \\log q_0(x^0|s) − Σ_{l<L} \\log\\big|\\det(I + ε ∇_x φ_l(x^l))\\big|,

    and ``log π(a|s) = log q_L(x^L|s) − Σ_d log|da_d/du_d|`` for ``a = a(x^L)``.
    ``log_det="first_order"`` (the default, S2AC's closed form) replaces the log-determinant by
    ``ε tr ∇_x φ_l``, in closed form for the RBF kernel
    (:func:`~maxent_components.functional.svgd_direction_trace`; off by ``O(ε²)`` per step);
    ``"exact"`` takes the log-determinant of the closed-form ``D × D`` Jacobian
    (:func:`~maxent_components.functional.svgd_direction_jacobian`). Both need ``ε`` small enough
    that ``I + ε∇φ`` stays invertible (S2AC's condition; ``step_size`` is in units of ``u``). The
    first-order term never falls below the exact one where the eigenvalues of ``∇φ`` are real
    (``log(1 + x) ≤ x``), and it grows as ``1/h`` when the particles draw together, where the exact
    one grows as ``log(1/h)``: an actor trained on it can inflate its reported entropy by shrinking
    ``q_0``, which the exact log-determinant does not reward.

    *Why the action is not one of the ``M`` particles.* A particle moves the field it moves in, so
    its law given the others is not that change of variables: on the tests' 1-D double well, with
    S2AC's ``M = 10``, ``L = 3``, ``ε = 0.1``, the formula applied to the particles themselves
    overstates their entropy by 0.3 nats (0.83 against 0.52 from a histogram of 200,000 particles),
    and its term for the particle's own kernel, ``2D/(M h)``, grows without bound as the particles
    draw together. The action point, drawn from the same
    ``q_0`` and moved by the same maps, has the density reported, given the particles; its mean
    ``E[−log q_L(x|s, particles)]`` is the conditional entropy, a lower bound on the policy's entropy.

    **Training** is SAC's (Haarnoja et al., 2018): :meth:`loss` returns
    ``loss_actor = E[α log π(a|s) − min_i Q_i(s, a)]``, reparameterised through the noise of ``q_0``,
    the ``L`` steps and the kernel (the bandwidth is a detached heuristic; the scores are taken with
    ``create_graph`` so the steps are differentiable), into ``q_0``'s network; the reported
    ``entropy`` drives a learned temperature. Hence
    ``SoftQLoss(qnet, PolicySoftValue(), actor=SteinSampler(...), alpha=AutoTemperature(...))`` is
    S2AC with SAC's training. Each step evaluates ``Q`` and its gradient once, on all ``M`` particles
    of every state together (one batched call); the action points need no evaluation of ``Q``.

    Args:
        qvalue_network: a TensorDict module reading ``"observation"`` and ``"action"`` and writing
            ``"state_action_value"`` ``[*B, 1]`` (referenced, not owned; omit it inside a ``SoftQLoss``).
        policy_network: ``observation ↦ (loc, scale)`` of ``q_0`` in ``u``-space (e.g.
            :func:`~maxent_components.modules.policies.tanh_normal_actor_network`); an MLP built from
            ``observation_dim`` and ``num_cells`` when omitted.

    Keyword Args:
        action_spec: a bounded continuous box (``torchrl.data.Bounded``).
        alpha: the temperature ``α`` (float or Temperature; omit it inside a ``SoftQLoss``).
        num_particles: ``M >= 2``, particles per state that make the field (S2AC's code: 10).
        num_steps: ``L >= 0`` SVGD steps (S2AC's MuJoCo runs: 3; ``L = 0`` is the Gaussian ``q_0``).
        step_size: ``ε > 0`` (S2AC's code: 0.1).
        bandwidth: the median rule, ``"paper"`` (Liu & Wang, 2016) or ``"reference"`` (soft
            Q-learning's code); S2AC's code uses a rule of its own, half the mean squared distance.
        bandwidth_scale: a factor on the rule's bandwidth.
        min_bandwidth: floor of the (scaled) bandwidth.
        log_det: ``"first_order"`` (``ε tr ∇φ``, S2AC) or ``"exact"`` (``log|det(I + ε∇φ)|``).
        num_loss_samples: action points per state in :meth:`loss`.
        observation_dim: input size of the default network (needed without ``policy_network``).
        num_cells: hidden sizes of the default network.

    Under a deterministic exploration type, ``forward`` carries the mean of ``q_0`` through the field
    of particles at fixed noise (drawn once from seed 0), so the same state gives the same action.

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> from torchrl.data import Bounded
        >>> q = TensorDictModule(lambda s, a: -(a - 0.5).square().sum(-1, keepdim=True),
        ...                      in_keys=["observation", "action"], out_keys=["state_action_value"])
        >>> sampler = SteinSampler(q, action_spec=Bounded(-1, 1, shape=(2,)), alpha=0.1,
        ...                        observation_dim=3, num_cells=(32,), num_particles=8, num_steps=2)
        >>> td = TensorDict(observation=torch.zeros(4, 3), batch_size=[4])
        >>> actions, log_prob = sampler.sample(td, num_samples=5)
        >>> actions.shape, log_prob.shape
        (torch.Size([5, 4, 2]), torch.Size([5, 4]))
        >>> sorted(sampler.loss(td).keys())
        ['alpha', 'bandwidth', 'entropy', 'loss_actor']
    """

    has_log_prob = True

    def __init__(
        self,
        qvalue_network=None,
        policy_network: nn.Module | None = None,
        *,
        action_spec,
        alpha: float | Temperature | None = None,
        num_particles: int = 10,
        num_steps: int = 3,
        step_size: float = 0.1,
        bandwidth: Literal["paper", "reference"] = "paper",
        bandwidth_scale: float = 1.0,
        min_bandwidth: float = 1e-3,
        log_det: Literal["first_order", "exact"] = "first_order",
        num_loss_samples: int = 1,
        observation_dim: int | None = None,
        num_cells: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.num_particles = check_positive_int("num_particles", num_particles)
        if self.num_particles < 2:
            raise ValueError(f"num_particles must be at least 2 (the bandwidth divides by log M), got {num_particles}.")
        self.num_steps = check_nonnegative_int("num_steps", num_steps)
        self.step_size = check_positive_float("step_size", step_size)
        self.bandwidth = check_choice("bandwidth", bandwidth, ("paper", "reference"))
        self.bandwidth_scale = check_positive_float("bandwidth_scale", bandwidth_scale)
        self.min_bandwidth = check_positive_float("min_bandwidth", min_bandwidth)
        self.log_det = check_choice("log_det", log_det, ("first_order", "exact"))
        self.num_loss_samples = check_positive_int("num_loss_samples", num_loss_samples)
        self.policy_network = self._policy_or_default(
            policy_network,
            observation_dim,
            lambda obs_dim: tanh_normal_actor_network(obs_dim, self.action_dim, num_cells=num_cells),
        )
        fixed = torch.randn(self.num_particles, self.action_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("fixed_noise", fixed.to(self.low.dtype), persistent=False)

    # -- q_0 --------------------------------------------------------------------------------------
    def distribution_params(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """``(loc, scale)`` of the Gaussian ``q_0`` in ``u``-space, each ``[*B, D]``."""
        out = self.policy_network(tensordict.get(self.tensor_keys.observation))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("policy_network must return a pair (loc, scale).")
        shape = (*tensordict.batch_size, self.action_dim)
        loc, scale = out[0].reshape(shape), out[1].reshape(shape)
        if data_checks() and not torch.compiler.is_compiling():
            if not bool(torch.isfinite(loc).all() and torch.isfinite(scale).all()):
                raise ValueError("policy_network returned non-finite loc or scale.")
            if not bool((scale > 0).all()):
                raise ValueError("policy_network returned a non-positive scale.")
        return loc, scale

    # -- the flow -------------------------------------------------------------------------------
    def _scores(self, state: TensorDictBase, u: Tensor, alpha, qvalue: QFunction) -> Tensor:
        """``∇_u log p_u`` at particles ``[M, *B, D]``, one batched evaluation of ``Q``; differentiable
        (``create_graph``) when gradients are being recorded, detached otherwise."""
        create_graph = torch.is_grad_enabled() and u.requires_grad

        def total_log_p(x: Tensor) -> Tensor:
            return (self._qvalue(state, self.squash(x), qvalue) / alpha + self.log_abs_det_jacobian(x)).sum()

        # torch.func.grad: differentiable by the outer autograd (the loss reaches q_0 through the
        # steps) and composable with torch.vmap (a population of members).
        return torch.func.grad(total_log_p)(u if create_graph else u.detach())

    def _bandwidth(self, particles: Tensor) -> Tensor:
        """``h [*B]`` of particle sets ``[*B, M, D]``: the scaled median rule, floored."""
        rule = median_bandwidth(
            squared_distances(particles, particles),
            formula=self.bandwidth,
            num_particles=self.num_particles,
            min_bandwidth=self.min_bandwidth / self.bandwidth_scale,
        )
        return self.bandwidth_scale * rule

    def flow(
        self,
        tensordict: TensorDictBase,
        particles: Tensor,
        points: Tensor,
        log_q: Tensor,
        *,
        qvalue: QFunction | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Carry ``points`` ``[n, *B, D]`` (in ``u``-space, log-densities ``log_q [n, *B]``) through the
        ``L`` SVGD steps of ``particles`` ``[M, *B, D]``.

        Returns the points after the last step, their log-densities ``log q_L`` (in ``u``-space) and
        the last step's bandwidth ``[*B]`` (zeros for ``L = 0``). The lower-level entry of
        :meth:`sample`, for carrying chosen points through one particle set (as the tests' brute-force
        change of variables does).
        """
        h = particles.new_zeros(particles.shape[1:-1])  # reported for L = 0
        if self.num_steps == 0:
            return points, log_q, h
        alpha = self._temperature().value()
        q = self._q(qvalue).detached()
        eps, n = self.step_size, points.shape[0]
        for step in range(self.num_steps):
            scores = self._scores(tensordict, particles, alpha, q)
            # The functional pieces take sets [*B, K, D]; the field is evaluated at the points and,
            # but for the last step, at the particles, in one call.
            ys, ss, xs = particles.movedim(0, -2), scores.movedim(0, -2), points.movedim(0, -2)
            h = self._bandwidth(ys)
            last = step == self.num_steps - 1
            direction = svgd_direction(xs if last else torch.cat([xs, ys], -2), ss, ys, h)
            log_q = log_q - svgd_step_log_det(xs, ss, ys, h, eps, method=self.log_det).movedim(-1, 0)
            points = points + eps * direction[..., :n, :].movedim(-2, 0)
            if not last:
                particles = particles + eps * direction[..., n:, :].movedim(-2, 0)
        return points, log_q, h

    def _draw(
        self,
        tensordict: TensorDictBase,
        num_samples: int,
        generator: torch.Generator | None,
        qvalue: QFunction | None,
        *,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        loc, scale = self.distribution_params(tensordict)
        m, batch = self.num_particles, loc.shape[:-1]
        if deterministic:
            xi = self.fixed_noise.to(loc.dtype).reshape(m, *([1] * len(batch)), self.action_dim)
            particles, points = loc + scale * xi, loc.unsqueeze(0)
        else:
            noise = torch.randn((m + num_samples, *loc.shape), generator=generator, dtype=loc.dtype, device=loc.device)
            particles, points = loc + scale * noise[:m], loc + scale * noise[m:]
        log_q = normal_log_density(points, loc, scale).sum(-1)
        u, log_q, h = self.flow(tensordict, particles, points, log_q, qvalue=qvalue)
        return self.squash(u), log_q - self.log_abs_det_jacobian(u), h

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``num_samples`` actions per state ``[n, *B, *action_shape]`` (differentiable in ``φ``) and their
        log-densities ``log π(a|s)`` ``[n, *B]``, given the state's ``M`` particles (one set per call)."""
        num_samples = check_positive_int("num_samples", num_samples)
        actions, log_prob, _ = self._draw(tensordict, num_samples, generator, None)
        return actions, log_prob

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """One action and its log-density; deterministic (the mean of ``q_0`` through the field of
        fixed-noise particles) under a deterministic exploration type."""
        if exploration_type() in _DETERMINISTIC:
            actions, log_prob, _ = self._draw(tensordict, 1, None, None, deterministic=True)
            tensordict.set(self.tensor_keys.action, actions[0])
            tensordict.set(self.tensor_keys.action_log_prob, log_prob[0])
            return tensordict
        return super().forward(tensordict)

    # -- training ---------------------------------------------------------------------------------
    def loss(
        self,
        tensordict: TensorDictBase,
        *,
        qvalue: QFunction | None = None,
        generator: torch.Generator | None = None,
    ) -> TensorDict:
        """``loss_actor = E[α log π(a|s) − min_i Q_i(s, a)]``, and the detached ``alpha``, ``entropy``
        (the mean of ``−log π``) and mean ``bandwidth`` of the last step.

        ``qvalue`` is the Q function of the target and of the critic term (default: the bound one),
        used with detached parameters; ``α`` is detached.
        """
        check_nonempty(type(self).__name__, tensordict)
        q = self._q(qvalue).detached()
        actions, log_prob, h = self._draw(tensordict, self.num_loss_samples, generator, q)
        alpha = self._temperature().value()
        loss_actor = (alpha * log_prob - self._qvalue(tensordict, actions, q)).mean()
        return TensorDict(
            {
                "loss_actor": loss_actor,
                "alpha": torch.as_tensor(alpha, dtype=loss_actor.dtype).detach(),
                "entropy": -log_prob.detach().mean(),
                "bandwidth": h.detach().mean(),
            },
            batch_size=[],
        )
