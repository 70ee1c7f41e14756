"""Evaluating a plain MLP straight from parameter tensors, without swapping them into the module.

A loss evaluates its Q network under several parameter sets per update (online, target, every
member of an ensemble). Swapping each set into the module and calling it costs a module dispatch
per layer and a dictionary assignment per tensor, which at the sizes of RL networks is as much as
the arithmetic itself. For the networks the library builds (TorchRL's ``MLP``, or an
``nn.Sequential`` of ``Linear`` layers and parameter-free activations) :class:`MLPPlan` runs the
same operations on the tensors directly: ``torch.cat`` of the inputs (as ``MLP`` does), then
``F.linear`` and the activation per layer. The results are bitwise those of the module: the same
kernels on the same tensors, in the same order. Any other network, and any network with a forward
hook (which expects the module to be called), has no plan (``None``) and is called as a module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

__all__ = ["MLPPlan", "mlp_plan", "module_plan"]

#: activations whose module call is exactly a function of the input (what ``forward`` computes)
_FUNCTIONS: dict[type, Callable[[Tensor], Tensor]] = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid}
_PLANS = "_maxent_mlp_plans"


def _sequential(module) -> bool:
    from torchrl.modules import MLP

    if not isinstance(module, nn.Module):  # a function wrapped in a TensorDictModule
        return False
    if type(module).forward is nn.Sequential.forward:
        return True
    return isinstance(module, MLP) and type(module).forward is MLP.forward and not module._reshape_out


class MLPPlan:
    """``plan(inputs, params)``: the output of the MLP ``module`` on ``inputs`` (concatenated along the
    last dimension when several) with ``params`` in place of its own (one tensor per key of
    ``keys``, in order; ``None``: the module's own parameters, read from its layers at each call, so
    that parameters swapped into the module, e.g. by ``torch.func.functional_call``, are the ones used).

    Built by :func:`mlp_plan` or :func:`module_plan`, which return ``None`` for a module they cannot
    run this way.
    """

    def __init__(self, module: nn.Module, steps: list) -> None:
        self.module, self._steps = module, steps
        self._modules = list(module.modules())  # whose hooks would ask for the module to be called

    def hooked(self) -> bool:
        """Whether a forward hook (global or on one of the module's layers) expects module calls."""
        from torch.nn.modules import module as nn_module

        if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks:
            return True
        return any(m._forward_hooks or m._forward_pre_hooks for m in self._modules)

    def __call__(self, inputs: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
        x = inputs[0] if len(inputs) == 1 else torch.cat(list(inputs), -1)
        for step in self._steps:
            if type(step) is not tuple:
                x = step(x)
            elif params is None:
                layer = step[2]
                x = F.linear(x, layer.weight, layer.bias)
            else:
                weight, bias, _ = step
                x = F.linear(x, params[weight], None if bias is None else params[bias])
        return x

    def stacked(self, inputs: Sequence[Tensor], params: Sequence[Tensor]) -> Tensor:
        """The outputs of every member of a stack of parameter sets (each tensor ``[N, ...]``) on the
        same ``inputs``, ``[N, *inputs' leading dims, out]``: each layer one batched matrix multiply
        (``torch.baddbmm``) over the members instead of one ``F.linear`` per member."""
        x = inputs[0] if len(inputs) == 1 else torch.cat(list(inputs), -1)
        lead, members = x.shape[:-1], params[0].shape[0]
        x = x.reshape(1, -1, x.shape[-1]).expand(members, -1, -1)
        for step in self._steps:
            if type(step) is tuple:
                weight, bias, _ = step
                if bias is None:
                    x = torch.bmm(x, params[weight].transpose(1, 2))
                else:
                    x = torch.baddbmm(params[bias].unsqueeze(1), x, params[weight].transpose(1, 2))
            else:
                x = step(x)
        return x.reshape(members, *lead, x.shape[-1])


def _build(module: nn.Module, keys: Sequence[tuple[str, ...]] | None, prefix: tuple[str, ...]) -> MLPPlan | None:
    if not _sequential(module):
        return None
    if keys is None:  # the module's own parameters, in named_parameters order
        keys = [(*prefix, *name.split(".")) for name, _ in module.named_parameters(recurse=True)]
    index = {tuple(key): i for i, key in enumerate(keys)}
    steps = _steps(module, index, prefix)
    if steps is None or {i for step in steps if type(step) is tuple for i in step[:2] if i is not None} != set(range(len(keys))):
        return None  # a layer the plan cannot run, or a parameter or buffer it would not read
    return MLPPlan(module, steps)


def _steps(module: nn.Module, index: dict[tuple[str, ...], int], prefix: tuple[str, ...]) -> list | None:
    """The plan's steps for ``module``'s children (nested plain MLPs flattened into them), or ``None``."""
    steps = []
    for name, layer in module.named_children():
        if type(layer) is not nn.Linear and _sequential(layer):  # e.g. TorchRL's MLP inside a Sequential
            inner = _steps(layer, index, (*prefix, name))
            if inner is None:
                return None
            steps.extend(inner)
        elif type(layer) is nn.Linear:
            weight = index.get((*prefix, name, "weight"))
            bias = index.get((*prefix, name, "bias")) if layer.bias is not None else None
            if weight is None or (layer.bias is not None and bias is None):
                return None
            steps.append((weight, bias, layer))
        elif type(layer) in _FUNCTIONS and not getattr(layer, "inplace", False):
            steps.append(_FUNCTIONS[type(layer)])
        elif not any(True for _ in layer.parameters()) and not any(True for _ in layer.buffers()):
            steps.append(layer)  # a parameter-free layer (e.g. TorchRL's NormalParamExtractor): called as it is
        else:
            return None
    return steps


def mlp_plan(network: nn.Module, keys: Sequence[tuple[str, ...]] | None) -> MLPPlan | None:
    """The :class:`MLPPlan` of a ``TensorDictModule`` wrapping an MLP, for parameter sets with leaf
    ``keys`` (as in ``TensorDict.from_module(network)``; ``None``: the network's own), or ``None`` if
    its module is not a plain MLP. Built once per network and key set, then reused."""
    cache_key = None if keys is None else tuple(tuple(k) for k in keys)
    return _cached(network, cache_key, lambda: _build_wrapped(network, cache_key))


def module_plan(module: nn.Module) -> MLPPlan | None:
    """The :class:`MLPPlan` of a bare module (not a ``TensorDictModule``) with its own parameters, e.g. a
    policy network ``nn.Sequential(MLP(...), NormalParamExtractor())``; ``None`` if it is not a plain
    MLP (parameter-free layers are allowed) or a hook expects it to be called."""
    return _cached(module, "own", lambda: _build(module, None, ()))


def _build_wrapped(network: nn.Module, keys) -> MLPPlan | None:
    module = getattr(network, "module", None)
    return None if module is None else _build(module, keys, ("module",))


def _cached(owner: nn.Module, cache_key, build: Callable[[], MLPPlan | None]) -> MLPPlan | None:
    plans = owner.__dict__.get(_PLANS)
    if plans is None:
        plans = owner.__dict__[_PLANS] = {}
    if cache_key not in plans:
        plans[cache_key] = build()
    plan = plans[cache_key]
    if plan is not None and plan.hooked():  # hooks expect module calls: the module is called
        return None
    return plan
