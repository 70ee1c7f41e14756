"""Langevin MCMC (ULA and MALA) on ``π(a|s) ∝ exp(Q(s, a)/α)`` over a bounded action box."""

from __future__ import annotations

from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor
from torchrl.envs.utils import exploration_type

from maxent_components.checks import check_positive_float, check_positive_int
from maxent_components.functional import langevin_step, mala_log_acceptance
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers._continuous import _DETERMINISTIC, ContinuousSampler
from maxent_components.samplers.base import PolicySampler
from maxent_components.temperature import Temperature

__all__ = ["LangevinSampler"]


class LangevinSampler(ContinuousSampler):
    """Langevin dynamics on the Boltzmann policy ``π(a|s) ∝ exp(Q(s, a)/α)`` over the action box.

    The chain runs in the unconstrained space ``u ∈ R^D`` with
    ``a = low + (high − low)(tanh(u) + 1)/2``, on the log-density

    .. math:: \\log p_u(u) = Q(s, a(u))/α + Σ_d \\log(1 − \\tanh^2 u_d) + \\text{const},

    whose image under ``a(u)`` is exactly ``exp(Q/α)`` restricted to the box (change of variables), so
    the stationary law in action space is the target and actions never leave the box. Each of
    ``num_steps`` steps proposes (Grenander & Miller, 1994; Roberts & Tweedie, 1996)

    .. math:: u' = u + ε ∇_u \\log p_u(u) + \\sqrt{2ε}\\, ξ, \\quad ξ ∼ N(0, I).

    With ``metropolis=False`` every proposal is taken (the unadjusted Langevin algorithm, ULA: cheap,
    with an ``O(ε)`` bias in the stationary law). With ``metropolis=True`` the proposal is accepted
    with probability ``min(1, p(u') q(u|u') / (p(u) q(u'|u)))`` (MALA, Roberts & Tweedie 1996),
    which leaves the target exactly invariant. Chains start uniformly over the box or from another
    sampler's actions (a warm start, e.g. from an amortized SVGD or Gaussian policy). Each step is
    one batched evaluation of ``Q`` and of ``∇_a Q`` (with ``torch.autograd.grad`` with respect to
    the actions, so nothing accumulates in the Q network's parameters).

    ``log π`` is intractable: :meth:`sample` returns ``None`` log-probabilities. The chain's
    diagnostics (the acceptance rate per state) come back from :meth:`sample_with_info` and
    :meth:`refine`; nothing is stored on the sampler. Under a deterministic exploration type, ``forward`` runs the chain without noise (gradient ascent on
    ``log p_u``) from a deterministic start: the warm-start sampler's deterministic action, or the
    centre of the box.

    A warm-started sampler *owns* its ``init`` sampler: inside a ``SoftQLoss`` the Langevin sampler
    can be the actor, acting by refining ``init``'s samples, while :meth:`loss` trains ``init``
    (amortized SVGD or Gaussian) against the same Q.

    Args:
        qvalue_network: a TensorDict module reading ``"observation"`` and ``"action"`` and writing
            ``"state_action_value"`` ``[*B, 1]``; omit it inside a ``SoftQLoss``, which binds its own.

    Keyword Args:
        action_spec: a bounded continuous box (``torchrl.data.Bounded``).
        alpha: the temperature ``α`` (float or :class:`~maxent_components.temperature.Temperature`).
        num_steps: Langevin steps per call (> 0).
        step_size: ``ε`` in ``u``-space (> 0), kept in a buffer.
        metropolis: ``False`` for ULA, ``True`` for MALA.
        init: ``"uniform"`` or a :class:`~maxent_components.samplers.base.PolicySampler` whose
            samples start the chains (owned: :meth:`loss` is its loss).

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> from torchrl.data import Bounded
        >>> q = TensorDictModule(lambda s, a: -8 * (a.square() - 0.36).square(),
        ...                      in_keys=["observation", "action"], out_keys=["state_action_value"])
        >>> sampler = LangevinSampler(q, action_spec=Bounded(-1, 1, shape=(1,)), alpha=0.5,
        ...                           num_steps=20, step_size=0.02, metropolis=True)
        >>> td = TensorDict(observation=torch.zeros(3, 1), batch_size=[3])
        >>> actions, info = sampler.sample_with_info(td, 16, generator=torch.Generator().manual_seed(0))
        >>> actions.shape, info["acceptance_rate"].shape
        (torch.Size([16, 3, 1]), torch.Size([3]))
    """

    has_log_prob = False
    zero_alpha = False  # Q/α is the log-density it follows

    def __init__(
        self,
        qvalue_network=None,
        *,
        action_spec,
        alpha: float | Temperature | None = None,
        num_steps: int = 100,
        step_size: float = 0.01,
        metropolis: bool = False,
        init: Literal["uniform"] | PolicySampler = "uniform",
    ) -> None:
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.register_buffer("step_size", torch.tensor(check_positive_float("step_size", step_size)))
        self.metropolis = bool(metropolis)
        if isinstance(init, PolicySampler):
            self.init = init
        elif isinstance(init, str) and init == "uniform":
            self.init = None
        else:
            raise ValueError(f"init must be 'uniform' or a PolicySampler, got {init!r}.")

    def subsamplers(self) -> tuple[PolicySampler, ...]:
        return () if self.init is None else (self.init,)

    @property
    def has_loss(self) -> bool:
        """True when the warm start is an amortized sampler: :meth:`loss` trains it."""
        return self.init is not None and self.init.has_loss

    def loss(self, tensordict: TensorDictBase, *, qvalue: QFunction | None = None, **kwargs) -> TensorDict:
        """The warm-start sampler's loss (the chains themselves have nothing to train)."""
        if not self.has_loss:
            raise NotImplementedError("LangevinSampler trains nothing unless init is an amortized sampler.")
        return self.init.loss(tensordict, qvalue=qvalue, **kwargs)

    def _initial_u(
        self, tensordict: TensorDictBase, num_samples: int, generator: torch.Generator | None
    ) -> Tensor:
        if self.init is not None:
            with torch.no_grad():
                actions, _ = self.init.sample(tensordict, num_samples, generator=generator)
            self._check_actions("init sampler actions", actions, (num_samples, *tensordict.batch_size))
            return self.unsquash(actions.detach())
        return self._uniform_u((num_samples, *tensordict.batch_size), generator)

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, None]:
        """Run ``num_samples`` independent chains per state; actions ``[n, *B, *action_shape]``, ``None``."""
        actions, _ = self.sample_with_info(tensordict, num_samples, generator=generator)
        return actions, None

    def sample_with_info(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, TensorDict]:
        """As :meth:`sample`, also returning ``{"acceptance_rate": [*B]}`` (1 for ULA)."""
        num_samples = check_positive_int("num_samples", num_samples)
        u0 = self._initial_u(tensordict, num_samples, generator)
        return self._run(tensordict, u0, self.num_steps, self.step_size, generator, noise=True)

    def refine(
        self,
        tensordict: TensorDictBase,
        actions: Tensor,
        *,
        num_steps: int | None = None,
        step_size: float | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, TensorDict]:
        """Continue chains from given ``actions`` ``[n, *B, *action_shape]`` (e.g. another sampler's).

        Returns the actions after ``num_steps`` steps (default: the sampler's) and the info of
        :meth:`sample_with_info`.
        """
        self._check_actions("actions", actions, (actions.shape[0], *tensordict.batch_size))
        num_steps = self.num_steps if num_steps is None else check_positive_int("num_steps", num_steps)
        eps = self.step_size if step_size is None else torch.tensor(check_positive_float("step_size", step_size))
        return self._run(tensordict, self.unsquash(actions.detach()), num_steps, eps, generator, noise=True)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if exploration_type() in _DETERMINISTIC:
            # Deterministic start too: the warm-start sampler's own deterministic action (it runs
            # under the same exploration type), else the centre of the box.
            if self.init is not None:
                with torch.no_grad():
                    start = self.init(tensordict.clone(False)).get(self.init.tensor_keys.action)
                u0 = self.unsquash(start.detach()).unsqueeze(0)
            else:
                u0 = self.low.new_zeros((1, *tensordict.batch_size, self.action_dim))
            actions, _ = self._run(tensordict, u0, self.num_steps, self.step_size, None, noise=False)
        else:
            actions, _ = self.sample_with_info(tensordict, 1)
        tensordict.set(self.tensor_keys.action, actions[0])
        return tensordict

    def _run(
        self,
        tensordict: TensorDictBase,
        u: Tensor,
        num_steps: int,
        step_size: Tensor,
        generator: torch.Generator | None,
        *,
        noise: bool,
    ) -> tuple[Tensor, TensorDict]:
        state = tensordict
        alpha = self._temperature().value()
        eps = step_size.to(u.dtype)
        log_p, score = self._log_target(state, u, alpha, with_score=True)
        accepted = torch.zeros(u.shape[:-1], dtype=u.dtype, device=u.device)
        metropolis = self.metropolis and noise
        for _ in range(num_steps):
            xi = (
                torch.randn(u.shape, generator=generator, dtype=u.dtype, device=u.device)
                if noise
                else torch.zeros_like(u)
            )
            proposal = langevin_step(u, score, eps, xi)
            log_p_new, score_new = self._log_target(state, proposal, alpha, with_score=True)
            if metropolis:
                log_accept = mala_log_acceptance(log_p, log_p_new, u, proposal, score, score_new, eps)
                uniform = torch.rand(log_accept.shape, generator=generator, dtype=u.dtype, device=u.device)
                take = uniform.log() < log_accept
                u = torch.where(take.unsqueeze(-1), proposal, u)
                log_p = torch.where(take, log_p_new, log_p)
                score = torch.where(take.unsqueeze(-1), score_new, score)
                accepted += take.to(u.dtype)
            else:
                u, log_p, score = proposal, log_p_new, score_new
                accepted += 1
        rate = (accepted / num_steps).mean(0)
        info = TensorDict({"acceptance_rate": rate}, batch_size=tensordict.batch_size)
        return self.squash(u), info
