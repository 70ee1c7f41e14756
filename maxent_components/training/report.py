"""The lines a recipe prints at the end of a run (or of a skipped one): budget, evaluations, bar, figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["run_report"]


def run_report(name: str, cfg: Any, summary: dict, *, groups: Sequence[str] = ()) -> str:
    """A few lines on a finished run: the budget used, the last evaluation, the bar, the figures.
    ``groups``: the config groups whose chosen class is named on the first line."""
    population = summary.get("population")
    if isinstance(population, dict) and "members" in population:  # one report per member, from its own folder
        import json
        from pathlib import Path

        lines = [f"{name}: a population of {population['size']} (seeds {', '.join(map(str, population['seeds']))})"]
        for folder in population["members"]:
            member = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
            member_cfg = {**cfg, "seed": member["config"]["seed"]} if isinstance(cfg, dict) else cfg.copy()
            if not isinstance(cfg, dict):
                member_cfg.seed = member["config"]["seed"]
            lines += [f"{folder}:", run_report(name, member_cfg, member, groups=groups)]
        return "\n".join(lines)
    from omegaconf import OmegaConf

    choices = ", ".join(f"{g}={OmegaConf.select(cfg, g + '._target_', default='').rsplit('.', 1)[-1]}" for g in groups)
    lines = [
        f"{name} on {cfg.env.name} ({choices}), seed {cfg.seed}: {summary['env_steps']} env steps, "
        f"{summary['updates']} updates in {summary['wall_time_s']:.1f} s",
        f"last evaluation return {summary['eval_return_mean']:.1f}, best {summary['best_eval_return']:.1f}",
    ]
    last = summary["history"][-1] if summary.get("history") else {}
    for key in (k for k in last if k not in ("step", "eval_return", "eval_length")):
        lines.append(f"{key}: last {last[key]:g}, best {summary.get('best_' + key, last[key]):g}")
    if summary["solved_metric"] is not None and summary["solved_threshold"] is not None:
        bar = f"{summary['solved_metric']} >= {summary['solved_threshold']:g}"
        met = f"first met at step {summary['solved_at_step']}" if summary["solved"] else "not met"
        lines.append(f"bar {bar}: {met}")
    lines += [f"figure {key}: {path}" for key, path in summary.get("figures", {}).items()]
    return "\n".join(lines)
