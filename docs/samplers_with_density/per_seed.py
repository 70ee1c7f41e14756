"""Per-run numbers the study tables summarise: one row per finished run below the folders given.

For each run: its sampler and seed, one metric at every evaluation (``--metric``, default
``eval_return``; ``goals_reached`` on MultiGoal), the wall time and the summary's ``updates_per_s`` (updates over the time spent in them, without
acting or evaluating).

    python docs/samplers_with_density/per_seed.py runs/sdens/multigoal/* --metric goals_reached
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--metric", default="eval_return")
    args = parser.parse_args()
    runs = sorted({p.parent for f in args.folders for p in Path(f).rglob("summary.json")})
    rows = []
    for run in runs:
        s = json.loads((run / "summary.json").read_text())
        if not s.get("finished"):
            continue
        cfg = s["config"]
        sampler = cfg["sampler"]["_target_"].rsplit(".", 1)[-1]
        values = [(h["step"], h.get(args.metric)) for h in s["history"] if args.metric in h]
        fmt = (lambda v: f"{v:g}") if args.metric == "goals_reached" else (lambda v: f"{v:.0f}")
        rows.append((sampler, cfg["seed"], ", ".join(fmt(v) for _, v in values), s["wall_time_s"],
                     s["updates_per_s"], [step for step, _ in values]))
    if rows:
        print(f"{args.metric} at env steps {', '.join(str(x) for x in rows[0][-1])}\n")
    print(f"| sampler | seed | {args.metric} by evaluation | wall time (s) | updates/s |")
    print("|---|---|---|---|---|")
    for sampler, seed, values, wall, ups, _ in rows:
        print(f"| {sampler} | {seed} | {values} | {wall:.0f} | {ups:.1f} |")


if __name__ == "__main__":
    main()
