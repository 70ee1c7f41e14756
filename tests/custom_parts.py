"""A user's own part, for the test that plugs it into a recipe from the command line only."""

from __future__ import annotations

from maxent_components.samplers import GaussianSampler


class BoundedScaleGaussianSampler(GaussianSampler):
    """A tanh-Gaussian sampler whose pre-tanh scale is at most ``max_scale`` (an example of a user's class)."""

    def __init__(self, *args, max_scale: float = 2.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_scale = float(max_scale)

    def distribution_params(self, tensordict):
        loc, scale = super().distribution_params(tensordict)
        return loc, scale.clamp(max=self.max_scale)


class PlainGaussianSampler(GaussianSampler):
    """A user's tanh-Gaussian sampler that names its arguments (no ``**kwargs``): it takes the
    options of the ``gaussian`` group, not those of ``svgd``."""

    def __init__(self, *, action_spec, observation_dim=None, num_cells=(256, 256), num_loss_samples: int = 1,
                 alpha=None) -> None:
        super().__init__(action_spec=action_spec, observation_dim=observation_dim, num_cells=num_cells,
                         num_loss_samples=num_loss_samples, alpha=alpha)
