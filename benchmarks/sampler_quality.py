"""How close each continuous sampler gets to exact samples of known targets on the action box.

Each target is a density ``p(a)`` on the box ``[-1, 1]^D``, presented to the samplers as a Q network
``Q(s, a) = log p(a)`` at temperature ``α = 1``, so ``exp(Q/α) ∝ p``. Exact samples come from
rejection (mixtures truncated to the box) or from a fine grid (the banana). Reported per sampler:

- ``mmd``: squared maximum mean discrepancy (RBF kernels at three bandwidths) to exact samples,
  relative to that of uniform samples (0: exact, up to sampling noise; 1: as far as uniform); the
  ``exact`` row is a second set of exact samples, the noise floor;
- ``mode_mass``: the share of samples within ``3σ`` of each mode (exact shares beside them),
  ``off_mode``: the share near no mode;
- ``ms_per_1000``: milliseconds to draw 1,000 samples (after training, for the amortized samplers).

Samplers: amortized SVGD and the Gaussian trained ``--train-steps`` steps on their own losses,
non-amortized SVGD (``refine``) from uniform particles, ULA and MALA from uniform starts, and MALA
warm-started from the trained amortized SVGD (``svgd+mala``, ``--mala-steps`` steps).

The ``--svgd-*`` options set the amortized SVGD's particles per state, fixed share, bandwidth rule
and floor, noise size, hidden sizes, Adam learning rate and temperature schedule (also used by
``svgd+mala``); their defaults reproduce the published numbers (32 particles, half fixed,
``reference`` bandwidth floored at 1e-3, noise size = action size, 2×128, 1e-3, ``α = 1``
throughout). ``--svgd-anneal ALPHA0`` trains it on ``exp(Q/α_t)`` with ``α_t`` lowered log-linearly
from ``ALPHA0`` to 1 over the first ``--svgd-anneal-fraction`` of the steps (the sampler's
``anneal_from`` and ``anneal_steps``): annealed SVGD (D'Angelo & Fortuin, 2021, "Annealed Stein Variational
Gradient Descent"), whose early, nearly flat targets let the repulsion spread the particles over
the box before the modes pull them in. ``--svgd-noise-components C`` gives the sampling network a
discrete noise input, ``C`` equally likely pieces (``ComponentNoiseNetwork``), to test whether the
mass it leaves between modes comes from its noise being connected.

Usage::

    python benchmarks/sampler_quality.py --threads 1 --train-steps 3000 --json results.json
    python benchmarks/sampler_quality.py --targets four_modes_2d --samplers svgd --svgd-particles 128
    python benchmarks/sampler_quality.py --samplers svgd svgd+mala mala --svgd-anneal 100
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded
from torchrl.modules import MLP

from maxent_components.samplers import GaussianSampler, LangevinSampler, SVGDSampler
from maxent_components.temperature import scheduled_temperatures

N = 1000  # samples compared per sampler


# -- targets --------------------------------------------------------------------------------------
class Mixture:
    """Equal-weight isotropic Gaussian mixture truncated to the box."""

    def __init__(self, means, sigma):
        self.means, self.sigma = torch.as_tensor(means, dtype=torch.float64), float(sigma)
        self.dim = self.means.shape[-1]

    def log_prob(self, a):
        d2 = (a.unsqueeze(-2) - self.means.to(a.dtype)).square().sum(-1)
        return torch.logsumexp(-d2 / (2 * self.sigma**2), -1) - math.log(len(self.means))

    def exact(self, n, gen):
        out = []
        while sum(len(x) for x in out) < n:
            k = torch.randint(len(self.means), (4 * n,), generator=gen)
            x = self.means[k] + self.sigma * torch.randn(4 * n, self.dim, generator=gen, dtype=torch.float64)
            out.append(x[(x.abs() <= 1).all(-1)])
        return torch.cat(out)[:n]

    def modes(self, x):
        d = (x.unsqueeze(-2) - self.means).norm(dim=-1)
        near = d.min(-1).values <= 3 * self.sigma
        share = [float(((d.argmin(-1) == i) & near).float().mean()) for i in range(len(self.means))]
        return share, float((~near).float().mean())


class Banana:
    """``log p(a) = −a_0²/(2·0.5²) − (a_1 − 1.5 a_0² + 0.6)²/(2·0.12²)`` on the square."""

    dim = 2

    def log_prob(self, a):
        return -a[..., 0].square() / 0.5 - (a[..., 1] - 1.5 * a[..., 0].square() + 0.6).square() / (2 * 0.12**2)

    def exact(self, n, gen, cells=600):
        grid = torch.linspace(-1, 1, cells + 1, dtype=torch.float64)
        centers = (grid[1:] + grid[:-1]) / 2
        a0, a1 = torch.meshgrid(centers, centers, indexing="ij")
        points = torch.stack([a0.flatten(), a1.flatten()], -1)
        index = torch.multinomial(self.log_prob(points).softmax(0), n, replacement=True, generator=gen)
        jitter = (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * (2 / cells)
        return points[index] + jitter

    def modes(self, x):
        return None, None


def targets():
    corners = [[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]]
    rng = np.random.default_rng(0)
    return {
        "four_modes_2d": Mixture(corners, 0.1),
        "banana_2d": Banana(),
        "mixture_6d": Mixture(rng.uniform(-0.6, 0.6, size=(4, 6)), 0.15),
    }


# -- metrics --------------------------------------------------------------------------------------
def mmd2(x, y, h):
    """Unbiased MMD² with a sum of RBF kernels at bandwidths ``h/16, h/4, h`` (``h``: the median squared
    distance of exact samples), sensitive to the modes' shares and to their widths alike."""

    def k(a, b):
        d2 = torch.cdist(a, b).square()
        return sum(torch.exp(-d2 / (h * scale)) for scale in (1 / 16, 1 / 4, 1.0))

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (m * (m - 1)) - 2 * kxy.mean())


