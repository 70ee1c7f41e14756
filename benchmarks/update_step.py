"""One training update, library components against a plain-PyTorch loop doing the same arithmetic.

Being TorchRL-native must not make an update slow. Each case builds the same networks twice — once
composed from maxent_components parts (SoftQLoss + estimator + sampler, and ``ForeachSoftUpdate``
as in the recipes), once as a hand-written PyTorch update — and times them interleaved in one process, so machine noise hits
both alike. Reported: the median time per update over ``--repeats`` runs and the ratio
library / plain (lower is better; 1.0 means no overhead).

Cases:
- ``soft_dqn``: CartPole shapes (obs 4, 2 actions), 2×128 MLP, batch 128, ExactSoftValue target,
  Adam, Polyak τ = 0.005.
- ``sql``: MultiGoal shapes (obs 2, action 2), 2×128 MLPs, batch 64, 16 uniform value samples,
  32 SVGD particles (16 fixed), Q and sampler updates. Both sides step one Adam once on the sum of the
  critic's and the sampler's losses, computed from the same pre-step parameters (the recipes'
  arithmetic, and the plain SQL loop's in ``plain_loops.py``, whose ``functional`` pieces it uses).

On a GPU (``--device cuda``) every tensor and network is created on the device (as the default
device) and each update is timed to its completion; ``--cudagraphs`` captures both sides' updates
with tensordict's ``CudaGraphModule``. ``--compile MODE`` compiles both sides' updates with
``torch.compile`` after one eager call, as the recipes' ``compile`` option does.

Usage::

    python benchmarks/update_step.py --threads 1 2 --repeats 300
    python benchmarks/update_step.py --threads 1 2 --compile default
    python benchmarks/update_step.py --threads 1 2 --adam fused
    python benchmarks/update_step.py --device cuda --threads 1 --cudagraphs
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import time
import warnings

import torch
from tensordict import TensorDict
from tensordict.nn import CudaGraphModule
from torch import nn

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchrl\..*")

from torchrl.data import Bounded, OneHot  # noqa: E402

from maxent_components import functional as fn  # noqa: E402
from maxent_components.modules.policies import noise_input_policy_network  # noqa: E402
from maxent_components.modules.qvalue import (  # noqa: E402
    continuous_qvalue_network,
    discrete_qvalue_network,
)
from maxent_components.objectives import ForeachSoftUpdate, SoftQLoss  # noqa: E402
from maxent_components.samplers import SVGDSampler  # noqa: E402
from maxent_components.soft_value import ExactSoftValue, UniformSoftValue  # noqa: E402
from maxent_components.training.update import COMPILE_MODES, compiled_after_warmup  # noqa: E402

# benchmarks/ is on sys.path when this file is run as a script
from plain_loops import ADAM_KERNELS  # noqa: E402

GAMMA, TAU = 0.99, 0.005


def _transitions(batch: int, obs_dim: int, action: torch.Tensor) -> TensorDict:
    return TensorDict(
        {
            "observation": torch.randn(batch, obs_dim),
            "action": action,
            "next": {
                "observation": torch.randn(batch, obs_dim),
                "reward": torch.randn(batch, 1),
                "done": torch.zeros(batch, 1, dtype=torch.bool),
                "terminated": torch.zeros(batch, 1, dtype=torch.bool),
            },
        },
        batch_size=[batch],
    )


def _polyak(target: list[torch.Tensor], source: list[torch.Tensor]) -> None:
    torch._foreach_lerp_(target, source, TAU)


# -- soft DQN -------------------------------------------------------------------------------------
def soft_dqn_case(adam=torch.optim.Adam, alpha: float = 0.01, batch: int = 128):
    qnet = discrete_qvalue_network(4, 2, num_cells=(128, 128))
    td = _transitions(batch, 4, nn.functional.one_hot(torch.randint(2, (batch,)), 2))

    loss = SoftQLoss(qnet, ExactSoftValue(), alpha=alpha, action_spec=OneHot(2))
    loss.make_value_estimator(gamma=GAMMA)
    optimiser = adam(loss.parameters(), lr=1e-3)
    updater = ForeachSoftUpdate(loss, tau=TAU)

    def library_step():
        out = loss(td)
        optimiser.zero_grad(set_to_none=True)
        out["loss_qvalue"].backward()
        optimiser.step()
        updater.step()

    plain = copy.deepcopy(qnet.module)
    plain_target = copy.deepcopy(plain).requires_grad_(False)
    plain_optimiser = adam(plain.parameters(), lr=1e-3)
    obs, next_obs = td["observation"], td["next", "observation"]
    index = td["action"].argmax(-1, keepdim=True)
    reward, not_done = td["next", "reward"], (~td["next", "terminated"]).float()
    params, target_params = list(plain.parameters()), list(plain_target.parameters())

    def plain_step():
        with torch.no_grad():
            v_next = alpha * torch.logsumexp(plain_target(next_obs) / alpha, -1, keepdim=True)
            y = reward + GAMMA * not_done * v_next
        q = plain(obs).gather(-1, index)
        plain_optimiser.zero_grad(set_to_none=True)
        (q - y).square().mean().backward()
        plain_optimiser.step()
        _polyak(target_params, params)

    return library_step, plain_step


# -- soft Q-learning (uniform soft value + amortized SVGD) --------------------------------------
def sql_case(adam=torch.optim.Adam, alpha: float = 1.0, batch: int = 64, value_samples: int = 16, particles: int = 32):
    spec = Bounded(-1.0, 1.0, shape=(2,))
    qnet = continuous_qvalue_network(2, 2, num_cells=(128, 128))
    policy = noise_input_policy_network(2, 2, num_cells=(128, 128))
    td = _transitions(batch, 2, torch.rand(batch, 2) * 2 - 1)

    sampler = SVGDSampler(policy_network=copy.deepcopy(policy), action_spec=spec, num_particles=particles)
    loss = SoftQLoss(
        qnet, UniformSoftValue(action_spec=spec, num_samples=value_samples), actor=sampler, alpha=alpha
    )
    loss.make_value_estimator(gamma=GAMMA)
    optimiser = adam(loss.parameters(), lr=3e-4)
    updater = ForeachSoftUpdate(loss, tau=TAU)

    def library_step():
        out = loss(td)
        optimiser.zero_grad(set_to_none=True)
        (out["loss_qvalue"] + out["loss_actor"]).backward()
        optimiser.step()
        updater.step()

    q_plain = copy.deepcopy(qnet.module)
    q_target = copy.deepcopy(q_plain).requires_grad_(False)
    pi_plain = copy.deepcopy(policy)
    # One Adam over the critic and the sampler, stepped once on their summed losses, both computed from
    # the same pre-step parameters: the arithmetic of the library's one loss and one optimiser.
    plain_optimiser = adam([*q_plain.parameters(), *pi_plain.parameters()], lr=3e-4)
    obs, action, next_obs = td["observation"], td["action"], td["next", "observation"]
    reward, not_done = td["next", "reward"].squeeze(-1), (~td["next", "terminated"]).float().squeeze(-1)
    low, high = spec.space.low, spec.space.high
    log_uniform = -(high - low).log().sum()  # log of the uniform density on the box
    n_fixed = particles // 2
    params, target_params = list(q_plain.parameters()), list(q_target.parameters())

    def q_of(net, state, actions):  # Q(s, a_k) [K, B] for actions [K, B, 2]
        return net(state.expand(actions.shape[0], -1, -1), actions).squeeze(-1)

    def plain_step():
        with torch.no_grad():
            uniform = low + (high - low) * torch.rand(value_samples, batch, 2)
            v_next = fn.importance_sampled_soft_value(q_of(q_target, next_obs, uniform), log_uniform, alpha, dim=0)
            y = reward + GAMMA * not_done * v_next
        critic_loss = (q_plain(obs, action).squeeze(-1) - y).square().mean()
        with torch.no_grad():
            fixed = pi_plain(obs.expand(n_fixed, -1, -1), torch.randn(n_fixed, batch, 2))
        noise = torch.randn(particles - n_fixed, batch, 2)
        updated = pi_plain(obs.expand(particles - n_fixed, -1, -1), noise)
        fixed.requires_grad_(True)
        log_p = q_of(q_plain, obs, fn.tanh_squash(fixed, low, high)) / alpha
        log_p = log_p + fn.tanh_log_abs_det_jacobian(fixed, low, high).sum(-1)
        (score,) = torch.autograd.grad(log_p.sum(), fixed)
        fixed_b, score_b, updated_b = (t.detach().movedim(0, -2) for t in (fixed, score, updated))
        h = fn.median_bandwidth(fn.squared_distances(fixed_b, updated_b), formula="reference", num_particles=n_fixed,
                                min_bandwidth=1e-3)
        direction = fn.svgd_direction(updated_b, score_b, fixed_b, h).movedim(-2, 0)
        plain_optimiser.zero_grad(set_to_none=True)
        (critic_loss - (direction * updated).sum(-1).mean()).backward()
        plain_optimiser.step()
        _polyak(target_params, params)

    return library_step, plain_step


CASES = {"soft_dqn": soft_dqn_case, "sql": sql_case}


def _median_us(step, repeats: int, warmup: int, sync) -> list[float]:
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - start) * 1e6)
    return times


def run(case: str, threads: int, repeats: int, warmup: int, rounds: int, device: str = "cpu", cudagraphs: bool = False,
        compile_mode: str = "none", adam: str = "default") -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with torch.device(device):
        library_step, plain_step = CASES[case](functools.partial(torch.optim.Adam, **ADAM_KERNELS[adam]))
        if compile_mode != "none":  # as the recipes' compile option: one eager call, then compiled
            library_step, plain_step = (compiled_after_warmup(s, compile_mode) for s in (library_step, plain_step))
        if cudagraphs:
            library_step, plain_step = (CudaGraphModule(s, in_keys=[], out_keys=[], warmup=5) for s in (library_step, plain_step))
        library, plain = [], []
        # Interleave short rounds so that drift in machine load affects both sides equally.
        for _ in range(rounds):
            library += _median_us(library_step, repeats // rounds, warmup, sync)
            plain += _median_us(plain_step, repeats // rounds, warmup, sync)
    lib, pln = statistics.median(library), statistics.median(plain)
    return {"case": case, "threads": threads, "compile": compile_mode, "adam": adam, "library_us": lib, "plain_us": pln, "ratio": lib / pln}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES),
                        help="which updates to time (default: all)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2],
                        help="torch intra-op thread counts to run each case with (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=300, help="timed updates per side (default: 300)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed updates before each round (default: 10)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side (default: 5)")
    parser.add_argument("--device", default="cpu", help="torch device of the data and networks (default: cpu)")
    parser.add_argument("--cudagraphs", action="store_true", help="capture both updates as CUDA graphs (CUDA only)")
    parser.add_argument("--compile", default="none", choices=COMPILE_MODES,
                        help="torch.compile both updates in this mode after one eager call (default: none)")
    parser.add_argument("--adam", default="default", choices=sorted(ADAM_KERNELS),
                        help="both sides' Adam kernel (the recipes step the fused one, optim.fused; default: "
                        "PyTorch's default for the device)")
    args = parser.parse_args()
    if args.repeats < args.rounds or min(args.threads) < 1:
        parser.error("--repeats must be >= --rounds and every --threads value >= 1")
    if args.cudagraphs and (not args.device.startswith("cuda") or args.warmup < 6):
        parser.error("--cudagraphs needs a CUDA --device and --warmup >= 6")

    print(f"torch {torch.__version__}; compile {args.compile}; Adam {args.adam}; median µs per update; ratio = library / plain")
    print("| case | threads | library (µs) | plain PyTorch (µs) | ratio |")
    print("|---|---|---|---|---|")
    for case in args.cases:
        for threads in args.threads:
            r = run(case, threads, args.repeats, args.warmup, args.rounds, args.device, args.cudagraphs, args.compile, args.adam)
            print(f"| {r['case']} | {r['threads']} | {r['library_us']:.0f} | {r['plain_us']:.0f} | {r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
