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

__all__ = ["closing", "off_policy_recipe"]


def closing(build):
    """``check(cfg)`` for :class:`~maxent_components.runs.Recipe`: build the parts (their constructors
    check every option), check the task's options (:func:`check_task`) and close the environments."""

    def check(cfg: DictConfig) -> None:
        from maxent_components.recipes.parts import check_task
        from maxent_components.training.warm_start import warm_start

        env, eval_env, loss, *_ = build(cfg)
        try:
            check_task(cfg, eval_env, loss.actor)
            if cfg.get("init_from"):
                warm_start(loss, cfg.init_from, seed=cfg.seed)
        finally:
            env.close()
            eval_env.close()

    return check


def off_policy_recipe(
    name: str, train, build, *, description: str, schema: type = None, presets: dict | None = None,
    neutral: dict | None = None, action_space: str | None = None, density: bool = False,
) -> Recipe:
    """The :class:`~maxent_components.runs.Recipe` of an off-policy recipe: its groups, the ``smoke``
    preset, the report, and ``build`` as the check run on every job before anything runs; ``neutral``:
    group options added later; ``action_space`` (``"continuous"`` or ``"discrete"``): the kind of task it
    trains on, and ``density``: whether its sampler must report log-probabilities; ``--help`` lists the
    parts that fit (see :class:`~maxent_components.runs.Recipe`)."""
    return Recipe(
        name,
        functools.partial(train, name=name),
        schema=schema or OffPolicyConfig,
        description=description,
        check=closing(build),
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
