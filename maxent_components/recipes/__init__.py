"""The recipes, installed with the package: ``python -m maxent_components.recipes.<name> --help``.

- ``sql``: continuous soft Q-learning (any sampler, any soft value), MultiGoal and Pendulum;
- ``soft_dqn``: soft DQN on discrete actions;
- ``discrete_sac``: discrete SAC;
- ``soft_q_iteration``: exact soft Q-iteration on a grid world.

Their configs are Hydra config groups in ``conf/``; the files under ``recipes/`` of a clone run the
same applications.
"""
