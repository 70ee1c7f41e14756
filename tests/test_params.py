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
