"""Running a module with other parameters, cheaply.

Losses hold Q parameters functionally (online, target, ensembles ``[N, ...]``) and run the one Q
module with whichever set they need. ``params.to_module(module)`` from tensordict does this in
general; :func:`swapped_parameters` does only the swap, assigning into the owning modules'
``_parameters`` / ``_buffers`` dictionaries and restoring them on exit. Where each parameter lives
is resolved once per module and key set (:func:`parameter_slots`), so a swap is a few dictionary
assignments; it works unchanged under ``torch.vmap`` over a stack of parameters. Timings are in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tensordict import TensorDictBase
from torch import Tensor, nn

__all__ = ["ParameterSlots", "parameter_leaves", "parameter_slots", "swapped_parameters"]


class ParameterSlots:
    """Where the parameters and buffers named by ``keys`` live in ``module``.

    ``keys`` are the leaf keys of ``TensorDict.from_module(module)`` (tuples of names); each is
    resolved to its owning submodule and slot name once. :meth:`swapped` then puts tensors given in
    the same order into those slots for the length of a ``with`` block.
    """

    def __init__(self, module: nn.Module, keys: Sequence[tuple[str, ...]]) -> None:
        self.keys = tuple(keys)
        self._slots: list[tuple[dict, str]] = []  # the owning dictionary (_parameters or _buffers), the name
        for path in self.keys:
            owner = module
            for name in path[:-1]:
                if name not in owner._modules:
                    raise KeyError(f"{type(module).__name__} has no parameter or buffer {'.'.join(path)!r}.")
                owner = owner._modules[name]
            slots = next((d for d in (owner._parameters, owner._buffers) if path[-1] in d), None)
            if slots is None:
                raise KeyError(f"{type(module).__name__} has no parameter or buffer {'.'.join(path)!r}.")
            self._slots.append((slots, path[-1]))

    @contextmanager
    def swapped(self, tensors: Sequence[Tensor]) -> Iterator[None]:
        """Run the module with ``tensors`` (one per key, in order) in place of its own."""
        saved = []
        try:
            for (slots, name), value in zip(self._slots, tensors, strict=True):
                saved.append((slots, name, slots[name]))
                slots[name] = value
            yield
        finally:
            for slots, name, old in reversed(saved):
                slots[name] = old


#: The attribute under which a module keeps its plans. On the module itself, not in a global
#: weak dictionary: ``torch.compile`` guards on what a traced function reads, and a guard on a global
#: weak dictionary's entries broke when another module's entry came or went. A ``deepcopy`` of the
#: module copies its plans along with the slot dictionaries they point into, so they stay its own.
_PLANS = "_maxent_parameter_slots"


def parameter_slots(module: nn.Module, keys: Sequence[tuple[str, ...]]) -> ParameterSlots:
    """The :class:`ParameterSlots` of ``module`` for ``keys``, resolved on first use and then reused."""
    keys = tuple(keys)
    plans = module.__dict__.get(_PLANS)
    if plans is None:
        plans = module.__dict__[_PLANS] = {}
    plan = plans.get(keys)
    if plan is None:
        plan = plans[keys] = ParameterSlots(module, keys)
    return plan


def parameter_leaves(params: TensorDictBase) -> tuple[list[tuple[str, ...]], list[Tensor]]:
    """The leaf keys (tuples) and tensors of a parameter ``TensorDict`` or ``TensorDictParams``, in
    ``keys(include_nested=True, leaves_only=True)`` order.

    Read straight from the tensordicts' own storage where they have one (a few microseconds for an
    MLP, against ≈ 80 µs through the public iterators, which a loss would pay on every Q
    evaluation); any other tensordict type goes through the public API.
    """
    keys: list[tuple[str, ...]] = []
    leaves: list[Tensor] = []

    def walk(td, prefix: tuple[str, ...]) -> bool:
        storage = getattr(getattr(td, "_param_td", td), "_tensordict", None)
        if type(storage) is not dict:
            return False
        for name, value in storage.items():
            if isinstance(value, TensorDictBase):
                if not walk(value, (*prefix, name)):
                    return False
            elif isinstance(value, Tensor):
                keys.append((*prefix, name))
                leaves.append(value)
            else:
                return False
        return True

    if not walk(params, ()):
        keys = [(k,) if isinstance(k, str) else tuple(k) for k in params.keys(include_nested=True, leaves_only=True)]
        leaves = list(params.values(include_nested=True, leaves_only=True))
    return keys, leaves


@contextmanager
def swapped_parameters(module: nn.Module, params: TensorDictBase) -> Iterator[nn.Module]:
    """Run ``module`` with the tensors of ``params`` (keys as in ``TensorDict.from_module``).

    Every leaf of ``params`` must name an existing parameter or buffer of ``module`` (else a
    ``KeyError`` naming it); the original tensors are put back when the block exits, also on an
    exception.
    """
    keys, values = parameter_leaves(params)
    with parameter_slots(module, keys).swapped(values):
        yield module
