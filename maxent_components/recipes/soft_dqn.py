"""Soft DQN on a discrete-action task (CartPole-v1 by default).

Soft Q-learning with finitely many actions needs no approximation (Haarnoja et al., 2017, eq. 7;
Fox et al., 2016, "Taming the Noise in Reinforcement Learning via Soft Updates"): the target is the
exact soft value and the policy is the exact Boltzmann policy of the online Q ensemble,

    y = r + γ (1 − terminated) · α log Σ_a' exp(Q_θ̄(s', a')/α),     π(a|s) = softmax_a(Q_θ(s, a)/α),

composed as ``SoftQLoss(qnet, ExactSoftValue(), actor=BoltzmannSampler(...), alpha=α)``
(``soft_value=exact sampler=boltzmann temperature=fixed``). Training stops at the first evaluation
over the task's bar (CartPole: a mean return of 475). The same code with a categorical actor, the
policy soft value and a learned temperature is discrete SAC (``discrete_sac.py``).

Run ``python -m maxent_components.recipes.soft_dqn --help`` for every option. Examples::

    python -m maxent_components.recipes.soft_dqn seed=1
    python -m maxent_components.recipes.soft_dqn -m seed=0,1,2 alpha=0.005,0.05 hydra/launcher=joblib
"""

from __future__ import annotations

from omegaconf import DictConfig

from maxent_components.recipes.common import off_policy_recipe
from maxent_components.runs import RunDirectory

NAME = "soft_dqn"


def build(cfg: DictConfig):
    """The parts: environments, the Q network over the finite action set, actor, soft value, loss, optimiser."""
    from maxent_components.modules import discrete_qvalue_network
    from maxent_components.recipes.parts import action_count, adam, make_envs, soft_q_loss
    from maxent_components.training import build_part

    env, eval_env, parts = make_envs(cfg)
    qnet = discrete_qvalue_network(parts["observation_dim"], action_count(cfg, parts["action_spec"]), num_cells=parts["num_cells"])
    actor = build_part(cfg.sampler, name="sampler", **parts)  # acts (and, if amortized, learns softmax(Q/α))
    soft_value = build_part(cfg.soft_value, name="soft_value", actor=actor, **parts)  # V̂(s') of the target
    loss = soft_q_loss(cfg, qnet, soft_value, actor, build_part(cfg.temperature, name="temperature", **parts))
    return env, eval_env, loss, adam(cfg, loss)


def train(cfg: DictConfig, run: RunDirectory, *, name: str = NAME) -> dict:
    from maxent_components.recipes.parts import off_policy_loop, with_learning_curve

    env, eval_env, loss, optimizer = build(cfg)
    loop = off_policy_loop(cfg, loss, optimizer, env=env, eval_env=eval_env, run=run, name=name)
    return with_learning_curve(cfg, run, loop.run())


recipe = off_policy_recipe(
    NAME,
    train,
    build,
    description="Soft DQN: the exact soft value as target, the Boltzmann policy of the online Q ensemble acts.",
    action_space="discrete",
)
main = recipe.main

if __name__ == "__main__":
    main()
