"""What the tests of the samplers with a density (SteinSampler, DiffusionSampler) share: a fixed Gaussian
network, the unbiased width estimator, and the checks every sampler passes (API, collector, ownership,
no host reads), run by each test file on its own sampler."""

from __future__ import annotations

import math
import warnings

import torch
from tensordict import TensorDict
from test_ownership import _NoSync
from torch import nn
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.objectives import SoftUpdate

from maxent_components import AutoTemperature, PolicySoftValue, SoftQLoss
from maxent_components.modules import continuous_qvalue_network


class FixedGaussian(nn.Module):
    """``observation ↦ (loc, scale)`` with trainable constants: a ``q_0`` whose law the tests know."""

    def __init__(self, loc, scale):
        super().__init__()
        self.loc = nn.Parameter(torch.as_tensor(loc, dtype=torch.get_default_dtype()))
        self.log_scale = nn.Parameter(torch.as_tensor(scale, dtype=torch.get_default_dtype()).log())

    def forward(self, observation):
        shape = (*observation.shape[:-1], self.loc.shape[-1])
        return self.loc.to(observation.dtype).expand(shape), self.log_scale.exp().to(observation.dtype).expand(shape)


def width_estimates(actions: torch.Tensor, log_prob: torch.Tensor, edges: torch.Tensor):
    """Per cell of the grid ``edges`` (each dimension alike): ``mean_i 1{a_i ∈ cell} / π̂(a_i)``, its
    standard error and the count of samples in the cell.

    For samples of ``π``, ``E[1{a ∈ C} / π̂(a)] = ∫_C π/π̂``, which is the cell's volume exactly when the
    reported density ``π̂`` is ``π`` there: a check of a density at its own samples, with no density
    estimate and no binning error. ``actions [n, D]``, ``log_prob [n]``; returns three tensors ``[C^D]``.
    """
    cells, n = len(edges) - 1, len(actions)
    index = torch.bucketize(actions.contiguous(), edges) - 1
    inside = ((index >= 0) & (index < cells)).all(-1)
    flat = torch.zeros(n, dtype=torch.long)
    for d in range(actions.shape[-1]):
        flat = flat * cells + index[:, d].clamp(0, cells - 1)
    terms = torch.where(inside, (-log_prob).exp(), torch.zeros_like(log_prob))
    size = cells ** actions.shape[-1]
    mean = torch.zeros(size, dtype=log_prob.dtype).index_add_(0, flat, terms) / n
    second = torch.zeros(size, dtype=log_prob.dtype).index_add_(0, flat, terms.square()) / n
    counts = torch.zeros(size, dtype=torch.long).index_add_(0, flat, inside.long())
    return mean, ((second - mean.square()).clamp(min=0) / n).sqrt(), counts


# -- the checks every sampler passes ------------------------------------------------------------------
BOX = Bounded(-1.0, 1.0, shape=(2,))
OBS = 3


