"""SoftQLoss owns Q, its ensemble, its targets, the actor and the temperature; nobody else holds them.

For every algorithm (soft DQN, discrete SAC, SQL, SAC, SQL with a trained importance proposal and
SQL acting by MALA from an amortized warm start): one optimiser step on ``sum(loss_*)`` moves
exactly the parameters it should and never the targets; the actor follows the online ensemble;
parts built on another Q network or with another temperature are refused; the forward and
backward pass never read a tensor on the host.
"""

from __future__ import annotations

import math

import pytest
import torch
from random_batches import random_transitions
from tensordict import TensorDict
from torchrl.data import Bounded, OneHot
from torchrl.objectives import SoftUpdate

from maxent_components import (
    AutoTemperature,
    BoltzmannSampler,
    CategoricalSampler,
    ExactSoftValue,
    GaussianSampler,
    ImportanceSoftValue,
    LangevinSampler,
    MixtureSampler,
    PolicySoftValue,
    SoftQLoss,
    SVGDSampler,
    UniformSampler,
    UniformSoftValue,
)
from maxent_components.modules import (
    continuous_qvalue_network,
    discrete_qvalue_network,
    noise_input_policy_network,
    tanh_normal_actor_network,
)
from maxent_components.samplers.categorical import categorical_policy_network

OBS, NUM_ACTIONS, ACT = 3, 4, 2
DISCRETE = OneHot(NUM_ACTIONS)
BOX = Bounded(-1.0, 1.0, shape=(ACT,))


pytestmark = pytest.mark.usefixtures("one_thread")


def batch(discrete: bool, n: int = 8) -> TensorDict:
    gen = torch.Generator().manual_seed(0)
    if discrete:
        action = torch.nn.functional.one_hot(torch.randint(NUM_ACTIONS, (n,), generator=gen), NUM_ACTIONS)
    else:
        action = torch.rand(n, ACT, generator=gen) * 2 - 1
    return random_transitions(action, OBS, gen)


def soft_dqn(n=2):
    qnet = discrete_qvalue_network(OBS, NUM_ACTIONS, num_cells=[16])
    return SoftQLoss(qnet, ExactSoftValue(), actor=BoltzmannSampler(action_spec=DISCRETE), alpha=0.3, num_qvalue_nets=n)


def discrete_sac(n=2):
    qnet = discrete_qvalue_network(OBS, NUM_ACTIONS, num_cells=[16])
    actor = CategoricalSampler(policy_network=categorical_policy_network(OBS, NUM_ACTIONS, num_cells=[16]), action_spec=DISCRETE)
    alpha = AutoTemperature(0.6 * math.log(NUM_ACTIONS), alpha_init=0.5)
    return SoftQLoss(qnet, PolicySoftValue(), actor=actor, alpha=alpha, num_qvalue_nets=n)


def svgd_actor():
    return SVGDSampler(policy_network=noise_input_policy_network(OBS, ACT, num_cells=[16]), action_spec=BOX, num_particles=6)


def sql(n=2):
    qnet = continuous_qvalue_network(OBS, ACT, num_cells=[16])
    return SoftQLoss(qnet, UniformSoftValue(action_spec=BOX, num_samples=4), actor=svgd_actor(), alpha=0.5, num_qvalue_nets=n)


def gaussian_actor():
    return GaussianSampler(policy_network=tanh_normal_actor_network(OBS, ACT, num_cells=[16]), action_spec=BOX)


def sac(n=2):
    qnet = continuous_qvalue_network(OBS, ACT, num_cells=[16])
    return SoftQLoss(qnet, PolicySoftValue(), actor=gaussian_actor(), alpha=AutoTemperature(-float(ACT)), num_qvalue_nets=n)


def sql_importance(n=2):
    """SVGD acts; a Gaussian fitted next to it (``loss_proposal``) is half of the importance proposal."""
    qnet = continuous_qvalue_network(OBS, ACT, num_cells=[16])
    proposal = MixtureSampler([UniformSampler(action_spec=BOX), gaussian_actor()], weights=[0.5, 0.5])
    return SoftQLoss(qnet, ImportanceSoftValue(proposal=proposal, num_samples=4), actor=svgd_actor(), alpha=0.5, num_qvalue_nets=n)


def sql_mala(n=2):
    """MALA acts from an amortized SVGD warm start; the loss trains the warm start."""
    qnet = continuous_qvalue_network(OBS, ACT, num_cells=[16])
    actor = LangevinSampler(action_spec=BOX, init=svgd_actor(), num_steps=3, step_size=0.05, metropolis=True)
    return SoftQLoss(qnet, UniformSoftValue(action_spec=BOX, num_samples=4), actor=actor, alpha=0.5, num_qvalue_nets=n)


ALGORITHMS = {
    "soft_dqn": (soft_dqn, True, {"loss_qvalue"}),
    "discrete_sac": (discrete_sac, True, {"loss_qvalue", "loss_actor", "loss_alpha"}),
    "sql": (sql, False, {"loss_qvalue", "loss_actor"}),
    "sac": (sac, False, {"loss_qvalue", "loss_actor", "loss_alpha"}),
    "sql_importance": (sql_importance, False, {"loss_qvalue", "loss_actor", "loss_proposal"}),
    "sql_mala": (sql_mala, False, {"loss_qvalue", "loss_actor"}),
}