# -- samplers -------------------------------------------------------------------------------------
def q_network(target):
    return TensorDictModule(
        lambda obs, act: target.log_prob(act.double()).unsqueeze(-1).to(act.dtype),
        in_keys=["observation", "action"], out_keys=["state_action_value"],
    )


class ComponentNoiseNetwork(nn.Module):
    """A sampling network whose noise has a discrete part: ``u = MLP([s, ξ_{1:D}, e_k]) + ξ_{1:D}``.

    ``ξ ∼ N(0, I_{D+1})`` as for any noise-input network; its last coordinate picks one of
    ``components`` equally likely pieces, ``k = ⌊C Φ(ξ_{D+1})⌋``, handed to the MLP as a one-hot
    ``e_k``. The map is discontinuous in ``ξ_{D+1}``, so its image can be ``C`` disconnected pieces,
    where a continuous map of Gaussian noise must join its modes by bridges.
    """

    def __init__(self, action_dim, components, num_cells):
        super().__init__()
        self.components = components
        self.mlp = MLP(in_features=1 + action_dim + components, out_features=action_dim, num_cells=list(num_cells))

    def forward(self, observation, noise):
        eps, last = noise[..., :-1], noise[..., -1]
        k = (torch.special.ndtr(last) * self.components).long().clamp(max=self.components - 1)
        one_hot = nn.functional.one_hot(k, self.components).to(noise.dtype)
        return self.mlp(torch.cat([observation, eps, one_hot], -1)) + eps


def train(sampler, steps, *, batch=32, lr=1e-3):
    optim = torch.optim.Adam(sampler.parameters(), lr=lr)
    td = TensorDict(observation=torch.zeros(batch, 1), batch_size=[batch])
    for _ in range(steps):
        loss = sampler.loss(td)["loss_actor"]
        optim.zero_grad()
        loss.backward()
        optim.step()
        for schedule in scheduled_temperatures(sampler):  # the loop's rule: every schedule, once per update
            schedule.step()
    return sampler


def draw(name, target, spec, train_steps, gen, args):
    q = q_network(target)
    td = TensorDict(observation=torch.zeros(1, 1), batch_size=[1])
    if name in ("svgd", "svgd+mala"):
        anneal = {}
        if args.svgd_anneal != 1.0:
            anneal = {"anneal_from": args.svgd_anneal, "anneal_steps": max(1, round(args.svgd_anneal_fraction * train_steps))}
        network, noise_dim = None, args.svgd_noise_dim
        if args.svgd_noise_components > 1:
            network = ComponentNoiseNetwork(target.dim, args.svgd_noise_components, args.svgd_cells)
            noise_dim = target.dim + 1
        svgd = SVGDSampler(q, network, action_spec=spec, alpha=1.0, **anneal, observation_dim=1,
                           num_cells=tuple(args.svgd_cells), num_particles=args.svgd_particles,
                           fixed_fraction=args.svgd_fixed_fraction, bandwidth=args.svgd_bandwidth,
                           bandwidth_scale=args.svgd_bandwidth_scale, min_bandwidth=args.svgd_min_bandwidth,
                           noise_dim=noise_dim)
        sampler = train(svgd, train_steps, lr=args.svgd_lr)
        if name == "svgd+mala":
            sampler = LangevinSampler(q, action_spec=spec, alpha=1.0, num_steps=args.mala_steps, step_size=0.01,
                                      metropolis=True, init=sampler)
    elif name == "gaussian":
        sampler = train(GaussianSampler(q, action_spec=spec, alpha=1.0, observation_dim=1, num_cells=(128, 128)), train_steps)
    elif name in ("ula", "mala"):
        sampler = LangevinSampler(q, action_spec=spec, alpha=1.0, num_steps=200, step_size=0.01, metropolis=name == "mala")
    elif name == "svgd_refine":
        sampler = SVGDSampler(q, action_spec=spec, alpha=1.0, observation_dim=1, num_cells=(8,))
        start = time.perf_counter()
        init = -1 + 2 * torch.rand(N, 1, target.dim, generator=gen)
        x = sampler.refine(td, init, num_steps=300, step_size=0.05)[:, 0]
        return x.double(), (time.perf_counter() - start) * 1000 * 1000 / N
    start = time.perf_counter()
    with torch.no_grad():
        x = sampler.sample(td, N, generator=gen)[0][:, 0]
    return x.detach().double(), (time.perf_counter() - start) * 1000 * 1000 / N


