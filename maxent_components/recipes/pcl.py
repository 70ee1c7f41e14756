"""Path consistency learning (PCL) on trajectory slices, on CartPole-v1 by default.

PCL (Nachum, Norouzi, Xu and Schuurmans, 2017, "Bridging the Gap Between Value and Policy Based
Reinforcement Learning") minimises the squared soft path consistency of ``d``-step paths,

    C = −V(s_t) + γ^d V(s_{t+d}) + Σ_{j<d} γ^j (r_{t+j} − α log π(a_{t+j}|s_{t+j})),

which vanishes exactly at the optimal soft value and policy. ``variant=pcl`` learns a value network
``V_φ`` and the actor's ``log π_θ`` (``sampler=categorical`` on discrete actions,
``clipped_gaussian`` on continuous ones: a tanh-Gaussian's density is unbounded at the edge of the
box, and fitting ``log π`` to replayed actions drives it onto the corners); ``variant=unified``
learns one soft Q function that gives both, ``V = α log ∫ exp(Q/α)`` (``soft_value=exact`` on
discrete actions) and ``log π = (Q − V)/α``, and acts with its Boltzmann policy
(``sampler=boltzmann``). Paths are slices of ``horizon`` steps of one episode from TorchRL's
``SliceSampler`` replay; every suffix of a slice is a path.

Run ``python -m maxent_components.recipes.pcl --help`` for every option. Examples::

    python -m maxent_components.recipes.pcl seed=1
    python -m maxent_components.recipes.pcl variant=unified sampler=boltzmann
    python -m maxent_components.recipes.pcl env=pendulum sampler=clipped_gaussian
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig

from maxent_components.recipes.common import off_policy_recipe
from maxent_components.recipes.options import OffPolicyConfig
from maxent_components.runs import RunDirectory, option

NAME = "pcl"


@dataclasses.dataclass
class PCLLossConfig:
    """PathConsistencyLoss: the discount of its paths (it has no ensemble and no target parameters)."""

    gamma: float = option(0.99, "Discount factor.", gt=0, le=1)


@dataclasses.dataclass
class PCLConfig(OffPolicyConfig):
    loss: PCLLossConfig = option(PCLLossConfig(), "Loss.")
    variant: str = option(
        "pcl", "pcl: a value network and the actor's log-probability; unified: one soft Q gives both.",
        choices=("pcl", "unified"),
    )
    horizon: int = option(10, "Path length d: slices of this many steps of one episode (batch_size slices per update).", ge=1)


def build(cfg: DictConfig):
    """The parts of PCL: environments, the actor, V (or Q), the loss and its optimiser."""
    from torchrl.modules import MLP, ValueOperator

    from maxent_components.modules import continuous_qvalue_network, discrete_qvalue_network
    from maxent_components.objectives import PathConsistencyLoss
    from maxent_components.recipes.parts import adam, make_envs
    from maxent_components.training import build_part

    if cfg.num_envs != 1:
        raise ValueError(f"num_envs={cfg.num_envs}: PCL samples slices of consecutive steps of one episode, "
                         f"which the replay buffer keeps for one environment only (num_envs=1).")
    if cfg.horizon > cfg.env.max_episode_steps:
        raise ValueError(f"horizon={cfg.horizon} is longer than an episode of env={cfg.env.name} "
                         f"({cfg.env.max_episode_steps} steps): no slice would fit in one episode.")
    env, eval_env, parts = make_envs(cfg)
    actor = build_part(cfg.sampler, name="sampler", **parts)
    temperature = build_part(cfg.temperature, name="temperature", **parts)
    if temperature.learned:
        raise ValueError("temperature: PCL keeps alpha fixed or annealed (temperature=fixed|annealed).")
    obs_dim, spec = parts["observation_dim"], parts["action_spec"]
    if cfg.variant == "pcl":
        if getattr(actor, "policy_network", None) is None:
            raise ValueError(f"variant=pcl learns the actor's log-probability: choose a sampler with a policy network "
                             f"(categorical, clipped_gaussian), not {type(actor).__name__}; variant=unified acts with Q's.")
        value = ValueOperator(MLP(in_features=obs_dim, out_features=1, num_cells=list(parts["num_cells"])), in_keys=["observation"])
        loss = PathConsistencyLoss(actor, value, alpha=temperature, gamma=cfg.loss.gamma)
    else:
        if actor.has_loss:
            raise ValueError(f"variant=unified acts with the Boltzmann policy of Q: choose a sampler with nothing to train (boltzmann, langevin), not {type(actor).__name__}.")
        discrete = hasattr(spec.space, "n")
        qnet = (discrete_qvalue_network(obs_dim, spec.space.n, num_cells=parts["num_cells"]) if discrete
                else continuous_qvalue_network(obs_dim, spec.shape[-1], num_cells=parts["num_cells"]))
        soft_value = build_part(cfg.soft_value, name="soft_value", actor=actor, **parts)
        loss = PathConsistencyLoss(actor, qvalue_network=qnet, soft_value=soft_value, alpha=temperature, gamma=cfg.loss.gamma)
    loss.to(cfg.device)
    return env, eval_env, loss, adam(cfg, loss)


def train(cfg: DictConfig, run: RunDirectory, *, name: str = NAME) -> dict:
    from maxent_components.recipes.parts import off_policy_loop, with_learning_curve

    env, eval_env, loss, optimizer = build(cfg)
    loop = off_policy_loop(cfg, loss, optimizer, env=env, eval_env=eval_env, run=run, name=name, slice_len=cfg.horizon)
    return with_learning_curve(cfg, run, loop.run())


recipe = off_policy_recipe(
    NAME,
    train,
    build,
    description="Path consistency learning: d-step soft consistency of a value network and a policy (or one soft Q).",
    schema=PCLConfig,
    population="PCL samples trajectory slices of one episode of one environment, which a population's shared replay does not keep per member; run the seeds separately (-m seed=0,1,...).",
)
main = recipe.main

if __name__ == "__main__":
    main()
