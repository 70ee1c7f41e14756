"""Discrete SAC on a discrete-action task (CartPole-v1 by default).

Soft actor-critic for discrete actions (Christodoulou, 2019, "Soft Actor-Critic for Discrete Action
Settings"): twin critics regress on the exact policy soft value of a learned categorical actor,

    y = r + γ (1 − terminated) · min_i Σ_a' π_φ(a'|s') (Q_θ̄_i(s', a') − α log π_φ(a'|s')),

the actor minimises ``Σ_a π_φ(a|s)(α log π_φ(a|s) − min_i Q_θ_i(s, a))`` and ``log α`` is learned
towards the target entropy ``0.6 log |A|``. It is soft DQN's training (``soft_dqn.py``) with other
parts: ``sampler=categorical soft_value=policy temperature=auto loss.num_qvalue_nets=2``, composed
as ``SoftQLoss(qnet, PolicySoftValue(), actor=CategoricalSampler(...), alpha=AutoTemperature(...))``.

Run ``python -m maxent_components.recipes.discrete_sac --help`` for every option.
"""

from __future__ import annotations

from maxent_components.recipes.common import off_policy_recipe
from maxent_components.recipes.soft_dqn import build, train

NAME = "discrete_sac"

recipe = off_policy_recipe(
    NAME,
    train,
    build,
    description="Discrete SAC: twin critics on the policy soft value of a categorical actor, learned temperature.",
    action_space="discrete",
)
main = recipe.main

if __name__ == "__main__":
    main()