SAMPLERS = ("svgd", "svgd+mala", "svgd_refine", "ula", "mala", "gaussian")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--train-steps", type=int, default=3000, help="training steps of the amortized samplers")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    parser.add_argument("--targets", nargs="+", default=list(targets()), choices=list(targets()))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    svgd = parser.add_argument_group("amortized SVGD (svgd, svgd+mala)")
    svgd.add_argument("--svgd-particles", type=int, default=32, help="particles per state K (default 32)")
    svgd.add_argument("--svgd-fixed-fraction", type=float, default=0.5, help="share of fixed particles (default 0.5)")
    svgd.add_argument("--svgd-bandwidth", default="reference", choices=("reference", "paper"), help="median rule")
    svgd.add_argument("--svgd-bandwidth-scale", type=float, nargs="+", default=[1.0], metavar="SCALE",
                      help="factor on the median rule's bandwidth (default 1: the rule); several: the mean "
                           "of RBF kernels at those factors")
    svgd.add_argument("--svgd-min-bandwidth", type=float, default=1e-3, help="bandwidth floor (default 1e-3)")
    svgd.add_argument("--svgd-noise-dim", type=int, default=None, help="noise size (default: action size)")
    svgd.add_argument("--svgd-noise-components", type=int, default=1, metavar="C",
                      help="C > 1: a discrete part in the noise, C equally likely pieces of the map "
                           "(ComponentNoiseNetwork; the noise size is then the action size + 1; default 1: none)")
    svgd.add_argument("--svgd-cells", type=int, nargs="+", default=[128, 128], help="hidden sizes (default 128 128)")
    svgd.add_argument("--svgd-lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    svgd.add_argument("--svgd-anneal", type=float, default=1.0, metavar="ALPHA0",
                      help="train at a temperature annealed log-linearly from ALPHA0 to 1 (default 1: not annealed)")
    svgd.add_argument("--svgd-anneal-fraction", type=float, default=0.5,
                      help="share of the training steps the annealing takes (default 0.5)")
    parser.add_argument("--mala-steps", type=int, default=20, help="MALA steps of svgd+mala (default 20)")
    args = parser.parse_args()
    if args.svgd_anneal <= 0:
        parser.error(f"--svgd-anneal must be a positive temperature, got {args.svgd_anneal}")
    if min(args.svgd_bandwidth_scale) <= 0:
        parser.error(f"--svgd-bandwidth-scale must be positive factors, got {args.svgd_bandwidth_scale}")
    if args.svgd_noise_components < 1:
        parser.error(f"--svgd-noise-components must be a count >= 1, got {args.svgd_noise_components}")
    if args.svgd_noise_components > 1 and args.svgd_noise_dim is not None:
        parser.error("--svgd-noise-components sets the noise size (action size + 1); leave --svgd-noise-dim out")
    if not 0 < args.svgd_anneal_fraction <= 1:
        parser.error(f"--svgd-anneal-fraction must lie in (0, 1], got {args.svgd_anneal_fraction}")
    torch.set_num_threads(args.threads)
    results = []
    print(f"torch {torch.__version__}; {N} samples; MMD² relative to uniform samples (lower is better)")
    print("| target | sampler | MMD² / uniform | mass per mode (exact) | off-mode (exact) | ms per 1000 |")
    print("|---|---|---|---|---|---|")
    for tname in args.targets:
        target = targets()[tname]
        spec = Bounded(-1.0, 1.0, shape=(target.dim,))
        gen = torch.Generator().manual_seed(args.seed)
        exact, reference = target.exact(N, gen), target.exact(N, gen)
        pooled = torch.cat([exact, reference])
        h = float(torch.cdist(pooled, pooled).square().median())
        uniform = -1 + 2 * torch.rand(N, target.dim, generator=gen, dtype=torch.float64)
        base = mmd2(uniform, exact, h)
        exact_share, exact_off = target.modes(reference)
        floor = {"target": tname, "sampler": "exact", "mmd_rel": mmd2(reference, exact, h) / base}
        results.append(floor)
        print(f"| {tname} | exact (noise floor) | {floor['mmd_rel']:.4f} | – | – | – |", flush=True)
        for name in args.samplers:
            torch.manual_seed(args.seed)
            x, ms = draw(name, target, spec, args.train_steps, torch.Generator().manual_seed(args.seed + 1), args)
            share, off = target.modes(x)
            row = {"target": tname, "sampler": name, "mmd_rel": mmd2(x, exact, h) / base, "mode_mass": share,
                   "off_mode": off, "exact_mode_mass": exact_share, "exact_off_mode": exact_off, "ms_per_1000": ms}
            results.append(row)
            shares = "–" if share is None else " ".join(f"{s:.2f}" for s in share) + " (" + " ".join(f"{s:.2f}" for s in exact_share) + ")"
            offs = "–" if off is None else f"{off:.3f} ({exact_off:.3f})"
            print(f"| {tname} | {name} | {row['mmd_rel']:.4f} | {shares} | {offs} | {ms:.1f} |", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
