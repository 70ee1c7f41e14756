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

__all__ = ["MLPPlan", "mlp_plan"]

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
    ``keys``, in order; ``None`` for the module's own parameters).

    Built by :func:`mlp_plan`, which returns ``None`` for a module it cannot run this way.
    """

    def __init__(self, module: nn.Module, steps: list, own: list[Tensor]) -> None:
        self.module, self._steps, self._own = module, steps, own

    def __call__(self, inputs: Sequence[Tensor], params: Sequence[Tensor] | None = None) -> Tensor:
        params = self._own if params is None else params
        x = inputs[0] if len(inputs) == 1 else torch.cat(list(inputs), -1)
        for step in self._steps:
            if type(step) is tuple:
                weight, bias = step
                x = F.linear(x, params[weight], None if bias is None else params[bias])
            else:
                x = step(x)
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
                weight, bias = step
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
    named = dict(module.named_parameters(recurse=True))
    if keys is None:  # the module's own parameters, in named_parameters order
        keys = [(*prefix, *name.split(".")) for name in named]
        own = list(named.values())
    else:
        own = []
    index = {tuple(key): i for i, key in enumerate(keys)}
    used, steps = set(), []
    for name, layer in module.named_children():
        if type(layer) is nn.Linear:
            weight = index.get((*prefix, name, "weight"))
            bias = index.get((*prefix, name, "bias")) if layer.bias is not None else None
            if weight is None or (layer.bias is not None and bias is None):
                return None
            used.update(i for i in (weight, bias) if i is not None)
            steps.append((weight, bias))
        elif type(layer) in _FUNCTIONS and not getattr(layer, "inplace", False):
            steps.append(_FUNCTIONS[type(layer)])
        elif not any(True for _ in layer.parameters()) and not any(True for _ in layer.buffers()):
            steps.append(layer)  # a parameter-free layer: called as it is
        else:
            return None
    if used != set(range(len(keys))):  # a parameter or buffer the plan would not read
        return None
    return MLPPlan(module, steps, own)


def mlp_plan(network: nn.Module, keys: Sequence[tuple[str, ...]] | None) -> MLPPlan | None:
    """The :class:`MLPPlan` of a ``TensorDictModule`` wrapping an MLP, for parameter sets with leaf
    ``keys`` (as in ``TensorDict.from_module(network)``; ``None``: the network's own), or ``None`` if
    its module is not a plain MLP. Built once per network and key set, then reused."""
    plans = network.__dict__.get(_PLANS)
    if plans is None:
        plans = network.__dict__[_PLANS] = {}
    cache_key = None if keys is None else tuple(tuple(k) for k in keys)
    if cache_key not in plans:
        module = getattr(network, "module", None)
        plans[cache_key] = None if module is None else _build(module, cache_key, ("module",))
    plan = plans[cache_key]
    if plan is not None and _hooked(plan.module):  # hooks expect module calls: the module is called
        return None
    return plan


def _hooked(module: nn.Module) -> bool:
    from torch.nn.modules import module as nn_module

    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())
