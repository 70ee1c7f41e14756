import contextlib

import pytest
import torch
from tensordict import TensorDict

from maxent_components.modules.params import swapped_parameters
from maxent_components.modules.qvalue import discrete_qvalue_network


def _net():
    torch.manual_seed(0)
    net = discrete_qvalue_network(3, 2, num_cells=(8, 8))
    net.module.register_buffer("scale", torch.ones(1))
    return net


def test_swap_matches_to_module_and_restores():
    net = _net()
    original = TensorDict.from_module(net).clone()
    other = original.apply(lambda x: torch.randn_like(x))
    x = torch.randn(5, 3)
    with swapped_parameters(net, other):
        swapped = net.module(x)
        assert net.module.scale is other["module", "scale"]
    with other.to_module(net):
        expected = net.module(x)
    torch.testing.assert_close(swapped, expected)
    assert (TensorDict.from_module(net) == original).all()
    # the originals are the same objects again, so optimisers keep training them
    assert net.module[0].weight is TensorDict.from_module(net)["module", "0", "weight"]


def test_a_deep_copy_swaps_into_its_own_slots():
    # The resolved slots live on the module: a copy made after a swap must not swap into the original.
    import copy

    net = _net()
    params = TensorDict.from_module(net).clone()
    with swapped_parameters(net, params):
        pass
    twin = copy.deepcopy(net)
    other = params.apply(torch.zeros_like)
    x = torch.randn(5, 3)
    before = net.module(x)
    with swapped_parameters(twin, other):
        assert torch.equal(twin.module(x), torch.zeros(5, 2))
        torch.testing.assert_close(net.module(x), before)
    assert twin.module[0].weight is not net.module[0].weight


def test_swap_restores_on_error_and_rejects_unknown_names():
    net = _net()
    weight = net.module[0].weight
    with pytest.raises(RuntimeError, match="boom"):
        with swapped_parameters(net, TensorDict.from_module(net).clone()):
            raise RuntimeError("boom")
    assert net.module[0].weight is weight
    with pytest.raises(KeyError, match="nothing"):
        with swapped_parameters(net, TensorDict({"module": {"nothing": torch.zeros(1)}})):
            pass
    assert net.module[0].weight is weight


def test_swap_under_vmap_over_a_parameter_stack():
    net = _net()
    stack = torch.stack([TensorDict.from_module(net).clone().apply(torch.randn_like) for _ in range(3)])
    x = torch.randn(4, 3)

    def member(params):
        with swapped_parameters(net, params):
            return net.module(x)

    out = torch.vmap(member)(stack)
    for i in range(3):
        with stack[i].to_module(net):
            torch.testing.assert_close(out[i], net.module(x))


def _stack(net, n):
    from tensordict.nn import TensorDictParams

    return TensorDictParams(torch.stack([TensorDict.from_module(net).clone().apply(torch.randn_like) for _ in range(n)]))


def test_parameter_leaves_match_the_public_iterators():
    from tensordict import LazyStackedTensorDict

    from maxent_components.modules.params import parameter_leaves

    net = _net()
    plain = TensorDict.from_module(net)
    lazy = LazyStackedTensorDict.lazy_stack([plain.clone(), plain.clone()])
    for params in (plain, _stack(net, 3), lazy, TensorDict({})):
        keys, leaves = parameter_leaves(params)
        expected = list(params.keys(include_nested=True, leaves_only=True))
        assert keys == [(k,) if isinstance(k, str) else k for k in expected]
        values = list(params.values(include_nested=True, leaves_only=True))
        assert len(leaves) == len(values)
        for leaf, value in zip(leaves, values):
            if isinstance(params, LazyStackedTensorDict):
                torch.testing.assert_close(leaf, value)
            else:
                assert leaf is value  # the parameters themselves: an optimiser step is seen


