"""Actions of trained MultiGoal policies at the state (2.5, 2.5), counted by the goal they head for.

At (2.5, 2.5) the two nearest goals are (5, 0) and (0, 5): an action with a[0] > a[1] heads towards
(5, 0), one with a[0] < a[1] towards (0, 5). For every finished run below the folders given, this
draws 1,000 actions from the trained policy (``sample``, the maximum-entropy policy itself; generator
seeded with the run's seed) and prints the share on each side, and the share within 0.25 of the
diagonal a[0] = a[1] (heading for neither goal; the line between the two clusters).

    python docs/samplers_with_density/clusters.py runs/sdens/multigoal/*
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tensordict import TensorDict

from maxent_components.compose import load_run

STATE = (2.5, 2.5)
NUM = 1000


def shares(folder: Path) -> dict:
    cfg, env, eval_env, loss = load_run(folder)
    for e in (env, eval_env):
        if not e.is_closed:
            e.close()
    td = TensorDict(observation=torch.tensor([STATE], dtype=torch.float32), batch_size=[1])
    # as the recipes' q_contours.png draws its dots (some samplers differentiate Q: no no_grad here)
    actions, _ = loss.actor.sample(td, NUM, generator=torch.Generator().manual_seed(int(cfg.seed)))
    a = actions.reshape(NUM, -1).detach()
    d = a[:, 0] - a[:, 1]
    return {
        "sampler": cfg.sampler._target_.rsplit(".", 1)[-1],
        "seed": int(cfg.seed),
        "to (5, 0)": float((d > 0).float().mean()),
        "to (0, 5)": float((d < 0).float().mean()),
        "within 0.25 of the diagonal": float((d.abs() < 0.25 * 2**0.5).float().mean()),
    }


def main(folders: list[str]) -> None:
    runs = sorted({p.parent for f in folders for p in Path(f).rglob("summary.json")})
    print("| sampler | seed | towards (5, 0) | towards (0, 5) | minority side | within 0.25 of the diagonal |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        if not json.loads((run / "summary.json").read_text()).get("finished"):
            continue
        s = shares(run)
        print(f"| {s['sampler']} | {s['seed']} | {s['to (5, 0)']:.2f} | {s['to (0, 5)']:.2f} | "
              f"{min(s['to (5, 0)'], s['to (0, 5)']):.2f} | {s['within 0.25 of the diagonal']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
