"""A diffusion policy with a bound on its entropy: DIME's policy."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn
from torchrl.envs.utils import exploration_type

from maxent_components.checks import check_positive_float, check_positive_int, check_probability
from maxent_components.modules.qfunction import QFunction
from maxent_components.samplers._continuous import _DETERMINISTIC, ContinuousSampler
from maxent_components.temperature import Temperature
from maxent_components.validation import check_nonempty

__all__ = ["DenoisingNetwork", "DiffusionSampler", "cosine_noise_schedule"]


def cosine_noise_schedule(num_steps: int, *, offset: float = 0.008, max_noise: float = 0.999) -> Tensor:
    """Per-step noise levels ``γ_k = 1 − ᾱ(t_{k+1})/ᾱ(t_k)``, ``t_k = k/K``, of the cosine schedule
    ``ᾱ(t) = cos²(π/2 · (t + c)/(1 + c))`` (Nichol & Dhariwal, 2021, "Improved Denoising Diffusion
    Probabilistic Models", eq. 17), capped at ``max_noise``. Returns ``[K]``, increasing in ``k``.

    Examples:
        >>> cosine_noise_schedule(4)
        tensor([0.1530, 0.4170, 0.7079, 0.9990])
    """
    num_steps = check_positive_int("num_steps", num_steps)
    max_noise = check_probability("max_noise", max_noise, open_low=True, open_high=True)
    t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    signal = torch.cos((t + offset) / (1 + offset) * math.pi / 2).square()
    return (1 - signal[1:] / signal[:-1]).clamp(1e-6, max_noise).float()


class DenoisingNetwork(nn.Module):
    """``f_θ(s, x, t) = −x/σ² + MLP([s, x, e(t)])``: a time-conditioned estimate of the score of the
    noised action at time ``t ∈ [0, 1]``, called as ``net(observation, x, t)``.

    ``e(t) = (t, cos πjt, sin πjt)_{j=1..F}``. The first term is the score of the prior ``N(0, σ²I)``
    and the MLP's last layer starts at zero, so an untrained sampler leaves its prior nearly as it is
    (a broad policy, as a fresh Gaussian's) instead of a random drift.

    Examples:
        >>> net = DenoisingNetwork(3, 2, num_cells=(16,))
        >>> net(torch.zeros(5, 3), torch.ones(5, 2), torch.tensor(0.5))[0]  # untrained: the prior's score −x/σ²
        tensor([-1., -1.], grad_fn=<SelectBackward0>)
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        *,
        num_cells: Sequence[int] = (256, 256),
        prior_std: float = 1.0,
        time_frequencies: int = 8,
        activation_class: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.prior_precision = 1.0 / check_positive_float("prior_std", prior_std) ** 2
        frequencies = torch.arange(1, check_positive_int("time_frequencies", time_frequencies) + 1)
        self.register_buffer("frequencies", math.pi * frequencies)
        sizes = [observation_dim + action_dim + 1 + 2 * time_frequencies, *num_cells]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), activation_class()]
        last = nn.Linear(sizes[-1], action_dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*layers, last)

    def forward(self, observation: Tensor, x: Tensor, t: Tensor) -> Tensor:
        angles = t.reshape(-1, 1).to(x.dtype) * self.frequencies.to(x.dtype)  # [1, F]
        features = torch.cat([t.reshape(1, 1).to(x.dtype), angles.cos(), angles.sin()], -1)
        features = features.expand(*x.shape[:-1], features.shape[-1])
        return self.mlp(torch.cat([observation, x, features], -1)) - self.prior_precision * x