def _qfunction_cases():
    from tensordict.nn import TensorDictSequential

    from maxent_components.modules.qvalue import continuous_qvalue_network, discrete_qvalue_network

    torch.manual_seed(1)
    continuous = continuous_qvalue_network(3, 2, num_cells=(8,))
    discrete = discrete_qvalue_network(3, 4, num_cells=(8,))
    # the same networks behind a TensorDictSequential take the TensorDict path
    return [(continuous, TensorDictSequential(continuous)), (discrete, TensorDictSequential(discrete))]


@pytest.mark.parametrize("mode", ["loop", "vmap"])
@pytest.mark.parametrize("detach", [False, True])
def test_qfunction_direct_path_equals_the_tensordict_path(mode, detach):
    from maxent_components.modules.qfunction import QFunction, direct_module

    state = TensorDict(observation=torch.randn(5, 3), batch_size=[5])
    for net, wrapped in _qfunction_cases():
        assert direct_module(net) is net.module and direct_module(wrapped) is None
        stack = _stack(net, 2)
        wrapped_stack = TensorDictParams_of(wrapped, stack)
        for params, params_wrapped in ((stack, wrapped_stack), (stack[1], wrapped_stack[1]), (None, None)):
            fast = QFunction(net, params, detach=detach, mode=mode)
            slow = QFunction(wrapped, params_wrapped, detach=detach, mode=mode)
            if "action" in net.in_keys:
                actions = torch.rand(7, 5, 2)
                got, want = fast.state_action_values(state, actions), slow.state_action_values(state, actions)
            else:
                got, want = fast.action_values(state), slow.action_values(state)
            torch.testing.assert_close(got, want)
            # and both equal tensordict's own parameter swap, member by member
            members = [None] if params is None else ([params] if params.batch_dims == 0 else list(params.unbind(0)))
            for i, member in enumerate(members):
                with torch.no_grad(), (member.to_module(net) if member is not None else contextlib.nullcontext()):
                    if "action" in net.in_keys:
                        expected = net(state.expand(7, 5).clone().set("action", actions))["state_action_value"][..., 0]
                    else:
                        expected = net(state.clone())["action_value"]
                torch.testing.assert_close(got[i], expected)
            source = params if params is not None else TensorDict.from_module(net)
            trained = [p for p in source.values(True, True) if p.requires_grad]
            if detach:
                assert not got.requires_grad
            else:
                assert all(g is not None for g in torch.autograd.grad(got.sum(), trained, allow_unused=True))


def TensorDictParams_of(wrapped, stack):
    """The same parameter leaves under the keys of ``wrapped`` (a TensorDictSequential of the net)."""
    from tensordict.nn import TensorDictParams

    return TensorDictParams(TensorDict({"module": {"0": stack.to_tensordict()}}, batch_size=stack.batch_size), no_convert=True)


def test_qfunction_direct_path_names_a_missing_key():
    from maxent_components.modules.qfunction import QFunction
    from maxent_components.modules.qvalue import continuous_qvalue_network

    q = QFunction(continuous_qvalue_network(3, 2, num_cells=(8,)))
    with pytest.raises(KeyError, match="observation"):
        q.state_action_values(TensorDict(obs=torch.zeros(5, 3), batch_size=[5]), torch.zeros(1, 5, 2))


def test_qfunction_direct_path_takes_a_one_tuple_and_refuses_other_outputs():
    from tensordict.nn import TensorDictModule

    from maxent_components.modules.qfunction import QFunction

    class OneTuple(torch.nn.Module):
        def forward(self, obs):
            return (obs.sum(-1, keepdim=True).expand(*obs.shape[:-1], 2),)

    class Pair(torch.nn.Module):
        def forward(self, obs):
            return obs, obs

    state = TensorDict(observation=torch.ones(4, 3), batch_size=[4])
    q = QFunction(TensorDictModule(OneTuple(), ["observation"], ["action_value"])).action_values(state)
    torch.testing.assert_close(q, torch.full((1, 4, 2), 3.0))
    with pytest.raises(TypeError, match="expected one tensor"):
        QFunction(TensorDictModule(Pair(), ["observation"], ["action_value"])).action_values(state)
