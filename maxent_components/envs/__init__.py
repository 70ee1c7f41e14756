"""Environments for testing maximum-entropy agents: the multimodal MultiGoal task."""

from maxent_components.envs.multigoal import (
    ENV_ID,
    GOAL_POSITIONS,
    MultiGoalEnv,
    distances_to_goals,
    episode_paths,
    evaluation_metrics,
    goals_hit,
    goals_reached,
    nearest_goal,
    register_envs,
)

__all__ = [
    "ENV_ID",
    "GOAL_POSITIONS",
    "MultiGoalEnv",
    "distances_to_goals",
    "episode_paths",
    "evaluation_metrics",
    "goals_hit",
    "goals_reached",
    "nearest_goal",
    "register_envs",
]
