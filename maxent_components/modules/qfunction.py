"""``QFunction``: the one way every component evaluates a Q network.

A Q network is a tensordict module in the library's layout (see :mod:`maxent_components.modules.qvalue`):
discrete ones read the observation and write ``Q(s, ·)`` at ``"action_value"``, continuous ones also
read ``"action"`` and write ``Q(s, a)`` at ``"state_action_value"``. A :class:`QFunction` pairs such a
network with the parameters to evaluate it with:

- ``params=None``: the network's own parameters, as they are (an estimator or sampler used alone);
- one parameter set (a ``TensorDict`` with no batch dimension), e.g. a loss's target parameters;
- an ensemble: a stack ``[N, ...]`` of parameter sets, evaluated in one ``torch.vmap`` over the
  members (or one call per member with ``mode="loop"``).

Every evaluation returns a leading member dimension ``N`` (``N = 1`` for a single set); callers
reduce it as their equation says (the soft Bellman target reduces soft values, the actor takes
``min_i Q_i``). With ``detach=True`` the parameters enter detached, so a loss backpropagated through
``Q`` reaches the actions but never the Q parameters (the parameters belong to the critic's loss).

Examples:
    >>> import torch
    >>> from tensordict import TensorDict
    >>> from maxent_components.modules.qvalue import continuous_qvalue_network
    >>> qnet = continuous_qvalue_network(3, 2, num_cells=[8])
    >>> q = QFunction(qnet)
    >>> state = TensorDict(observation=torch.zeros(5, 3), batch_size=[5])
    >>> q.state_action_values(state, torch.zeros(7, 5, 2)).shape  # [N, K, *B]
    torch.Size([1, 7, 5])
"""

from __future__ import annotations

from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey, unravel_key
from torch import Tensor, nn

from maxent_components.checks import check_choice
from maxent_components.modules.params import parameter_leaves, parameter_slots
from maxent_components.modules.plans import MLPPlan, mlp_plan

__all__ = ["ENSEMBLE_MODES", "QFunction", "ReadsQ", "direct_module", "ensemble_mode"]


#: How an ensemble is evaluated: one ``torch.vmap``, one call per member, or chosen by device.
ENSEMBLE_MODES = ("auto", "vmap", "loop", "bmm")


def ensemble_mode(mode: str, params: TensorDictBase) -> str:
    """``mode`` with ``"auto"`` resolved for ``params``: on the CPU ``"loop"`` when torch runs one thread
    and ``"bmm"`` with several, ``"vmap"`` elsewhere."""
    return _resolved_mode(mode, parameter_leaves(params)[1])


def _resolved_mode(mode: str, leaves: list[Tensor]) -> str:
    if mode != "auto":
        return mode
    if leaves and leaves[0].device.type != "cpu":
        return "vmap"
    return "loop" if torch.get_num_threads() == 1 else "bmm"


def direct_module(network) -> nn.Module | None:
    """The wrapped module of a plain ``TensorDictModule`` (positional inputs, one output, no hooks),
    which :class:`QFunction` calls on tensors directly instead of building a TensorDict per call;
    ``None`` for any other network (evaluated through its TensorDict interface)."""
    if not isinstance(network, TensorDictModule) or type(network).forward is not TensorDictModule.forward:
        return None
    if network._kwargs is not None or len(network.out_keys) != 1:
        return None
    if network._forward_hooks or network._forward_pre_hooks:
        return None
    return network.module