def check_api(sampler, td: TensorDict) -> None:
    """Shapes, bounds, reproducibility with a generator, ``forward`` and the deterministic action."""
    n, batch = 5, tuple(td.batch_size)
    actions, log_prob = sampler.sample(td, n, generator=torch.Generator().manual_seed(0))
    assert actions.shape == (n, *batch, 2) and log_prob.shape == (n, *batch)
    assert bool(((actions >= -1) & (actions <= 1)).all()) and bool(torch.isfinite(log_prob).all())
    again, log_prob_again = sampler.sample(td, n, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, actions, rtol=0, atol=0)
    torch.testing.assert_close(log_prob_again, log_prob, rtol=0, atol=0)
    other, _ = sampler.sample(td, n, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(other, actions)
    assert sampler.has_log_prob and sampler.has_loss
    assert sampler.out_keys == ["action", "action_log_prob"] and sampler.in_keys == ["observation"]
    with set_exploration_type(ExplorationType.RANDOM):
        out = sampler(td.clone())
    assert out["action"].shape == (*batch, 2) and out["action_log_prob"].shape == batch
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        first, second = sampler(td.clone()), sampler(td.clone())
    torch.testing.assert_close(first["action"], second["action"], rtol=0, atol=0)
    torch.testing.assert_close(first["action_log_prob"], second["action_log_prob"], rtol=0, atol=0)
    for bad in (0, -1, 2.0):
        try:
            sampler.sample(td, bad)
        except ValueError as err:
            assert "num_samples" in str(err)
        else:
            raise AssertionError(f"num_samples={bad} was accepted")


def check_drives_a_collector(make_actor) -> None:
    """A TorchRL collector on Pendulum-v1 acts with the sampler and records its log-probabilities."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchrl.collectors' own API notices
        from torchrl.collectors import Collector
        from torchrl.envs import GymEnv

        torch.manual_seed(0)
        env = GymEnv("Pendulum-v1")
        env.set_seed(0)
        qnet = continuous_qvalue_network(3, 1, num_cells=[16])
        actor = make_actor(qnet, env.action_spec)
        collector = Collector(env, actor, frames_per_batch=16, total_frames=32, auto_register_policy_transforms=False)
        batches = list(collector)
        collector.shutdown()
    env.close()
    assert len(batches) == 2
    for batch in batches:
        assert batch["action"].shape == (16, 1) and batch["action_log_prob"].shape == (16,)
        assert bool(((batch["action"] >= -2) & (batch["action"] <= 2)).all())
        assert bool(torch.isfinite(batch["action_log_prob"]).all())
        assert ("next", "reward") in batch.keys(True)


def transitions(n: int = 8) -> TensorDict:
    gen = torch.Generator().manual_seed(0)
    return TensorDict(
        {
            "observation": torch.randn(n, OBS, generator=gen),
            "action": torch.rand(n, 2, generator=gen) * 2 - 1,
            "next": {
                "observation": torch.randn(n, OBS, generator=gen),
                "reward": torch.randn(n, 1, generator=gen),
                "done": torch.zeros(n, 1, dtype=torch.bool),
                "terminated": torch.zeros(n, 1, dtype=torch.bool),
            },
        },
        batch_size=[n],
    )


def sac_with(actor) -> SoftQLoss:
    """``SoftQLoss(qnet, PolicySoftValue(), actor=actor, alpha=AutoTemperature(−dim A), num_qvalue_nets=2)``."""
    qnet = continuous_qvalue_network(OBS, 2, num_cells=[16])
    loss = SoftQLoss(qnet, PolicySoftValue(), actor=actor, alpha=AutoTemperature(-2.0), num_qvalue_nets=2)
    SoftUpdate(loss, tau=0.1)
    return loss


def check_ownership(make_actor) -> None:
    """In SAC's composition each loss term reaches only its own parameters (the library's leak test),
    optimiser steps move exactly the loss's parameters and never the targets, and the forward and
    backward pass read no tensor on the host."""
    torch.manual_seed(0)
    loss = sac_with(make_actor())
    parts = {
        "loss_qvalue": {id(p) for p in loss.qvalue_network_params.values(True, True)},
        "loss_alpha": {id(p) for p in loss.temperature.parameters()},
    }
    parts["loss_actor"] = {id(p) for p in loss.actor.parameters()} - parts["loss_alpha"]
    assert parts["loss_actor"] and set().union(*parts.values()) == {id(p) for p in loss.parameters()}
    td = transitions()
    for key, owned in parts.items():
        loss.zero_grad(set_to_none=True)
        loss(td)[key].backward()
        reached = {id(p) for p in loss.parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
        assert reached and reached <= owned, key
    params = list(loss.parameters())
    before = {id(p): p.detach().clone() for p in params}
    targets = loss.target_qvalue_network_params.clone()
    optim = torch.optim.Adam(params, lr=1e-2)
    for _ in range(2):  # two steps: a layer initialised at zero passes no gradient back before its first
        optim.zero_grad()
        out = loss(td)
        assert {k for k in out.keys() if k.startswith("loss_")} == set(parts)
        assert math.isfinite(float(out["entropy"]))
        sum(out[k] for k in parts).backward()
        optim.step()
    assert {id(p) for p in params if not torch.equal(p.detach(), before[id(p)])} == set().union(*parts.values())
    assert (loss.target_qvalue_network_params == targets).all()
    with _NoSync():
        out = loss(td)
        sum(out[k] for k in parts).backward()