def owners(loss: SoftQLoss) -> dict[str, set[int]]:
    """Which parameter (by id) belongs to which part."""
    parts = {
        "qvalue": {id(p) for p in loss.qvalue_network_params.values(True, True)},
        "alpha": {id(p) for p in loss.temperature.parameters()},
        "proposal": {id(p) for m in loss.proposals for p in m.parameters()},
    }
    parts["actor"] = {id(p) for p in loss.actor.parameters()} - parts["alpha"] if loss.actor is not None else set()
    return parts


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_one_optimiser_step_moves_exactly_the_owned_parameters(name):
    build, discrete, loss_keys = ALGORITHMS[name]
    torch.manual_seed(0)
    loss = build()
    SoftUpdate(loss, tau=0.1)
    parts = owners(loss)
    params = list(loss.parameters())
    # loss.parameters() is everything one optimiser trains: the Q ensemble, the actor, α, proposals
    assert {id(p) for p in params} == set().union(*parts.values())
    targets = loss.target_qvalue_network_params.clone()
    before = {id(p): p.detach().clone() for p in params}
    optim = torch.optim.Adam(params, lr=1e-2)
    out = loss(batch(discrete))
    assert {k for k in out.keys() if k.startswith("loss_")} == loss_keys
    sum(out[k] for k in loss_keys).backward()
    optim.step()
    moved = {id(p) for p in params if not torch.equal(p.detach(), before[id(p)])}
    assert moved == set().union(*parts.values()), name
    assert (loss.target_qvalue_network_params == targets).all()


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_each_loss_term_reaches_only_its_own_parameters(name):
    build, discrete, loss_keys = ALGORITHMS[name]
    torch.manual_seed(0)
    loss = build()
    SoftUpdate(loss, tau=0.1)
    parts = owners(loss)
    reaches = {"loss_qvalue": "qvalue", "loss_actor": "actor", "loss_alpha": "alpha", "loss_proposal": "proposal"}
    for key in loss_keys:
        loss.zero_grad(set_to_none=True)
        loss(batch(discrete))[key].backward()
        with_grad = {id(p) for p in loss.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert with_grad and with_grad <= parts[reaches[key]], (name, key)


@pytest.mark.parametrize("name", ["discrete_sac", "sql", "sac", "sql_importance", "sql_mala"])
def test_actor_trains_against_the_online_ensemble(name):
    """The actor's loss changes when an online member changes (the sampler reads the loss's ensemble)."""
    build, discrete, _ = ALGORITHMS[name]
    torch.manual_seed(0)
    loss = build()
    SoftUpdate(loss, tau=0.1)
    td = batch(discrete)
    torch.manual_seed(1)
    first = loss(td)["loss_actor"]
    torch.manual_seed(1)
    assert torch.equal(loss(td)["loss_actor"], first)  # same seed, same parameters: same loss
    with torch.no_grad():
        for value in loss.qvalue_network_params.values(True, True):
            value[1].mul_(3.0).add_(0.5)  # change member 1 only
    torch.manual_seed(1)
    assert not torch.allclose(loss(td)["loss_actor"], first)


def test_discrete_actor_loss_and_acting_use_min_over_online_members():
    torch.manual_seed(0)
    loss = discrete_sac()
    SoftUpdate(loss, tau=0.1)
    td = batch(True)
    q_min = torch.stack([_member_q(loss, i, td) for i in range(2)]).amin(0)
    assert not torch.equal(q_min, _member_q(loss, 0, td)) and not torch.equal(q_min, _member_q(loss, 1, td))
    log_pi = torch.log_softmax(loss.actor.policy_network(td.select("observation").copy())["logits"], -1)
    alpha = loss.temperature.alpha
    expected = (log_pi.exp() * (alpha * log_pi - q_min)).sum(-1).mean()
    torch.testing.assert_close(loss(td)["loss_actor"], expected)

    dqn = soft_dqn()
    q_min = torch.stack([_member_q(dqn, i, td) for i in range(2)]).amin(0)
    torch.testing.assert_close(dqn.actor.log_probs(td), torch.log_softmax(q_min / 0.3, -1))


def _member_q(loss: SoftQLoss, i: int, td: TensorDict) -> torch.Tensor:
    with loss.qvalue_network_params[i].to_module(loss.qvalue_network):
        return loss.qvalue_network(td.select("observation").copy())["action_value"].detach()


def test_parts_on_another_q_network_are_refused_and_the_same_one_is_rebound():
    qnet = continuous_qvalue_network(OBS, ACT, num_cells=[16])
    other = continuous_qvalue_network(OBS, ACT, num_cells=[16])
    with pytest.raises(ValueError, match="soft_value.*another Q network"):
        SoftQLoss(qnet, UniformSoftValue(other, action_spec=BOX), alpha=1.0)
    with pytest.raises(ValueError, match="actor.*another Q network"):
        SoftQLoss(qnet, PolicySoftValue(), actor=GaussianSampler(other, tanh_normal_actor_network(OBS, ACT), action_spec=BOX), alpha=1.0)
    policy = GaussianSampler(other, tanh_normal_actor_network(OBS, ACT), action_spec=BOX)
    with pytest.raises(ValueError, match="soft_value.samplers.*another Q network"):
        SoftQLoss(qnet, PolicySoftValue(policy=policy), alpha=1.0)
    # built alone on the loss's own network: accepted, then bound to the loss's ensemble
    estimator = UniformSoftValue(qnet, action_spec=BOX, alpha=1.0, num_samples=4)
    actor = SVGDSampler(qnet, noise_input_policy_network(OBS, ACT, num_cells=[8]), action_spec=BOX, alpha=1.0)
    loss = SoftQLoss(qnet, estimator, actor=actor, num_qvalue_nets=2)
    assert estimator.qvalue.params is loss.qvalue_network_params
    assert actor.qvalue.params is loss.qvalue_network_params and actor.qvalue.detach
    assert actor.temperature is loss.temperature is estimator.temperature


def test_one_temperature():
    qnet = discrete_qvalue_network(OBS, NUM_ACTIONS, num_cells=[8])
    with pytest.raises(ValueError, match="two temperatures.*alpha=0.1.*actor.*alpha=0.5"):
        SoftQLoss(qnet, ExactSoftValue(), actor=BoltzmannSampler(action_spec=DISCRETE, alpha=0.5), alpha=0.1)
    with pytest.raises(ValueError, match="two temperatures"):
        SoftQLoss(qnet, ExactSoftValue(alpha=0.2), actor=BoltzmannSampler(action_spec=DISCRETE), alpha=AutoTemperature(1.0))
    # equal constants given twice are one temperature
    loss = SoftQLoss(qnet, ExactSoftValue(alpha=0.5), actor=BoltzmannSampler(action_spec=DISCRETE, alpha=0.5))
    assert loss.temperature.value() == 0.5 and loss.actor.temperature is loss.temperature
    # a learned temperature needs an actor that measures its entropy
    cont = continuous_qvalue_network(OBS, ACT, num_cells=[8])
    with pytest.raises(ValueError, match="learned temperature"):
        SoftQLoss(cont, UniformSoftValue(action_spec=BOX), actor=svgd_actor(), alpha=AutoTemperature(-2.0))
    with pytest.raises(ValueError, match="learned temperature"):
        SoftQLoss(qnet, ExactSoftValue(), alpha=AutoTemperature(1.0))


def test_policy_and_proposal_default_to_the_actor():
    loss = sac()
    assert loss.soft_value.policy is loss.actor
    qnet = continuous_qvalue_network(OBS, ACT, num_cells=[8])
    actor = gaussian_actor()
    loss = SoftQLoss(qnet, ImportanceSoftValue(num_samples=4), actor=actor, alpha=0.5)
    assert loss.soft_value.proposal is actor
    with pytest.raises(ValueError, match="PolicySoftValue has no policy"):
        SoftQLoss(qnet, PolicySoftValue(), alpha=0.5)
    with pytest.raises(ValueError, match="tractable log-probability"):
        SoftQLoss(qnet, ImportanceSoftValue(), actor=svgd_actor(), alpha=0.5)


def test_parameter_groups_cover_every_parameter_once():
    loss = sac()
    groups = loss.parameter_groups(lr_qvalue=1e-3, lr_actor=1e-4)
    assert [g["name"] for g in groups] == ["qvalue", "actor", "alpha"]
    assert groups[0]["lr"] == 1e-3 and groups[1]["lr"] == 1e-4 and "lr" not in groups[2]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in loss.parameters()}
    optim = torch.optim.Adam(groups, lr=3e-4)
    assert [g["lr"] for g in optim.param_groups] == [1e-3, 1e-4, 3e-4]


class _NoSync:
    """Make every host read of a tensor (``item``, ``bool``, ``float``, ``int``, ``tolist``) raise."""

    names = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist")

    def __enter__(self):
        self.saved = {name: getattr(torch.Tensor, name) for name in self.names}

        def refuse(name):
            def method(self, *args, **kwargs):
                raise AssertionError(f"host synchronisation: Tensor.{name} called in the hot path")

            return method

        for name in self.names:
            setattr(torch.Tensor, name, refuse(name))
        return self

    def __exit__(self, *exc):
        for name, method in self.saved.items():
            setattr(torch.Tensor, name, method)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_forward_and_backward_never_read_a_tensor_on_the_host(name):
    build, discrete, loss_keys = ALGORITHMS[name]
    torch.manual_seed(0)
    loss = build()
    SoftUpdate(loss, tau=0.1)
    td = batch(discrete)
    loss(td)  # first call: lazily built TorchRL estimator pieces are not the hot path
    with _NoSync():
        out = loss(td)
        sum(out[k] for k in loss_keys).backward()
    # the guard is real: it catches a read
    with _NoSync(), pytest.raises(AssertionError, match="host synchronisation"):
        float(out["loss_qvalue"])