class QFunction:
    """``Q_θ`` of ``network`` under ``params`` (its own, one set, or a stacked ensemble ``[N, ...]``).

    Args:
        network: a tensordict module with ``in_keys`` and ``out_keys`` in the library's layout.
        params: ``None`` (the network's own parameters), a parameter ``TensorDict`` of the network
            (keys as in ``TensorDict.from_module``), or a stack ``[N, ...]`` of them. Referenced: an
            optimiser stepping them in place is seen by the next evaluation.

    Keyword Args:
        detach: evaluate with detached parameters (no gradient reaches them).
        mode: ``"vmap"`` (one ``torch.vmap`` over the members), ``"loop"`` (one call per member,
            for networks without a batching rule), ``"bmm"`` (a plain MLP's layers as one batched
            matrix multiply over the members, ``torch.baddbmm``; the same values up to float
            rounding, other networks as ``"loop"``) or ``"auto"`` (the default). On the CPU ``"auto"`` is
            ``"loop"`` on one thread and ``"bmm"`` on several, the faster of the two per SAC update
            in each case (a batched multiply splits across threads better than two small ones);
            on accelerators it is ``"vmap"``. Measured in ``benchmarks/RESULTS.md``.
    """

    def __init__(
        self,
        network,
        params: TensorDictBase | None = None,
        *,
        detach: bool = False,
        mode: Literal["auto", "vmap", "loop", "bmm"] = "auto",
    ) -> None:
        if not callable(network) or not hasattr(network, "in_keys") or not hasattr(network, "out_keys"):
            raise TypeError(
                f"qvalue_network must be a tensordict module with in_keys and out_keys (reading the "
                f"observation, and the action for continuous actions), got {type(network).__name__}."
            )
        if params is not None and (not isinstance(params, TensorDictBase) or params.batch_dims > 1):
            raise TypeError(
                "params must be a parameter TensorDict of the Q network or a stack [N, ...] of them, "
                f"got {type(params).__name__}."
            )
        self.network = network
        self.params = params
        self.detach = bool(detach)
        self.mode = check_choice("mode", mode, ENSEMBLE_MODES)
        self._known: tuple[TensorDictBase, NestedKey, Tensor] | None = None

    def detached(self) -> QFunction:
        """The same Q function with detached parameters (for losses that must not train ``Q``)."""
        if self.detach:
            return self
        detached = QFunction(self.network, self.params, detach=True, mode=self.mode)
        if self._known is not None:
            batch, key, values = self._known
            detached._known = (batch, key, values.detach())
        return detached

    def knowing(self, tensordict: TensorDictBase, action_values: Tensor, *, value_key: NestedKey = "action_value") -> QFunction:
        """This Q function with ``Q(s, ·)`` of ``tensordict`` already evaluated (``[N, *B, |A|]``, under
        these parameters): :meth:`action_values` of that very batch returns them (detached if this
        function is) instead of running the network again. A loss that evaluated ``Q(s, ·)`` for its
        TD error hands it on to its actor's loss this way."""
        known = QFunction(self.network, self.params, detach=self.detach, mode=self.mode)
        known._known = (tensordict, unravel_key(value_key), action_values.detach() if self.detach else action_values)
        return known

    @property
    def num_members(self) -> int:
        """``N``, the size of the leading member dimension of every evaluation."""
        if self.params is None or self.params.batch_dims == 0:
            return 1
        return int(self.params.batch_size[0])

    def reads(self, key: NestedKey) -> bool:
        """Whether the network reads ``key`` (a continuous Q network reads the action)."""
        key = unravel_key(key)
        return any(unravel_key(k) == key for k in self.network.in_keys)

    def _missing(self, tensordict: TensorDictBase, keys) -> KeyError:
        missing = [k for k in keys if k not in tensordict.keys(include_nested=True)]
        return KeyError(
            f"the Q network reads {missing}, which the input tensordict lacks (it holds "
            f"{sorted(map(str, tensordict.keys()))}); rename keys with set_keys(...) if they live elsewhere."
        )

    def _inputs(self, tensordict: TensorDictBase, exclude: NestedKey | None) -> TensorDictBase:
        excluded = None if exclude is None else unravel_key(exclude)
        keys = [k for k in self.network.in_keys if unravel_key(k) != excluded]
        if any(k not in tensordict.keys(include_nested=True) for k in keys):
            raise self._missing(tensordict, keys)
        return tensordict.select(*keys)

    def _members(self) -> tuple[list[tuple[str, ...]] | None, list[Tensor] | None]:
        """The parameter keys and leaves to evaluate with (``None, None``: the network's own, attached)."""
        params = self.params
        if params is None:
            if not self.detach:
                return None, None
            params = TensorDict.from_module(self.network)
        keys, leaves = parameter_leaves(params)
        if self.detach:
            leaves = [leaf.detach() for leaf in leaves]
        return keys, leaves

    def _map(self, call, keys, leaves, stacked: bool) -> Tensor:
        """``call()`` once per member with its parameters swapped in: ``[N, *out]``."""
        if keys is None:
            return call().unsqueeze(0)
        slots = parameter_slots(self.network, keys)

        def member(*tensors: Tensor) -> Tensor:
            with slots.swapped(tensors):
                return call()

        if not stacked:
            return member(*leaves).unsqueeze(0)
        if _resolved_mode(self.mode, leaves) == "vmap":
            return torch.vmap(member, randomness="same")(*leaves)
        # one unbind per leaf (its backward stacks the members' gradients once) rather than an index per member
        return torch.stack([member(*tensors) for tensors in zip(*[leaf.unbind(0) for leaf in leaves])])

    def _stacked(self) -> bool:
        return self.params is not None and self.params.batch_dims == 1

    def _run(self, inputs: TensorDictBase, value_key: NestedKey) -> Tensor:
        inputs = inputs.copy()  # the module writes its output into its input
        out = self.network(inputs)
        value = (inputs if out is None else out).get(value_key, None)
        if value is None:
            raise KeyError(
                f"the Q network did not write {value_key!r} (its out_keys are {list(self.network.out_keys)}); "
                f"rename with set_keys(...)."
            )
        return value

    def evaluate(self, inputs: TensorDictBase, value_key: NestedKey) -> Tensor:
        """The network's output at ``value_key`` for every member: ``[N, *out_shape]``."""
        keys, leaves = self._members()
        return self._map(lambda: self._run(inputs, value_key), keys, leaves, self._stacked())

    def _evaluate_direct(
        self, tensordict: TensorDictBase, value_key: NestedKey, actions: Tensor | None = None, action_key: NestedKey = "action"
    ) -> Tensor:
        """``evaluate`` of a :func:`direct_module` network on its input tensors, read from ``tensordict``
        in ``in_keys`` order; with ``actions`` ``[K, *B, ...]``, those at ``action_key`` and the state
        entries expanded (not copied) from ``[*B, ...]`` to ``[K, *B, ...]`` beside them."""
        action_key = unravel_key(action_key)
        state_keys = [k for k in self.network.in_keys if actions is None or unravel_key(k) != action_key]
        state = {unravel_key(k): tensordict.get(k, None) for k in state_keys}
        if any(t is None for t in state.values()):
            raise self._missing(tensordict, state_keys)
        if actions is not None:
            state = {k: t.expand(actions.shape[0], *t.shape) for k, t in state.items()}
            state[action_key] = actions
        tensors = [state[unravel_key(k)] for k in self.network.in_keys]
        if unravel_key(self.network.out_keys[0]) != unravel_key(value_key):
            raise KeyError(
                f"the Q network did not write {value_key!r} (its out_keys are {list(self.network.out_keys)}); "
                f"rename with set_keys(...)."
            )
        keys, leaves = self._members()
        plan = mlp_plan(self.network, keys)
        if plan is not None:  # a plain MLP: run on the parameter tensors, no swap, no module dispatch
            return self._map_plan(plan, tensors, leaves)
        module = self.network.module

        def call() -> Tensor:
            out = module(*tensors)
            if isinstance(out, (tuple, list)) and len(out) == 1:  # what TensorDictModule would write
                out = out[0]
            if not isinstance(out, Tensor):
                raise TypeError(f"the Q network's module returned {type(out).__name__}; expected one tensor for {value_key!r}.")
            return out

        return self._map(call, keys, leaves, self._stacked())

    def _map_plan(self, plan: MLPPlan, tensors: list[Tensor], leaves: list[Tensor] | None) -> Tensor:
        """:meth:`_map` for an :class:`~maxent_components.modules.plans.MLPPlan`: the members' tensors
        are passed to the plan instead of swapped into the module."""
        if leaves is None or not self._stacked():
            return plan(tensors, leaves).unsqueeze(0)
        mode = _resolved_mode(self.mode, leaves)
        if mode == "vmap":
            return torch.vmap(lambda *member: plan(tensors, member), randomness="same")(*leaves)
        if mode == "bmm":
            return plan.stacked(tensors, leaves)
        return torch.stack([plan(tensors, member) for member in zip(*[leaf.unbind(0) for leaf in leaves])])

    def action_values(self, tensordict: TensorDictBase, *, value_key: NestedKey = "action_value") -> Tensor:
        """``Q(s, ·)`` of a discrete Q network: ``[N, *B, |A|]``."""
        if self._known is not None and self._known[0] is tensordict and self._known[1] == unravel_key(value_key):
            return self._known[2]
        batch = tuple(tensordict.batch_size)
        if direct_module(self.network) is not None:
            q = self._evaluate_direct(tensordict, value_key)
        else:
            q = self.evaluate(self._inputs(tensordict, None), value_key)
        if q.ndim != len(batch) + 2 or tuple(q.shape[1:-1]) != batch:
            raise ValueError(
                f"the Q network wrote {value_key!r} of shape {tuple(q.shape[1:])}; expected [*B, |A|] "
                f"with B = {list(batch)} (a discrete Q network)."
            )
        return q

    def state_action_values(
        self,
        tensordict: TensorDictBase,
        actions: Tensor,
        *,
        action_key: NestedKey = "action",
        value_key: NestedKey = "state_action_value",
    ) -> Tensor:
        """``Q(s, a_k)`` of a continuous Q network for actions ``[K, *B, *A]``: ``[N, K, *B]``.

        The state entries of ``tensordict`` (batch ``[*B]``) are expanded, not copied, to ``[K, *B]``,
        so the network runs once on all ``K·|B|`` pairs.
        """
        batch = tuple(tensordict.batch_size)
        if actions.ndim < 1 + len(batch) or tuple(actions.shape[1 : 1 + len(batch)]) != batch:
            raise ValueError(
                f"actions must have shape [K, *B, *action_shape] with B = {list(batch)}, got "
                f"{tuple(actions.shape)}."
            )
        if not self.reads(action_key):
            raise ValueError(
                f"the Q network does not read {action_key!r} (its in_keys are {list(self.network.in_keys)}); "
                f"a continuous Q network reads the observation and the action."
            )
        num = actions.shape[0]
        if direct_module(self.network) is not None:
            q = self._evaluate_direct(tensordict, value_key, actions, action_key)
        else:
            inputs = self._inputs(tensordict, action_key)
            inputs = inputs.expand(num, *inputs.batch_size)
            inputs.set(action_key, actions)
            q = self.evaluate(inputs, value_key)
        expected = (num, *batch, 1)
        if tuple(q.shape[1:]) != expected:
            raise ValueError(
                f"the Q network wrote {value_key!r} of shape {tuple(q.shape[1:])}; expected "
                f"{list(expected)} (one Q-value per state-action pair, [*, 1] as TorchRL's ValueOperator)."
            )
        return q.squeeze(-1)

    def __repr__(self) -> str:
        own = "own parameters" if self.params is None else f"{self.num_members} member(s)"
        return f"QFunction({type(self.network).__name__}, {own}, detach={self.detach}, mode={self.mode!r})"


