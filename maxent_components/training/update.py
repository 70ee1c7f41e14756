"""One gradient update of a loss, the same for every algorithm, optionally under ``torch.compile``.

An update is ``out = loss(batch)``, one backward of the sum of its ``loss_*`` terms, one optimiser
step and the target update. :class:`UpdateStep` holds those parts and runs them, eagerly or compiled
(``compile="default"``, ``"reduce-overhead"`` or ``"max-autotune"``, the modes of
:func:`torch.compile`): the whole update, or only its forward and backward when the optimiser is
fused (``compile_optimizer``).

Compiling follows TorchRL's own training scripts: the first call runs eagerly (TorchRL's
``compile_with_warmup``), so the loss's first-batch checks, which read values on the host, run
before tracing starts, and every later call runs the compiled update. The compiled region keeps its
own recompilation budget (``isolate_recompiles`` where torch offers it), so that several loops in
one process, e.g. the jobs of a sequential sweep, do not exhaust one shared budget and fall back to
eager. Compiled and eager updates compute the same arithmetic up to floating-point reassociation;
what compile buys on which machine is measured in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import inspect
import logging
import time

import torch
from tensordict import TensorDictBase

from maxent_components.checks import check_choice
from maxent_components.training.modes import AUTOCAST_DTYPES, COMPILE_MODES

__all__ = ["AUTOCAST_DTYPES", "COMPILE_MODES", "UpdateStep", "compiled_after_warmup"]



class UpdateStep:
    """``step(batch)``: one update of ``loss`` with ``optimizer`` and ``target_updater``; returns the
    loss's output (its scalar terms are what the loop logs).

    Args:
        loss: a loss module whose output holds ``loss_*`` terms to minimise together.
        optimizer: one optimiser over the loss's parameters.
        target_updater: TorchRL's ``SoftUpdate`` / ``HardUpdate`` of the loss (``None``: no targets).

    Keyword Args:
        autocast: ``"none"`` or ``"bfloat16"``: the loss's forward under ``torch.autocast`` in that
            dtype (matrix multiplies in bfloat16; the backward follows the forward's dtypes).
        compile: ``"none"`` or a ``torch.compile`` mode: the update compiled after one eager call.
        compile_optimizer: whether the compiled region holds the optimiser step and the target
            update too (the whole update) or only the forward and the backward, with those two run
            eagerly. Default (``None``): the whole update unless the optimiser is fused, whose step
            dynamo does not trace anyway; leaving it out then spares the region a graph break
            (measured on the CPU with ``benchmarks/compile_scope.py``; not yet on a GPU). The
            arithmetic is the same either way.
    """

    def __init__(self, loss, optimizer: torch.optim.Optimizer, target_updater=None, *,
                 autocast: str = "none", compile: str = "none", compile_optimizer: bool | None = None) -> None:
        self.loss, self.optimizer, self.target_updater = loss, optimizer, target_updater
        self.autocast = check_choice("autocast", autocast, AUTOCAST_DTYPES)
        self.compile = check_choice("compile", compile, COMPILE_MODES)
        if compile_optimizer is None and self.compile != "none":
            compile_optimizer = not any(group.get("fused") for group in optimizer.param_groups)
        self.compile_optimizer = bool(compile_optimizer)  # False when nothing is compiled
        self._gradients, self._step = self._forward_backward, self._eager
        if self.compile != "none" and self.compile_optimizer:
            self._step = compiled_after_warmup(self._eager, self.compile)
        elif self.compile != "none":
            self._gradients = compiled_after_warmup(self._forward_backward, self.compile)
        self.calls = 0
        #: Seconds of the first compiled call (tracing and compiling, plus that one update); ``None`` before it.
        self.compile_seconds: float | None = None

    def __call__(self, batch: TensorDictBase) -> TensorDictBase:
        self.calls += 1
        if self.compile == "none" or self.calls != 2:
            return self._step(batch)
        start = time.perf_counter()
        out = self._step(batch)
        self.compile_seconds = time.perf_counter() - start
        return out

    def _forward_backward(self, batch: TensorDictBase) -> TensorDictBase:
        device = batch.device if batch.device is not None else torch.device("cpu")
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast == "bfloat16"):
            out = self.loss(batch)
        sum(value for key, value in out.items() if key.startswith("loss_")).backward()
        return out

    def _eager(self, batch: TensorDictBase) -> TensorDictBase:
        self.optimizer.zero_grad(set_to_none=True)
        out = self._gradients(batch)
        self.optimizer.step()
        if self.target_updater is not None:
            self.target_updater.step()
        return out


class _WithoutProfilerNotice(logging.Filter):
    """Drops dynamo's warning that a profiler annotation is ignored under ``torch.compile``: the
    optimiser's own ``record_function`` around ``step`` and ``zero_grad``, which compiling leaves out
    of the trace and which nothing in a run reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Profiler record function")


_PROFILER_NOTICE = _WithoutProfilerNotice()


def compiled_after_warmup(function, mode: str):
    """``function`` compiled in ``mode`` after one eager call, with its own recompilation budget and
    static shapes.

    Shapes stay static (``dynamic=False``) because dynamo otherwise marks a dimension symbolic once
    the same code has been compiled at a second size, e.g. the next job of a sequential sweep at
    another batch size, and drawing noise of a symbolic size does not compile (torch 2.13).
    """
    from torchrl._utils import compile_with_warmup

    logging.getLogger("torch._dynamo.variables.ctx_manager").addFilter(_PROFILER_NOTICE)  # added once however often called

    options = {"mode": mode, "dynamic": False}
    if "isolate_recompiles" in inspect.signature(torch.compile).parameters:
        options["isolate_recompiles"] = True
    return compile_with_warmup(function, warmup=1, **options)
