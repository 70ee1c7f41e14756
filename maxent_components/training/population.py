"""A population: ``N`` members of one loss trained together, as one stacked set of parameters.

Each member is a loss built for its own seed (its networks initialised as its own run's would be).
:class:`Population` stacks their parameters and buffers on a leading member dimension
(``TensorDict.from_modules``) and evaluates the one template loss under ``torch.vmap`` over it
(``randomness="different"``: each member draws its own noise). Adam, Polyak averaging and the
temperature's loss are element-wise, so members never mix: a gradient of member ``k``'s losses reaches
only member ``k``'s slice of every tensor. One policy call, one loss call and one optimiser step serve
all ``N`` members, which is where the throughput comes from on small networks (``benchmarks/``).

:func:`member_replay_buffer` and :func:`member_minibatches` keep one TorchRL replay buffer for all
members, each member's transitions on the rows of its own residue class, sampled with independent
indices per member.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import Tensor, nn

from maxent_components.checks import check_positive_int
from maxent_components.training.builders import uniform_replay_buffer

__all__ = ["Population", "PopulationPolicy", "member_minibatches", "member_replay_buffer"]


@contextlib.contextmanager
def _swapped_into(module: nn.Module, params: TensorDictBase) -> Iterator[nn.Module]:
    """Run ``module`` with the tensors of ``params`` in place of its own, restoring them afterwards.

    A ``TensorDictParams`` child (a loss's Q parameters) gets the matching sub-tensordict of
    ``params`` as its storage; every other leaf goes into its owner's ``_parameters`` or
    ``_buffers``. Unlike ``TensorDict.to_module``, nothing is ever written back into ``params``:
    the restore puts the module's own objects back by reference.
    """
    saved: list[tuple[Any, str, Any]] = []

    def swap(owner: nn.Module, node: TensorDictBase) -> None:
        for name, value in node.items():
            child = owner._modules.get(name) if isinstance(value, TensorDictBase) else None
            if isinstance(child, TensorDictBase):  # TensorDictParams: its storage is the tensordict
                saved.append((child, "_param_td", child._param_td))
                child._param_td = value
            elif child is not None:
                swap(child, value)
            else:
                slots = owner._parameters if name in owner._parameters else owner._buffers
                saved.append((slots, name, slots[name]))
                slots[name] = value

    try:
        swap(module, params)
        yield module
    finally:
        for owner, name, value in reversed(saved):
            if isinstance(owner, dict):
                owner[name] = value
            else:
                setattr(owner, name, value)


def _owner(module: nn.Module, key: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    """``(id of the persistent object holding the leaf, its key there)``: a submodule, or a
    ``TensorDictParams`` child with the rest of the key (never a temporary view, whose id could be reused)."""
    for index, name in enumerate(key[:-1]):
        child = module._modules.get(name)
        if child is None or isinstance(child, TensorDictBase):
            return id(module if child is None else child), key[index + (0 if child is None else 1):]
        module = child
    return id(module), key[-1:]


class Population(nn.Module):
    """The members ``losses`` (one loss each, built alike) as one stacked loss.

    Args:
        losses: ``N`` losses of the same structure; the first is the template the others' tensors are
            swapped into. A submodule shared inside a loss (the actor's temperature is the loss's) is
            stacked once.

    Attributes:
        params: the stacked parameters and buffers ``[N, ...]`` (a ``TensorDict``); its
            ``nn.Parameter`` leaves are what the optimiser steps (:meth:`parameters`).
    """

    def __init__(self, losses: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(losses) < 1:
            raise ValueError("a population needs at least one member loss.")
        self.num_members = len(losses)
        self.__dict__["template"] = losses[0]  # not registered: its own tensors are swapped out
        stacked = TensorDict.from_modules(*losses, as_module=False, lock=False)
        seen, shared = set(), []
        for key in stacked.keys(include_nested=True, leaves_only=True):
            key = (key,) if isinstance(key, str) else tuple(key)
            owner = _owner(losses[0], key)
            if owner in seen:
                shared.append(key)
            seen.add(owner)
        self.params = stacked.exclude(*shared) if shared else stacked
        keys = [(k,) if isinstance(k, str) else tuple(k) for k in self.params.keys(include_nested=True, leaves_only=True)]
        self._target_pairs = [(key, (key[0][len("target_"):], *key[1:])) for key in keys if key[0].startswith("target_")]
        self._parameters_list = nn.ParameterList(
            [leaf for leaf in self.params.values(include_nested=True, leaves_only=True) if isinstance(leaf, nn.Parameter)]
        )

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        return iter(self._parameters_list)

    @contextlib.contextmanager
    def swapped(self, params: TensorDictBase | None = None) -> Iterator[nn.Module]:
        """The template with ``params`` (default: all members, stacked) in place of its own tensors.

        The members' own tensors are swapped in (:func:`_swapped_into`), so in-place changes (a
        schedule's count) reach them.
        """
        with _swapped_into(self.template, self.params if params is None else params):
            yield self.template

    def member(self, index: int):
        """The template with member ``index``'s tensors, for evaluation, figures and export."""
        return self.swapped(self.params[index])

    def loss(self, batch: TensorDictBase) -> TensorDictBase:
        """The losses of a member-major batch ``[N, *B]``: a ``TensorDict`` ``[N]`` of every member's
        ``loss_*`` terms and scalar diagnostics (one ``torch.vmap`` over the members)."""
        template = self.template

        def one(params: TensorDictBase, data: TensorDictBase) -> TensorDictBase:
            with _swapped_into(template, params):
                out = template(data)
            return out.select(*[key for key, value in out.items() if value.ndim == 0])

        return torch.vmap(one, randomness="different")(self.params, batch)

    def act(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Each member's actor on its own row of ``tensordict`` ``[N, ...]``: the actions written in place."""
        template = self.template

        def one(params: TensorDictBase, data: TensorDictBase) -> TensorDictBase:
            with _swapped_into(template, params):
                return template.actor(data.copy())

        acted = torch.vmap(one, randomness="different")(self.params, tensordict.select(*template.actor.in_keys))
        tensordict.update(acted.select(*template.actor.out_keys, strict=False))
        return tensordict

    def update_targets(self, updater) -> None:
        """One step of TorchRL's target ``updater`` (built on the template) on the stacked tensors:
        ``SoftUpdate``'s Polyak average or ``HardUpdate``'s copy every ``interval + 1`` steps, element-wise."""
        from torchrl.objectives import HardUpdate

        leaves = dict(self.params.items(include_nested=True, leaves_only=True))
        targets = [leaves[target] for target, _ in self._target_pairs]
        sources = [leaves[source] for _, source in self._target_pairs]
        with torch.no_grad():
            if isinstance(updater, HardUpdate):  # TorchRL's counting: copy when the counter reaches the interval
                if updater.counter == updater.value_network_update_interval:
                    torch._foreach_copy_(targets, sources)
                    updater.counter = 0
                else:
                    updater.counter += 1
            else:
                torch._foreach_lerp_(targets, sources, 1.0 - updater.eps)

    def member_state_dict(self, index: int) -> dict:
        """Member ``index``'s loss state dict, as a single run of its seed would save it."""
        with self.member(index) as loss:
            return {key: value.detach().clone() for key, value in loss.state_dict().items()}

    def first_batch_checks(self, batch: TensorDictBase) -> None:
        """The template's first-batch checks on member 0's rows (the checks read values on the host,
        which ``vmap`` cannot); the other members' rows come from the same pipeline."""
        with self.member(0) as loss:
            loss(batch[0])


class PopulationPolicy(TensorDictModuleBase):
    """A collector's policy over the ``N`` environments of a population: row ``k`` acts with member ``k``."""

    def __init__(self, population: Population) -> None:
        super().__init__()
        self.population = population
        self.in_keys = list(population.template.actor.in_keys)
        self.out_keys = list(population.template.actor.out_keys)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self.population.act(tensordict)


def member_replay_buffer(capacity: int, *, members: int, batch_size: int, device="cpu"):
    """One uniform replay buffer for ``members`` members: ``capacity`` transitions each, member ``k``'s
    on the rows ``r ≡ k (mod members)`` (batches ``[T, members]`` are written step-major)."""
    check_positive_int("members", members)
    return uniform_replay_buffer(check_positive_int("buffer_size", capacity) * members, batch_size=batch_size,
                                 device=device)


def member_minibatches(buffer, count: int, *, members: int, generator: torch.Generator | None = None):
    """``count`` member-major minibatches ``[members, batch_size]`` of a :func:`member_replay_buffer`,
    each member's rows drawn uniformly from its own transitions with its own indices."""
    steps = len(buffer) // members
    rows = buffer.batch_size
    offsets = torch.arange(members).unsqueeze(-1)
    for _ in range(count):
        index: Tensor = torch.randint(0, steps, (members, rows), generator=generator) * members + offsets
        yield buffer.storage[index.reshape(-1)].reshape(members, rows)
