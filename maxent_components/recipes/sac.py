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

The actor must have a density: ``sampler=gaussian`` (SAC), ``sampler=stein`` (S2AC: a Gaussian carried
by SVGD steps, Messaoud et al., 2024) or ``sampler=diffusion`` (DIME: a denoising diffusion policy with
a bound on its entropy, Celik et al., 2025). A sampler without one (``svgd``, ``langevin``,
``svgd_mala``) is refused before anything runs; it belongs to the ``sql`` recipe.

Run ``python -m maxent_components.recipes.sac --help`` for every option. Examples::

    python -m maxent_components.recipes.sac stop_when_solved=true
    python -m maxent_components.recipes.sac -m seed=0,1,2 hydra/launcher=joblib
    python -m maxent_components.recipes.sac sampler=stein      # S2AC
    python -m maxent_components.recipes.sac sampler=diffusion  # DIME
"""

from __future__ import annotations

from omegaconf import DictConfig

from maxent_components.recipes import sql
from maxent_components.recipes.common import off_policy_recipe
from maxent_components.runs import RunDirectory

NAME = "sac"


def check_density(cfg: DictConfig) -> None:
    """Refuse a sampler whose ``log π(a|s)`` is intractable: SAC's critic target and temperature need it."""
    from maxent_components.training.builders import import_object

    sampler = import_object("sampler._target_", cfg.sampler._target_)
    if not getattr(sampler, "has_log_prob", True):
        raise ValueError(
            f"sampler: {sampler.__name__} has no density, which SAC's policy soft value and learned temperature "
            f"need; use sampler=stein for SVGD with a density (S2AC), sampler=diffusion or sampler=gaussian, "
            f"or the sql recipe for {sampler.__name__}."
        )


def build(cfg: DictConfig):
    """SAC's parts: those of soft Q-learning (``sql.build``) with an actor that has a density."""
    check_density(cfg)
    return sql.build(cfg)


def train(cfg: DictConfig, run: RunDirectory, *, name: str = NAME) -> dict:
    check_density(cfg)
    return sql.train(cfg, run, name=name)


recipe = off_policy_recipe(
    NAME,
    train,
    build,
    description="SAC: twin critics on the policy soft value of a tanh-Gaussian actor, learned temperature.",
    action_space="continuous",
    density=True,
    finish=sql.finish,
)
main = recipe.main

if __name__ == "__main__":
    main()
