"""SAC's update with the actors that have a density: the Gaussian, Stein (S2AC) and diffusion (DIME).

The same composition, ``SoftQLoss(qnet, PolicySoftValue(), actor=..., alpha=AutoTemperature(-6),
num_qvalue_nets=2)``, one Adam over ``loss.parameters()`` (lr 3e-4), ``ForeachSoftUpdate`` (τ = 0.005),
``sum(loss_*)`` backpropagated, at HalfCheetah-v5 shapes: observation 17, action 6 in [-1, 1],
256×256 ReLU MLPs for the actor's network and each of the two critics, batch 256 drawn from 10,000
random transitions, γ = 0.99. Only the actor changes:

- ``gaussian``: ``GaussianSampler`` (SAC);
- ``stein``: ``SteinSampler`` at the recipe's defaults (S2AC's: 10 particles, 3 SVGD steps of 0.1,
  the first-order log-determinant); ``stein_exact`` the same with ``log_det="exact"``;
- ``diffusion``: ``DiffusionSampler`` at the recipe's default (DIME's 16 denoising steps); the
  ``--diffusion-steps`` option adds rows with other step counts (``diffusion_K``).

Each Stein update evaluates ``Q`` and its gradient on every particle of every state three times for
the critic's target (no graph) and three times for the actor (with ``create_graph``, so the backward
is a second-order one); each diffusion update runs its network 16 times for each. That, not the
library, is what they cost.

Reported: updates per second, the median over ``--rounds`` interleaved rounds of ``--updates``
updates each (after ``--warmup`` untimed ones per contender per round), and the ratio to the
Gaussian's (higher is faster), as a Markdown table and one JSON line prefixed ``RESULT``.

Usage::

    python benchmarks/density_samplers.py --threads 1
    python benchmarks/density_samplers.py --threads 1 2 --contenders gaussian stein --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch
from tensordict import TensorDict

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchrl\..*")

from torchrl.data import Bounded  # noqa: E402

from maxent_components import (  # noqa: E402
    AutoTemperature,
    DiffusionSampler,
    GaussianSampler,
    PolicySoftValue,
    SoftQLoss,
    SteinSampler,
)
from maxent_components.modules import continuous_qvalue_network, tanh_normal_actor_network  # noqa: E402
from maxent_components.objectives import ForeachSoftUpdate  # noqa: E402

OBS_DIM, ACT_DIM, CELLS, BATCH, BUFFER = 17, 6, (256, 256), 256, 10_000
GAMMA, TAU, LR, TARGET_ENTROPY = 0.99, 0.005, 3e-4, -6.0
BOX = Bounded(-1.0, 1.0, shape=(ACT_DIM,))
CONTENDERS = ("gaussian", "stein", "stein_exact", "diffusion")


def transitions(n: int, seed: int = 0) -> TensorDict:
    """Random transitions: Gaussian observations and rewards, actions in the box, never terminal."""
    gen = torch.Generator().manual_seed(seed)
    done = torch.zeros(n, 1, dtype=torch.bool)
    return TensorDict(
        {
            "observation": torch.randn(n, OBS_DIM, generator=gen),
            "action": torch.rand(n, ACT_DIM, generator=gen) * 2 - 1,
            "next": {
                "observation": torch.randn(n, OBS_DIM, generator=gen),
                "reward": torch.randn(n, 1, generator=gen),
                "done": done,
                "terminated": done.clone(),
            },
        },
        batch_size=[n],
    )


def actor(name: str):
    if name == "gaussian":
        network = tanh_normal_actor_network(OBS_DIM, ACT_DIM, num_cells=CELLS)
        return GaussianSampler(policy_network=network, action_spec=BOX)
    if name.startswith("stein"):
        log_det = "exact" if name == "stein_exact" else "first_order"
        return SteinSampler(action_spec=BOX, observation_dim=OBS_DIM, num_cells=CELLS, log_det=log_det)
    steps = int(name.rpartition("_")[2]) if "_" in name else 16
    return DiffusionSampler(action_spec=BOX, observation_dim=OBS_DIM, num_cells=CELLS, num_steps=steps)


def update(name: str, data: TensorDict):
    """One SAC update with actor ``name``: draw a batch, the losses, backward, Adam, Polyak."""
    loss = SoftQLoss(
        continuous_qvalue_network(OBS_DIM, ACT_DIM, num_cells=CELLS),
        PolicySoftValue(),
        actor=actor(name),
        alpha=AutoTemperature(TARGET_ENTROPY),
        num_qvalue_nets=2,
    )
    loss.make_value_estimator(gamma=GAMMA)
    optimiser = torch.optim.Adam(loss.parameters(), lr=LR)
    updater = ForeachSoftUpdate(loss, tau=TAU)

    def step() -> None:
        out = loss(data[torch.randint(data.shape[0], (BATCH,))])
        sum(v for k, v in out.items() if k.startswith("loss_")).backward()
        optimiser.step()
        optimiser.zero_grad()
        updater.step()

    return step


def updates_per_s(step, updates: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(updates):
        step()
    return updates / (time.perf_counter() - start)


def run(threads: int, options: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = transitions(BUFFER)
    names = list(options.contenders) + [f"diffusion_{k}" for k in options.diffusion_steps]
    steps = {name: update(name, data) for name in names}
    rates: dict[str, list[float]] = {name: [] for name in steps}
    # Interleaved rounds: drift in machine load affects every contender alike.
    for _ in range(options.rounds):
        for name, step in steps.items():
            rates[name].append(updates_per_s(step, options.updates, options.warmup))
    base = statistics.median(rates["gaussian"]) if "gaussian" in rates else float("nan")
    return [
        {
            "contender": name,
            "threads": threads,
            "updates_per_s": statistics.median(rates[name]),
            "ratio_to_gaussian": statistics.median(rates[name]) / base,
            "rounds_updates_per_s": rates[name],
        }
        for name in rates
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", nargs="+", type=int, default=[1],
                        help="torch intra-op thread counts to run the comparison with (default: 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: 5)")
    parser.add_argument("--updates", type=int, default=20, help="timed updates per contender per round (default: 20)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed updates per contender before each round (default: 3)")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS,
                        help="which actors to time (default: all)")
    parser.add_argument("--diffusion-steps", nargs="*", type=int, default=[], metavar="K",
                        help="also time DiffusionSampler with these numbers of denoising steps")
    options = parser.parse_args()
    if options.rounds < 1 or options.updates < 1 or options.warmup < 0 or min(options.threads) < 1:
        parser.error("--rounds, --updates and every --threads value must be >= 1; --warmup >= 0")
    if any(k < 1 for k in options.diffusion_steps):
        parser.error("every --diffusion-steps value must be >= 1")
    print(f"torch {torch.__version__}; SAC update at HalfCheetah shapes; median updates/s; ratio = actor / gaussian")
    print("| actor | threads | updates/s (median) | ratio to gaussian |")
    print("|---|---|---|---|")
    results = []
    for threads in options.threads:
        for r in run(threads, options):
            print(f"| {r['contender']} | {r['threads']} | {r['updates_per_s']:.1f} | {r['ratio_to_gaussian']:.2f} |")
            results.append(r)
    print("RESULT " + json.dumps({"benchmark": "density_samplers", "args": vars(options), "results": results}))


if __name__ == "__main__":
    main()
