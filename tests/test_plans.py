"""MLP plans: a Q network evaluated from parameter tensors gives the module's own numbers, bit for bit."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from maxent_components.modules import continuous_qvalue_network, discrete_qvalue_network
from maxent_components.modules.params import swapped_parameters
from maxent_components.modules.plans import mlp_plan
from maxent_components.modules.qfunction import QFunction


def _reference(network, params, inputs):
    """The module called with ``params`` swapped in: what the plan must reproduce."""
    with swapped_parameters(network, params):
        return network.module(*inputs)


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh, nn.ELU])
def test_the_plan_of_an_mlp_gives_the_modules_output_and_gradients_bit_for_bit(activation):
    torch.manual_seed(0)
    network = continuous_qvalue_network(5, 3, num_cells=(16, 16), activation_class=activation)
    params = TensorDict.from_module(network).clone().requires_grad_(True)
    keys = [(k,) if isinstance(k, str) else tuple(k) for k in params.keys(True, True)]
    inputs = [torch.randn(7, 5), torch.randn(7, 3)]
    plan = mlp_plan(network, keys)
    assert plan is not None
    values = list(params.values(True, True))
    out = plan(inputs, values)
    expected = _reference(network, params, inputs)
    assert torch.equal(out, expected)
    grads = torch.autograd.grad(out.square().sum(), values)
    expected_grads = torch.autograd.grad(expected.square().sum(), values)
    assert all(torch.equal(a, b) for a, b in zip(grads, expected_grads))
    assert torch.equal(mlp_plan(network, None)(inputs), network.module(*inputs))  # its own parameters


@pytest.mark.parametrize("mode", ["loop", "vmap", "bmm"])
def test_an_ensemble_evaluated_by_its_plan_equals_one_module_call_per_member(mode):
    torch.manual_seed(1)
    network = discrete_qvalue_network(4, 3, num_cells=(8,))
    members = TensorDict.from_modules(network, discrete_qvalue_network(4, 3, num_cells=(8,)), as_module=False)
    state = TensorDict(observation=torch.randn(6, 4), batch_size=[6])
    q = QFunction(network, members, mode=mode).action_values(state)
    expected = torch.stack([_reference(network, members[i], [state["observation"]]) for i in range(2)])
    assert q.shape == (2, 6, 3)
    torch.testing.assert_close(q, expected, rtol=0, atol=0 if mode == "loop" else 1e-6)


def test_networks_that_are_not_plain_mlps_have_no_plan_and_still_evaluate():
    torch.manual_seed(2)
    normed = TensorDictModule(nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2)),
                              in_keys=["observation"], out_keys=["action_value"])
    keys = [(k,) if isinstance(k, str) else tuple(k) for k in TensorDict.from_module(normed).keys(True, True)]
    assert mlp_plan(normed, keys) is None  # a layer with parameters of its own: called as a module
    state = TensorDict(observation=torch.randn(3, 4), batch_size=[3])
    assert torch.equal(QFunction(normed).action_values(state)[0], normed.module(state["observation"]))
    inplace = TensorDictModule(nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 2)),
                               in_keys=["observation"], out_keys=["action_value"])
    assert mlp_plan(inplace, None) is not None  # a parameter-free layer is called as it is
    assert torch.equal(QFunction(inplace).action_values(state)[0], inplace.module(state["observation"]))


def test_batched_members_take_the_same_gradients_as_one_call_per_member():
    torch.manual_seed(3)
    network = continuous_qvalue_network(4, 2, num_cells=(8, 8))
    members = TensorDict.from_modules(*[continuous_qvalue_network(4, 2, num_cells=(8, 8)) for _ in range(3)],
                                      as_module=False).requires_grad_(True)
    state = TensorDict(observation=torch.randn(5, 4), batch_size=[5])
    actions = torch.randn(2, 5, 2)
    leaves = list(members.values(True, True))
    grads = {}
    for mode in ("loop", "bmm"):
        q = QFunction(network, members, mode=mode).state_action_values(state, actions)
        assert q.shape == (3, 2, 5)
        grads[mode] = torch.autograd.grad(q.square().sum(), leaves)
    for a, b in zip(grads["loop"], grads["bmm"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_network_with_a_forward_hook_is_called_as_a_module():
    network = continuous_qvalue_network(3, 2, num_cells=(8,))
    assert mlp_plan(network, None) is not None
    seen = []
    handle = network.module[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    assert mlp_plan(network, None) is None
    state = TensorDict(observation=torch.randn(4, 3), batch_size=[4])
    QFunction(network).state_action_values(state, torch.randn(5, 4, 2))
    assert seen == [torch.Size([5, 4, 8])]
    handle.remove()
    assert mlp_plan(network, None) is not None


def test_a_policy_network_runs_by_its_plan_with_the_modules_numbers_and_live_parameters():
    from torchrl.data import Bounded

    from maxent_components import GaussianSampler
    from maxent_components.modules import tanh_normal_actor_network
    from maxent_components.modules.plans import module_plan

    torch.manual_seed(4)
    policy = tanh_normal_actor_network(3, 2, num_cells=(8, 8))  # Sequential(MLP, NormalParamExtractor)
    plan = module_plan(policy)
    assert plan is not None
    obs = torch.randn(5, 3)
    for got, expected in zip(plan([obs]), policy(obs)):
        assert torch.equal(got, expected)
    # parameters swapped into the module (functional_call, as populations do) are the ones the plan reads
    swapped = {name: torch.randn_like(p) for name, p in policy.named_parameters()}
    inside = torch.func.functional_call(policy, swapped, (obs,))
    with_plan = torch.func.functional_call(_PlanCaller(policy), {f"policy.{k}": v for k, v in swapped.items()}, (obs,))
    assert all(torch.equal(a, b) for a, b in zip(inside, with_plan))
    assert not torch.equal(with_plan[0], plan([obs])[0])  # and not the module's own
    # the sampler acts and trains through the plan: the same draws as through the module
    sampler = GaussianSampler(policy_network=policy, action_spec=Bounded(-1.0, 1.0, shape=(2,)))
    state = TensorDict(observation=obs, batch_size=[5])
    torch.manual_seed(5)
    planned = sampler.sample(state, 3)
    seen = []
    handle = policy[0].register_forward_hook(lambda module, args, out: seen.append(True))  # forces module calls
    assert module_plan(policy) is None
    torch.manual_seed(5)
    called = sampler.sample(state, 3)
    handle.remove()
    assert seen and all(torch.equal(a, b) for a, b in zip(planned, called))


class _PlanCaller(nn.Module):
    """Calls its policy through the plan, so that ``functional_call`` on it swaps the policy's parameters."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs):
        from maxent_components.modules.plans import module_plan

        return module_plan(self.policy)([obs])
