"""Validation of TorchRL action specs, shared by every component that needs an action box."""

from __future__ import annotations

from typing import Literal

import torch
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.data import Bounded, Categorical, Composite, OneHot, TensorSpec

from maxent_components.checks import data_checks

__all__ = [
    "box_bounds",
    "box_log_volume",
    "discrete_action_encoding",
    "encode_discrete_actions",
    "gather_action_values",
]

ActionEncoding = Literal["one_hot", "categorical"]


def box_bounds(
    action_spec: TensorSpec, *, action_key: NestedKey = "action", name: str = "action_spec"
) -> tuple[Tensor, Tensor]:
    """``(low, high)`` of a bounded continuous TorchRL spec, validated and copied.

    A ``Composite`` spec is looked up at ``action_key``. Raises a ``ValueError`` naming ``name`` for
    discrete specs, unbounded specs, infinite bounds, empty boxes (``high <= low`` somewhere) and
    integer dtypes: continuous samplers and uniform estimators need a finite box of positive volume.
    """
    if isinstance(action_spec, Composite):
        try:
            action_spec = action_spec[action_key]
        except KeyError as err:
            raise ValueError(f"{name} is a Composite spec without an entry {action_key!r}.") from err
    if isinstance(action_spec, (OneHot, Categorical)):
        raise ValueError(
            f"{name} must be a bounded continuous spec (torchrl.data.Bounded), got the discrete "
            f"{type(action_spec).__name__}; for discrete actions use ExactSoftValue, "
            f"BoltzmannSampler or CategoricalSampler."
        )
    if not isinstance(action_spec, Bounded):
        raise ValueError(
            f"{name} must be a bounded continuous spec (torchrl.data.Bounded) so that the action "
            f"box has a finite volume, got {type(action_spec).__name__}."
        )
    low, high = action_spec.space.low, action_spec.space.high
    if not low.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {low.dtype}.")
    if not (bool(torch.isfinite(low).all()) and bool(torch.isfinite(high).all())):
        raise ValueError(
            f"{name} must be a bounded box with finite bounds, got low={low.tolist()}, "
            f"high={high.tolist()}."
        )
    if not bool((high > low).all()):
        raise ValueError(
            f"{name} must have high > low in every coordinate, got low={low.tolist()}, "
            f"high={high.tolist()}."
        )
    return low.detach().clone(), high.detach().clone()


def outside_box(action: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Whether each action ``[*S, *action_shape]`` lies outside the closed box ``[low, high]``: ``[*S]``."""
    action_ndim = low.dim()
    if tuple(action.shape[action.ndim - action_ndim :]) != tuple(low.shape):
        raise ValueError(
            f"action of shape {tuple(action.shape)} does not end with the action shape {tuple(low.shape)} of action_spec."
        )
    outside = (action < low) | (action > high)
    return outside.flatten(action.ndim - action_ndim).any(-1) if action_ndim else outside


def box_log_volume(low: Tensor, high: Tensor) -> Tensor:
    """``log vol(A) = Σ_i log(high_i − low_i)`` of the box ``[low, high]`` (a 0-d tensor)."""
    return (high - low).log().sum()


def discrete_action_encoding(action_spec: TensorSpec) -> tuple[ActionEncoding, int, bool]:
    """Return ``(encoding, num_actions, trailing_singleton)`` of a discrete TorchRL action spec.

    ``OneHot`` specs (the ``GymEnv`` default) encode an action as a one-hot vector of length ``|A|``;
    ``Categorical`` specs as an integer index, of shape ``[*B]``, or ``[*B, 1]`` when the spec's
    last dimension is a singleton. Any other spec raises a ``ValueError`` naming ``action_spec``.

    Examples:
        >>> from torchrl.data import Categorical, OneHot
        >>> discrete_action_encoding(OneHot(4))
        ('one_hot', 4, False)
        >>> discrete_action_encoding(Categorical(3, shape=(1,)))
        ('categorical', 3, True)
    """
    if isinstance(action_spec, OneHot):
        return "one_hot", int(action_spec.space.n), False
    if isinstance(action_spec, Categorical):
        shape = action_spec.shape
        return "categorical", int(action_spec.space.n), len(shape) > 0 and shape[-1] == 1
    raise ValueError(
        f"action_spec must be a discrete TorchRL spec (OneHot or Categorical), got "
        f"{type(action_spec).__name__}; continuous actions need a continuous sampler "
        f"(e.g. GaussianSampler or SVGDSampler)."
    )


def encode_discrete_actions(index: Tensor, action_spec: TensorSpec) -> Tensor:
    """Write integer action indices in the encoding of ``action_spec`` (one-hot or index)."""
    encoding, num_actions, trailing = discrete_action_encoding(action_spec)
    if encoding == "one_hot":
        return torch.nn.functional.one_hot(index, num_actions).to(action_spec.dtype)
    index = index.to(action_spec.dtype)
    return index.unsqueeze(-1) if trailing else index


def gather_action_values(
    q: Tensor,
    action: Tensor,
    batch: tuple[int, ...],
    *,
    encoding: ActionEncoding | None = None,
    key: NestedKey = "action",
) -> Tensor:
    """``Q(s, a)`` ``[N, *B]`` from ``Q(s, ·)`` ``[N, *B, |A|]`` and the taken action, one-hot or an index.

    ``encoding`` comes from :func:`discrete_action_encoding` of the action spec; without it, it is read
    off the action's shape (``[*B, |A|]`` one-hot; ``[*B]`` or ``[*B, 1]`` index). Index ranges are
    checked only under :func:`~maxent_components.checks.data_checks` (reading them syncs the device).
    """
    num_actions = q.shape[-1]
    shape = tuple(action.shape)
    if encoding is None:
        if shape == (*batch, num_actions) and (num_actions > 1 or action.is_floating_point()):
            encoding = "one_hot"
        elif shape in (batch, (*batch, 1)):
            encoding = "categorical"
        else:
            raise ValueError(
                f"action {key!r} of shape {list(shape)} is neither one-hot [*batch, {num_actions}] nor "
                f"an index [*batch] / [*batch, 1] for batch {list(batch)}."
            )
    if encoding == "one_hot":
        if shape != (*batch, num_actions):
            raise ValueError(f"one-hot action {key!r} must have shape {[*batch, num_actions]}, got {list(shape)}.")
        return (q * action.to(q.dtype)).sum(-1)
    if shape == (*batch, 1):
        action = action.squeeze(-1)
    elif shape != batch:
        raise ValueError(f"index action {key!r} must have shape {list(batch)} or {[*batch, 1]}, got {list(shape)}.")
    index = action.long()
    if data_checks() and bool(((index < 0) | (index >= num_actions)).any()):
        raise ValueError(f"action indices must lie in [0, {num_actions}), got values outside.")
    index = index.expand(q.shape[0], *batch).unsqueeze(-1)
    return q.gather(-1, index).squeeze(-1)
