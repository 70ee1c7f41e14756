"""Mixtures of samplers with their exact density, and the defensive importance proposal.

``MixtureSampler`` draws from ``q(a|s) = Σ_i w_i q_i(a|s)`` and reports the exact mixture density
``log q(a|s) = logsumexp_i(log w_i + log q_i(a|s))``. Mixing a policy with a uniform component keeps
the importance weights ``exp(Q/α)/q`` bounded by ``vol(A) exp(max Q/α)/w_uniform`` even where the
policy has no mass (defensive importance sampling, Hesterberg, 1995, "Weighted Average Importance
Sampling and Defensive Mixture Distributions"): :func:`defensive_proposal` builds that mixture for
an actor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.data import Bounded

from maxent_components.checks import check_positive_int, check_probability
from maxent_components.samplers.base import PolicySampler
from maxent_components.samplers.uniform import UniformSampler

__all__ = ["MixtureSampler", "defensive_proposal"]


class MixtureSampler(PolicySampler):
    """The mixture ``q(a|s) = Σ_i w_i q_i(a|s)`` of continuous samplers with tractable densities.

    Each draw picks component ``i`` with probability ``w_i`` and samples from it; the reported
    log-density is the exact mixture density ``log q(a|s) = logsumexp_i(log w_i + log q_i(a|s))``,
    so the mixture is a valid importance-sampling proposal for
    :class:`~maxent_components.soft_value.ImportanceSoftValue`. A uniform component makes it a
    defensive proposal (Hesterberg, 1995): the importance weights of ``exp(Q/α)`` stay bounded
    where the other components have no mass.

    Sampling draws ``num_samples`` candidates from every component and keeps one per slot, so a
    call costs one ``sample`` plus one ``log_prob`` per component — vectorised, with no loop over
    samples or states.

    Args:
        samplers: the components; each must implement ``sample`` with log-probabilities and
            ``log_prob(tensordict, action)`` (e.g. :class:`UniformSampler`, ``GaussianSampler``),
            and all must share the action shape. They are referenced, not owned: the mixture
            trains nothing, so its ``parameters()`` do not include theirs.

    Keyword Args:
        weights: the mixture weights, non-negative and finite, one per component; normalised to
            sum to one.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from tensordict import TensorDict
        >>> wide = UniformSampler(action_spec=Bounded(-2.0, 2.0, shape=(1,)))
        >>> narrow = UniformSampler(action_spec=Bounded(-0.5, 0.5, shape=(1,)))
        >>> mixture = MixtureSampler([wide, narrow], weights=[0.5, 0.5])
        >>> td = TensorDict({}, batch_size=[])
        >>> mixture.log_prob(td, torch.tensor([[0.0], [1.0]])).exp()  # 0.5/4 + 0.5/1, then 0.5/4
        tensor([0.6250, 0.1250])
    """

    def __init__(self, samplers: Sequence[PolicySampler], *, weights: Sequence[float] | Tensor) -> None:
        samplers = tuple(samplers)
        if len(samplers) == 0:
            raise ValueError("samplers must contain at least one component sampler.")
        for i, sampler in enumerate(samplers):
            if not callable(getattr(sampler, "log_prob", None)) or not callable(
                getattr(sampler, "sample", None)
            ):
                raise TypeError(
                    f"samplers[{i}] ({type(sampler).__name__}) must implement sample(tensordict, "
                    f"num_samples) and log_prob(tensordict, action)."
                )
            if not getattr(sampler, "has_log_prob", True):
                raise ValueError(
                    f"samplers[{i}] ({type(sampler).__name__}) has no tractable log-probability; "
                    f"a mixture component needs one."
                )
        shapes = {tuple(s.action_spec.shape) for s in samplers}
        if len(shapes) != 1:
            raise ValueError(f"samplers must share one action shape, got {sorted(shapes)}.")
        try:
            weights = torch.as_tensor(weights, dtype=torch.get_default_dtype()).detach().clone()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"weights must be a sequence of numbers, one per sampler, got {weights!r}.") from None
        if weights.shape != (len(samplers),):
            raise ValueError(
                f"weights must hold one weight per sampler ({len(samplers)}), got shape "
                f"{tuple(weights.shape)}."
            )
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or not bool(
            weights.sum() > 0
        ):
            raise ValueError(
                f"weights must be finite, non-negative and not all zero, got {weights.tolist()}."
            )
        super().__init__(None, action_spec=samplers[0].action_spec)
        # The mixture owns nothing: its components are referenced, unregistered.
        self.__dict__["samplers"] = samplers
        self.register_buffer("log_weights", (weights / weights.sum()).log(), persistent=False)

    def subsamplers(self) -> tuple[PolicySampler, ...]:
        return self.samplers

    @property
    def weights(self) -> Tensor:
        return self.log_weights.exp()

    def log_prob(self, tensordict: TensorDictBase, action: Tensor) -> Tensor:
        """Exact mixture log-density ``logsumexp_i(log w_i + log q_i(a|s))`` of ``action``."""
        terms = [
            self.log_weights[i] + sampler.log_prob(tensordict, action)
            for i, sampler in enumerate(self.samplers)
        ]
        return torch.logsumexp(torch.stack(terms, 0), dim=0)

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``num_samples`` mixture draws per state ``[n, *B, *A]`` and their exact log-density ``[n, *B]``."""
        num_samples = check_positive_int("num_samples", num_samples)
        batch_shape = tensordict.batch_size
        candidates = torch.stack(
            [s.sample(tensordict, num_samples, generator=generator)[0] for s in self.samplers], 0
        )
        total = num_samples * batch_shape.numel()
        choice = torch.multinomial(
            self.log_weights.exp(), total, replacement=True, generator=generator
        ).to(candidates.device)
        action_ndim = candidates.ndim - 2 - len(batch_shape)
        index = choice.reshape(1, num_samples, *batch_shape, *([1] * action_ndim))
        index = index.expand(1, *candidates.shape[1:])
        actions = candidates.gather(0, index).squeeze(0)
        return actions, self.log_prob(tensordict, actions)


def defensive_proposal(
    actor: PolicySampler,
    *,
    action_spec: Bounded,
    uniform_weight: float = 0.5,
    observation_dim: int | None = None,
    num_cells: Sequence[int] = (256, 256),
) -> MixtureSampler:
    """The importance proposal ``q = w U(A) + (1 − w) g`` of an actor: ``g`` is the actor itself when
    it has a density, else a tanh-Gaussian fitted next to it.

    SVGD and Langevin samples have no tractable density, so a ``GaussianSampler`` (whose loss pulls it
    towards ``exp(Q/α)``, the distribution the proposal should approximate) stands in for them; a
    ``SoftQLoss`` trains it as ``loss_proposal``. The uniform component keeps the importance weights
    bounded where ``g`` has no mass (Hesterberg, 1995).

    Args:
        actor: the loss's actor.

    Keyword Args:
        action_spec: the bounded action box.
        uniform_weight: ``w`` in ``(0, 1]``.
        observation_dim: input size of the fitted Gaussian's network (needed when the actor has no density).
        num_cells: hidden sizes of the fitted Gaussian's network.
    """
    from maxent_components.samplers.gaussian import GaussianSampler

    weight = check_probability("uniform_weight", uniform_weight, open_low=True)
    fitted = actor
    if not actor.has_log_prob:
        fitted = GaussianSampler(action_spec=action_spec, observation_dim=observation_dim, num_cells=num_cells)
    return MixtureSampler([UniformSampler(action_spec=action_spec), fitted], weights=[weight, 1.0 - weight])
