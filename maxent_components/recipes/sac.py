"""Soft actor-critic (SAC), on Pendulum-v1 by default.

SAC (Haarnoja, Zhou, Abbeel and Levine, 2018, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep
Reinforcement Learning with a Stochastic Actor"; "Soft Actor-Critic Algorithms and Applications")
regresses twin critics on the soft value of its own tanh-Gaussian policy,

    y = r + γ (1 − terminated) · min_i E_{a'∼π_φ}[Q_θ̄_i(s', a') − α log π_φ(a'|s')],

trains the actor on the reparameterised ``E[α log π_φ(a|s) − min_i Q_θ_i(s, a)]`` and learns ``log α``
towards the target entropy ``−dim(A)``. It is no new loss: the same ``SoftQLoss`` and the same
training as soft Q-learning (``sql.py``) with other parts, ``sampler=gaussian soft_value=policy
temperature=auto loss.num_qvalue_nets=2``, composed as
``SoftQLoss(qnet, PolicySoftValue(), actor=GaussianSampler(...), alpha=AutoTemperature(...), num_qvalue_nets=2)``.
Evaluation returns use the actor's mean action.

Run ``python -m maxent_components.recipes.sac --help`` for every option. Examples::

    python -m maxent_components.recipes.sac stop_when_solved=true
    python -m maxent_components.recipes.sac -m seed=0,1,2 hydra/launcher=joblib
"""

from __future__ import annotations

from maxent_components.recipes.common import off_policy_recipe
from maxent_components.recipes.sql import build, train

NAME = "sac"

recipe = off_policy_recipe(
    NAME,
    train,
    build,
    description="SAC: twin critics on the policy soft value of a tanh-Gaussian actor, learned temperature.",
)
main = recipe.main

if __name__ == "__main__":
    main()
