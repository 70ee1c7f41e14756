"""Policy networks of the amortized continuous samplers.

- :func:`tanh_normal_actor_network`: ``s ↦ (μ(s), σ(s))`` of the Gaussian whose tanh image is the
  policy of :class:`~maxent_components.samplers.gaussian.GaussianSampler` (the SAC actor).
- :class:`NoiseInputNetwork` / :func:`noise_input_policy_network`: the sampling network
  ``u = f_φ(ξ; s)``, ``ξ ∼ N(0, I)``, of :class:`~maxent_components.samplers.svgd.SVGDSampler`
  (Haarnoja et al., 2017, section 3.2). It returns the pre-squash ``u``; the sampler applies the
  tanh map onto the action box, so that the SVGD kernel lives in the same unconstrained space as
  the target density.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import NormalParamExtractor
from torch import Tensor, nn
from torchrl.modules import MLP

__all__ = ["NoiseInputNetwork", "noise_input_policy_network", "tanh_normal_actor_network"]


class NoiseInputNetwork(nn.Module):
    """``u = f(ξ; s)``: a network of the concatenation ``[s, ξ]``, called as ``net(observation, noise)``.

    With ``residual=True`` (requires ``noise_dim >= action_dim``) the output is
    ``network([s, ξ]) + ξ_{1:D}`` (the first ``D = action_dim`` noise coordinates). At initialisation, when the network's output is small, the sampler is
    then close to ``tanh(N(0, I))`` mapped onto the box — broad, with particles in every mode's
    basin. Without it, a freshly initialised network maps all noise to a narrow cloud, and SVGD,
    whose kernel interaction vanishes between distant particles, can settle on whichever mode that
    cloud started in.

    Args:
        network: any module mapping ``[*B, observation_dim + noise_dim]`` to ``[*B, action_dim]``.

    Keyword Args:
        residual: add the noise to the output.

    Examples:
        >>> net = noise_input_policy_network(3, 2, num_cells=(16,))
        >>> net(torch.zeros(5, 3), torch.randn(5, 2)).shape
        torch.Size([5, 2])
    """

    def __init__(self, network: nn.Module, *, residual: bool = False) -> None:
        super().__init__()
        self.network = network
        self.residual = bool(residual)

    def forward(self, observation: Tensor, noise: Tensor) -> Tensor:
        out = self.network(torch.cat([observation, noise], dim=-1))
        if self.residual:
            if noise.shape[-1] < out.shape[-1]:
                raise ValueError(
                    f"a residual noise-input network needs noise_dim >= action_dim, got noise "
                    f"{tuple(noise.shape)} and output {tuple(out.shape)}."
                )
            out = out + noise[..., : out.shape[-1]]
        return out


def noise_input_policy_network(
    observation_dim: int,
    action_dim: int,
    *,
    noise_dim: int | None = None,
    num_cells: Sequence[int] = (256, 256),
    activation_class: type[nn.Module] = nn.ReLU,
) -> NoiseInputNetwork:
    """An MLP sampling network ``u = f_φ(ξ; s)`` with ``noise_dim`` (default ``action_dim``) noise inputs.

    Residual in the noise (``u = MLP([s, ξ]) + ξ_{1:D}``, see :class:`NoiseInputNetwork`) whenever
    ``noise_dim >= action_dim``.
    """
    noise_dim = action_dim if noise_dim is None else noise_dim
    mlp = MLP(
        in_features=observation_dim + noise_dim,
        out_features=action_dim,
        num_cells=list(num_cells),
        activation_class=activation_class,
    )
    return NoiseInputNetwork(mlp, residual=noise_dim >= action_dim)


def tanh_normal_actor_network(
    observation_dim: int,
    action_dim: int,
    *,
    num_cells: Sequence[int] = (256, 256),
    activation_class: type[nn.Module] = nn.ReLU,
    scale_lb: float = 1e-4,
) -> nn.Sequential:
    """An MLP ``s ↦ (μ, σ)`` (TorchRL's ``NormalParamExtractor``: ``σ = softplus`` biased to 1 at 0).

    Examples:
        >>> loc, scale = tanh_normal_actor_network(3, 2, num_cells=(16,))(torch.zeros(4, 3))
        >>> loc.shape, bool((scale > 0).all())
        (torch.Size([4, 2]), True)
    """
    mlp = MLP(
        in_features=observation_dim,
        out_features=2 * action_dim,
        num_cells=list(num_cells),
        activation_class=activation_class,
    )
    return nn.Sequential(mlp, NormalParamExtractor(scale_lb=scale_lb))
