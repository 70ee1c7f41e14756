"""The command line every off-policy recipe shares: its groups, presets, report and pre-run check.

:func:`off_policy_recipe` makes the :class:`~maxent_components.runs.Recipe` of a recipe. It loads no
PyTorch: the parts are built (:mod:`maxent_components.recipes.parts`) only when a run or its checks
need them, so ``--help`` and a mistyped option answer at once.
"""

from __future__ import annotations

import functools

from omegaconf import DictConfig

from maxent_components.recipes.options import ENV_DOCS, GROUPS, SMOKE, OffPolicyConfig
from maxent_components.runs import Recipe
from maxent_components.training.report import run_report

__all__ = ["check_population", "closing", "off_policy_recipe"]


def closing(build, *, population: str | None = None):
    """``check(cfg)`` for :class:`~maxent_components.runs.Recipe`: build the parts (their constructors
    check every option), check the task's options (:func:`check_task`) and close the environments;
    ``population``: why the recipe cannot train a population (``None``: it can)."""

    def check(cfg: DictConfig) -> None:
        from maxent_components.recipes.parts import check_task
        from maxent_components.training.warm_start import warm_start

        check_population(cfg, population)
        env, eval_env, loss, *_ = build(cfg)
        try:
            check_task(cfg, eval_env, loss.actor)
            if cfg.get("init_from"):
                warm_start(loss, cfg.init_from, seed=cfg.seed)
        finally:
            env.close()
            eval_env.close()

    return check


def check_population(cfg: DictConfig, refusal: str | None) -> None:
    """Refuse ``population=N`` where it cannot run: a recipe that trains no population (``refusal`` says
    why), a compiled update, several environments per member."""
    if cfg.get("population", 1) == 1:
        return
    if refusal is not None:
        raise ValueError(f"population={cfg.population}: {refusal}")
    if cfg.compile != "none":
        raise ValueError(f"population={cfg.population} trains its members eagerly under torch.vmap; compile="
                         f"{cfg.compile} is not supported with it (compile=none).")
    if cfg.num_envs != 1:
        raise ValueError(f"population={cfg.population} steps one environment per member; num_envs={cfg.num_envs} "
                         f"is not supported with it (num_envs=1).")


def _learning_curve(cfg: DictConfig, run, loss, rollouts, summary: dict) -> dict:
    from maxent_components.recipes.parts import with_learning_curve

    return with_learning_curve(cfg, run, summary)


def _dispatch(cfg: DictConfig, run, *, train, build, finish, name: str) -> dict:
    """One run, or with ``population=N`` its ``N`` members (:mod:`maxent_components.recipes.population`)."""
    if cfg.get("population", 1) > 1:
        from maxent_components.recipes.population import train_population

        return train_population(cfg, run, build=build, name=name, finish=finish)
    return train(cfg, run, name=name)


def off_policy_recipe(
    name: str, train, build, *, description: str, schema: type = None, presets: dict | None = None,
    neutral: dict | None = None, action_space: str | None = None, density: bool = False, finish=None,
    population: str | None = None,
) -> Recipe:
    """The :class:`~maxent_components.runs.Recipe` of an off-policy recipe: its groups, the ``smoke``
    preset, the report, and ``build`` as the check run on every job before anything runs; ``neutral``:
    group options added later; ``action_space`` (``"continuous"`` or ``"discrete"``): the kind of task it
    trains on, and ``density``: whether its sampler must report log-probabilities; ``--help`` lists the
    parts that fit (see :class:`~maxent_components.runs.Recipe`). ``finish(cfg, run, loss, rollouts,
    summary)``: a population member's figures (default: its learning curve); ``population``: why the
    recipe cannot train a population (``None``: ``population=N`` trains ``N`` seeds together)."""
    return Recipe(
        name,
        functools.partial(_dispatch, train=train, build=build, finish=finish or _learning_curve, name=name),
        schema=schema or OffPolicyConfig,
        description=description,
        check=closing(build, population=population),
        presets={"smoke": SMOKE, **(presets or {})},
        groups=GROUPS,
        group_docs={"env": ENV_DOCS},
        neutral=neutral,
        report=functools.partial(run_report, name, groups=GROUPS[1:]),
        fits=functools.partial(_fits, action_space, density),
    )


def _fits(action_space: str | None, density: bool, group: str, cls: type) -> bool:
    """Whether a part's class works in ``action_space`` (as it declares in ``action_spaces``) and, for a
    sampler of a recipe that needs a density, reports log-probabilities (``has_log_prob``)."""
    spaces = getattr(cls, "action_spaces", None)
    if action_space is not None and spaces is not None and action_space not in spaces:
        return False
    return not (density and group == "sampler" and getattr(cls, "has_log_prob", True) is False)