class ReadsQ:
    """What the estimators and samplers share: a Q function and a temperature they read, never own,
    and their configurable keys.

    Both are set at construction (standalone use) or by a loss's ``bind``; using a component
    without them raises a ``RuntimeError`` saying how to provide them. Keys live in the component's
    ``_AcceptedKeys`` dataclass (``self._tensor_keys``); :meth:`set_keys` renames them and calls the
    component's ``_refresh_keys`` to update its ``in_keys`` and ``out_keys``.
    """

    @property
    def tensor_keys(self):
        """The component's keys (an ``_AcceptedKeys`` instance)."""
        return self._tensor_keys

    def set_keys(self, **kwargs: NestedKey):
        """Rename keys, e.g. ``component.set_keys(observation=("agent", "obs"))``; returns the component.

        Unknown names raise a ``ValueError`` listing the valid ones; a key that is not a string or a
        tuple of strings, a ``TypeError``.
        """
        valid = set(self._AcceptedKeys.__dataclass_fields__)
        for name, value in kwargs.items():
            if name not in valid:
                raise ValueError(f"{name!r} is not a key of {type(self).__name__}; valid keys: {sorted(valid)}.")
            if not isinstance(value, (str, tuple)) or (isinstance(value, tuple) and not all(isinstance(v, str) for v in value)):
                raise TypeError(f"key {name!r} must be a string or a tuple of strings, got {value!r}.")
        for name, value in kwargs.items():
            setattr(self._tensor_keys, name, value)
        self._refresh_keys()
        return self

    # Set by the subclasses' constructors (instance attributes: a class attribute would shadow an
    # nn.Module's registered ``temperature`` submodule).
    qvalue: QFunction | None

    @property
    def qvalue_network(self):
        """The Q network this component reads (``None`` until built with one or bound by a loss)."""
        return None if self.qvalue is None else self.qvalue.network

    def _q(self, qvalue: QFunction | None = None) -> QFunction:
        if qvalue is not None:
            return qvalue
        if self.qvalue is None:
            name = type(self).__name__
            raise RuntimeError(
                f"{name} has no Q network: build it with one ({name}(qvalue_network, ...)) or put it "
                f"in a SoftQLoss, which binds its own."
            )
        return self.qvalue

    def _temperature(self):
        if self.temperature is None:
            raise RuntimeError(
                f"{type(self).__name__} has no temperature: pass alpha=... or put it in a "
                f"SoftQLoss(..., alpha=...), which binds its own."
            )
        return self.temperature