class DiffusionSampler(ContinuousSampler):
    """A ``K``-step denoising chain from a Gaussian prior, conditioned on the state, trained towards
    ``exp(Q(s, ·)/α)`` on DIME's objective: the policy of diffusion-based maximum-entropy RL (DIME;
    Celik et al., 2025, "DIME: Diffusion-Based Maximum Entropy Reinforcement Learning", ICML).

    **The chain** runs in the unconstrained space ``u`` of :class:`~maxent_components.samplers.gaussian.GaussianSampler`
    (``a = low + (high − low)(tanh u + 1)/2``). A fixed *noising* process with the noise levels
    ``γ_k`` of :func:`cosine_noise_schedule` and prior scale ``σ``,

    .. math:: \\vec p(x_{k+1} | x_k) = N\\big((1 − γ_k/2)\\, x_k,\\; σ² γ_k I\\big),

    is the Euler–Maruyama discretisation of the variance-preserving SDE
    ``dx = −½β x dt + σ√β dW`` (Song et al., 2021), which carries any law towards ``N(0, σ²I)``.
    The policy is the Euler–Maruyama discretisation of its time reversal, with a learned score
    ``f_θ(s, x, t)`` (:class:`~maxent_components.samplers.diffusion.DenoisingNetwork`) for ``∇ log p_t``:

    .. math:: x_K ∼ N(0, σ²I), \\quad x_k = x_{k+1} + γ_k\\big(x_{k+1}/2 + σ² f_θ(s, x_{k+1}, t_{k+1})\\big) + σ\\sqrt{γ_k}\\, ξ_k,

    ``ξ_k ∼ N(0, I)``, ``t_k = k/K``; the action is ``a(x_0)``. Every step is one call of the network
    on every sample of every state; nothing is read on the host.

    **The reported log-probability is a bound.** The marginal ``π_θ(x_0|s)`` is intractable. For any
    conditional law of the path given ``x_0`` (Gibbs' inequality), here the noising process,
    ``E[\\log π_θ(x_0|s)] ≤ E[ℓ]`` with

    .. math:: ℓ = \\log N(x_K; 0, σ²I) + Σ_{k<K} \\big[\\log π_θ(x_k | x_{k+1}, s) − \\log \\vec p(x_{k+1} | x_k)\\big]

    over the sampled path (DIME's lower bound on the entropy of a diffusion policy). :meth:`sample` returns
    ``ℓ − Σ_d log|da_d/du_d|`` as ``log_prob``: an estimate whose mean is an *upper* bound on
    ``E[log π(a|s)]``, so ``−mean(log_prob)`` (the ``entropy`` of :meth:`loss`) is a *lower* bound on
    the policy's entropy, tight when the chain is the exact time reversal of the noising process.

    **Training** (DIME's policy improvement): :meth:`loss` is SAC's
    ``loss_actor = E[α log_prob − min_i Q_i(s, a)]`` with that ``log_prob``, reparameterised through
    the whole chain. Its value is ``α · KL(π_θ(x_{0:K}|s) ‖ p̄(x_{0:K}|s)) − α log Z(s)``, where
    ``p̄`` is the noising process started at ``exp(Q(s, ·)/α)/Z(s)`` (in ``u``-space, with the
    tanh log-Jacobian) read backwards: DIME's KL between the policy's path and the time reversal of
    the noising of the target. So ``PolicySoftValue`` and ``AutoTemperature`` work unchanged.

    Args:
        qvalue_network: a TensorDict module reading ``"observation"`` and ``"action"`` and writing
            ``"state_action_value"`` ``[*B, 1]`` (referenced, not owned; omit it inside a ``SoftQLoss``).
        policy_network: the denoising network ``(observation, x, t) ↦ f``, the score estimate, with
            ``x`` and ``f`` ``[*N, D]`` and ``t`` a 0-dim time in ``[0, 1]``; a
            :class:`~maxent_components.samplers.diffusion.DenoisingNetwork` built from
            ``observation_dim`` and ``num_cells`` when omitted.

    Keyword Args:
        action_spec: a bounded continuous box (``torchrl.data.Bounded``).
        alpha: the temperature ``α`` (float or Temperature; omit it inside a ``SoftQLoss``).
        num_steps: ``K`` denoising steps (DIME's released configuration: 16).
        prior_std: ``σ``, the scale of the prior and of the noising process in ``u``-space.
        max_noise: cap of the last noise level ``γ_{K−1}`` (the cosine schedule's reaches 1).
        num_loss_samples: actions per state in :meth:`loss`.
        observation_dim: input size of the default network (needed without ``policy_network``).
        num_cells: hidden sizes of the default network.

    Under a deterministic exploration type, ``forward`` runs the chain with all noise set to zero
    (``x_K = 0``, ``ξ_k = 0``) and writes that path's ``ℓ``-based ``log_prob``.

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> from torchrl.data import Bounded
        >>> q = TensorDictModule(lambda s, a: -(a - 0.5).square().sum(-1, keepdim=True),
        ...                      in_keys=["observation", "action"], out_keys=["state_action_value"])
        >>> sampler = DiffusionSampler(q, action_spec=Bounded(-1, 1, shape=(2,)), alpha=0.1,
        ...                            observation_dim=3, num_cells=(32,), num_steps=4)
        >>> td = TensorDict(observation=torch.zeros(4, 3), batch_size=[4])
        >>> actions, log_prob = sampler.sample(td, num_samples=5)
        >>> actions.shape, log_prob.shape
        (torch.Size([5, 4, 2]), torch.Size([5, 4]))
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
        num_steps: int = 16,
        prior_std: float = 1.0,
        max_noise: float = 0.999,
        num_loss_samples: int = 1,
        observation_dim: int | None = None,
        num_cells: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__(qvalue_network, action_spec=action_spec, alpha=alpha)
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.prior_std = check_positive_float("prior_std", prior_std)
        max_noise = check_probability("max_noise", max_noise, open_low=True, open_high=True)
        self.num_loss_samples = check_positive_int("num_loss_samples", num_loss_samples)
        self.policy_network = self._policy_or_default(
            policy_network,
            observation_dim,
            lambda obs_dim: DenoisingNetwork(obs_dim, self.action_dim, num_cells=num_cells, prior_std=self.prior_std),
        )
        gammas = cosine_noise_schedule(self.num_steps, max_noise=max_noise).to(self.low.dtype)
        self.register_buffer("gammas", gammas)
        self.register_buffer("times", torch.arange(self.num_steps + 1, dtype=self.low.dtype) / self.num_steps)

    def _chain(
        self,
        tensordict: TensorDictBase,
        num_samples: int,
        generator: torch.Generator | None,
        *,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """``x_0 [n, *B, D]`` and ``ℓ [n, *B]`` of ``num_samples`` chains per state."""
        obs = tensordict.get(self.tensor_keys.observation)
        shape = (num_samples, *tensordict.batch_size, self.action_dim)
        obs = obs.expand(num_samples, *obs.shape)
        sigma = self.prior_std
        if deterministic:
            noise = obs.new_zeros((self.num_steps + 1, *shape))
        else:
            noise = torch.randn((self.num_steps + 1, *shape), generator=generator, dtype=obs.dtype, device=obs.device)
        x = sigma * noise[-1]
        # log N(x_K; 0, σ²I), then per step log π(x_k | x_{k+1}) − log p(x_{k+1} | x_k): the two Gaussians
        # have the same covariance σ²γ_k I, so their normalisers cancel; the first is −½‖ξ_k‖².
        terms = -0.5 * noise[-1].square() - math.log(sigma) - 0.5 * math.log(2 * math.pi)
        gammas = self.gammas.to(obs.dtype)
        for k in reversed(range(self.num_steps)):
            g = gammas[k]
            f = self.policy_network(obs, x, self.times[k + 1])
            if f.shape != x.shape:
                raise ValueError(f"policy_network must return shape {tuple(x.shape)}, got {tuple(f.shape)}.")
            x_next = x + g * (0.5 * x + sigma**2 * f) + sigma * g.sqrt() * noise[k]
            terms = terms - 0.5 * noise[k].square() + (x - (1 - 0.5 * g) * x_next).square() / (2 * sigma**2 * g)
            x = x_next
        return x, terms.sum(-1)

    def sample(
        self,
        tensordict: TensorDictBase,
        num_samples: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Reparameterised actions ``[n, *B, *action_shape]`` and DIME's bound as ``log_prob`` ``[n, *B]``:
        a one-path estimate whose mean is at least ``E[log π(a|s)]`` (class docstring)."""
        num_samples = check_positive_int("num_samples", num_samples)
        x, ell = self._chain(tensordict, num_samples, generator)
        return self.squash(x), ell - self.log_abs_det_jacobian(x)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """One action and its ``log_prob``; the noise-free chain under a deterministic exploration type."""
        if exploration_type() in _DETERMINISTIC:
            x, ell = self._chain(tensordict, 1, None, deterministic=True)
            tensordict.set(self.tensor_keys.action, self.squash(x)[0])
            tensordict.set(self.tensor_keys.action_log_prob, (ell - self.log_abs_det_jacobian(x))[0])
            return tensordict
        return super().forward(tensordict)

    def loss(
        self,
        tensordict: TensorDictBase,
        *,
        qvalue: QFunction | None = None,
        generator: torch.Generator | None = None,
    ) -> TensorDict:
        """``loss_actor = E[α log_prob − min_i Q_i(s, a)]`` (DIME's objective, class docstring) and the
        detached ``alpha`` and ``entropy`` (the mean of ``−log_prob``: the lower bound on the entropy).

        ``qvalue``: the Q function to train against (default: the bound one), with detached parameters.
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
