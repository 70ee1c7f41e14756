"""One SAC training update: this library, TorchRL's SACLoss and Stable-Baselines3, side by side.

Soft actor-critic assembled from maxent_components parts should update about as fast as the
reference implementations. Each contender does one full update at HalfCheetah-v5 shapes —
observation 17, action 6 in [-1, 1], 256×256 ReLU MLPs for the actor and for each of two
critics, batch 256, learned temperature (target entropy −6, α₀ = 1), γ = 0.99, Polyak τ = 0.005,
Adam lr 3e-4, MSE critic loss — and they are timed interleaved in one process, so that machine
noise hits all of them alike.

Contenders (every update includes drawing the batch, the critic, actor and α losses, backward,
the optimiser step(s) and the target update):

- ``library``: ``SoftQLoss(qnet, PolicySoftValue(), actor=GaussianSampler(...),
  alpha=AutoTemperature(-6.0), num_qvalue_nets=2)``, one Adam over ``loss.parameters()``,
  ``ForeachSoftUpdate`` (TorchRL's ``SoftUpdate`` in one fused step, as the recipes use it);
  ``sum(loss_*)`` backpropagated. Batch: 256 random rows of a
  10,000-row TensorDict of transitions (``data[torch.randint(...)]``). The twin critics are
  evaluated by the loss's default ``ensemble_mode="auto"`` (each layer one batched matrix multiply
  over both members on the CPU, one ``torch.vmap`` on a GPU); ``library_loop`` and
  ``library_vmap`` (not run by default) force one call per member and ``vmap``.
- ``torchrl``: ``torchrl.objectives.SACLoss`` (ProbabilisticActor with TanhNormal, twin critics,
  learned α, ``loss_function="l2"``), one Adam, ``SoftUpdate``; batch drawn the same way.
- ``plain``: the same arithmetic written by hand in plain PyTorch (not run by default): an actor
  MLP with the same scale head, two critic MLPs and their target copies, one Adam over the critics,
  the actor and ``log α`` (as the library), ``torch._foreach_lerp_`` Polyak step; batch drawn by
  indexing the same transitions as plain tensors. What the library's TensorDict plumbing costs is
  the library/plain ratio.
- ``sb3``: ``stable_baselines3.SAC.train(gradient_steps=1, batch_size=256)`` — its own replay
  buffer sample (NumPy indexing and conversion to tensors), three Adam optimisers (critic, actor,
  α), ``polyak_update`` and its logger's bookkeeping. Its buffer holds the same transitions.

The actors differ slightly in their scale head: the library and TorchRL use TorchRL's
``NormalParamExtractor`` (biased softplus); SB3 clamps a log-std to [−20, 2] and exponentiates.

On a GPU (``--device cuda``) the transitions live on the device. ``--compile MODE`` wraps the whole
update of the TensorDict contenders (loss, backward, optimiser step, target update) in
``torch.compile(mode=MODE)``, and ``--cudagraphs`` additionally captures it with tensordict's
``CudaGraphModule`` (the two switches TorchRL's own SAC script exposes); SB3 always runs eagerly.
``--autocast bfloat16`` runs the forward of the library, TorchRL and plain updates under
``torch.autocast`` (matrix multiplies in bfloat16, the backward in the same dtypes): a measurement
of what lower-precision matmuls would buy, not a setting the recipes use.

Reported: updates per second, the median over ``--rounds`` rounds of ``--updates`` updates each
(after ``--warmup`` untimed updates per contender per round), and the ratio to SB3 (higher is
faster), as a Markdown table and one JSON line prefixed ``RESULT``. Needs the ``bench`` extra
(``pip install -e ".[bench]"``).

Usage::

    python benchmarks/sac_update.py --threads 1 2 --rounds 5 --updates 200
    python benchmarks/sac_update.py --device cuda --threads 1 --compile reduce-overhead --cudagraphs
    python benchmarks/sac_update.py --threads 1 --contenders library --compile default --inductor cpp.simdlen=8
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import time
import warnings

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import CudaGraphModule, TensorDictModule

warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchrl\..*")

import stable_baselines3  # noqa: E402
import torchrl  # noqa: E402
from stable_baselines3 import SAC  # noqa: E402
from stable_baselines3.common.logger import Logger  # noqa: E402
from torchrl.data import Bounded  # noqa: E402
from torchrl.modules import ProbabilisticActor, TanhNormal  # noqa: E402
from torchrl.objectives import SACLoss, SoftUpdate  # noqa: E402

from maxent_components import AutoTemperature, GaussianSampler, PolicySoftValue, SoftQLoss  # noqa: E402
from maxent_components.modules import continuous_qvalue_network, tanh_normal_actor_network  # noqa: E402
from maxent_components.objectives import ForeachSoftUpdate  # noqa: E402
from maxent_components.training.update import COMPILE_MODES  # noqa: E402

# benchmarks/ is on sys.path when this file is run as a script
from plain_loops import ADAM_KERNELS, sac_update  # noqa: E402

OBS_DIM, ACT_DIM, CELLS, BATCH, BUFFER = 17, 6, (256, 256), 256, 10_000
GAMMA, TAU, LR, TARGET_ENTROPY = 0.99, 0.005, 3e-4, -6.0
BOX = Bounded(-1.0, 1.0, shape=(ACT_DIM,))
CONTENDERS = ("library", "library_loop", "library_vmap", "torchrl", "sb3", "plain")


def _transitions(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random transitions (float32 observations, actions in the box, never terminal)."""
    rng = np.random.default_rng(seed)
    return {
        "observation": rng.standard_normal((n, OBS_DIM), dtype=np.float32),
        "action": rng.uniform(-1.0, 1.0, (n, ACT_DIM)).astype(np.float32),
        "reward": rng.standard_normal((n, 1), dtype=np.float32),
        "next_observation": rng.standard_normal((n, OBS_DIM), dtype=np.float32),
        "done": np.zeros((n, 1), dtype=bool),
    }


def _tensordict(data: dict[str, np.ndarray]) -> TensorDict:
    done = torch.from_numpy(data["done"])
    return TensorDict(
        {
            "observation": torch.from_numpy(data["observation"]),
            "action": torch.from_numpy(data["action"]),
            "next": {
                "observation": torch.from_numpy(data["next_observation"]),
                "reward": torch.from_numpy(data["reward"]),
                "done": done,
                "terminated": done.clone(),
            },
        },
        batch_size=[len(done)],
    )


def _autocast(options: argparse.Namespace):
    """The forward's autocast context (disabled unless ``--autocast bfloat16``)."""
    device_type = torch.device(options.device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=options.autocast == "bfloat16")


def _sgd_step(loss_module, data: TensorDict, options: argparse.Namespace, updater_class=SoftUpdate):
    """An update for a TensorDict loss: sample, sum(loss_*) backward, one Adam step, Polyak."""
    loss_module.to(data.device)
    graphs = options.cudagraphs
    optimiser = torch.optim.Adam(loss_module.parameters(), lr=LR, capturable=graphs, **ADAM_KERNELS[options.adam])
    updater = updater_class(loss_module, tau=TAU)
    n = data.shape[0]

    def update(batch: TensorDict) -> TensorDict:
        with _autocast(options):
            out = loss_module(batch)
        total = sum(v for k, v in out.items() if k.startswith("loss_"))
        total.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=not graphs)
        updater.step()
        return out.detach()

    if options.compile != "none":
        update = torch.compile(update, mode=options.compile)
    if graphs:
        update = CudaGraphModule(update, in_keys=[], out_keys=[], warmup=5)
    return lambda: update(data[torch.randint(n, (BATCH,), device=data.device)])


def library_update(data: TensorDict, options: argparse.Namespace, ensemble_mode: str = "auto"):
    actor = GaussianSampler(policy_network=tanh_normal_actor_network(OBS_DIM, ACT_DIM, num_cells=CELLS), action_spec=BOX)
    loss = SoftQLoss(
        continuous_qvalue_network(OBS_DIM, ACT_DIM, num_cells=CELLS),
        PolicySoftValue(),
        actor=actor,
        alpha=AutoTemperature(TARGET_ENTROPY),
        num_qvalue_nets=2,
        ensemble_mode=ensemble_mode,
    )
    loss.make_value_estimator(gamma=GAMMA)
    return _sgd_step(loss, data, options, ForeachSoftUpdate)


def plain_update(data: TensorDict, options: argparse.Namespace):
    """SAC's update written by hand on plain tensors (``plain_loops.sac_update``, the reference for
    the library's plumbing); the batch drawn by indexing the same transitions."""
    obs, act, rew = data["observation"], data["action"], data["next", "reward"]
    next_obs, done = data["next", "observation"], data["next", "terminated"].float()
    update, _ = sac_update(OBS_DIM, ACT_DIM, cells=CELLS, device=data.device, autocast=lambda: _autocast(options))

    def step() -> None:
        index = torch.randint(obs.shape[0], (BATCH,), device=data.device)
        update(obs[index], act[index], rew[index], next_obs[index], done[index])

    return step


def torchrl_update(data: TensorDict, options: argparse.Namespace):
    body = TensorDictModule(
        tanh_normal_actor_network(OBS_DIM, ACT_DIM, num_cells=CELLS), in_keys=["observation"], out_keys=["loc", "scale"]
    )
    actor = ProbabilisticActor(
        body,
        in_keys=["loc", "scale"],
        spec=BOX,
        distribution_class=TanhNormal,
        distribution_kwargs={"low": BOX.space.low.to(data.device), "high": BOX.space.high.to(data.device)},
        return_log_prob=True,
    )
    loss = SACLoss(
        actor,
        continuous_qvalue_network(OBS_DIM, ACT_DIM, num_cells=CELLS),
        num_qvalue_nets=2,
        loss_function="l2",
        alpha_init=1.0,
        target_entropy=TARGET_ENTROPY,
        action_spec=BOX,
    )
    loss.make_value_estimator(gamma=GAMMA)
    return _sgd_step(loss, data, options)


class _DummyEnv(gym.Env):
    """An environment with HalfCheetah-v5's spaces; SB3 needs one to build its networks and buffer."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}


def sb3_update(data: dict[str, np.ndarray], options: argparse.Namespace):
    model = SAC(
        "MlpPolicy",
        _DummyEnv(),
        learning_rate=LR,
        buffer_size=BUFFER,
        learning_starts=0,
        batch_size=BATCH,
        tau=TAU,
        gamma=GAMMA,
        ent_coef="auto",
        target_entropy=TARGET_ENTROPY,
        policy_kwargs={"net_arch": list(CELLS)},
        seed=0,
        device=options.device,
    )
    model.set_logger(Logger(None, []))  # train() records its losses; write them nowhere
    for i in range(len(data["done"])):
        model.replay_buffer.add(
            data["observation"][i : i + 1], data["next_observation"][i : i + 1], data["action"][i : i + 1],
            data["reward"][i], data["done"][i], [{}],
        )  # fmt: skip
    return lambda: model.train(gradient_steps=1, batch_size=BATCH)


def _updates_per_s(step, updates: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(updates):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return updates / (time.perf_counter() - start)


def run(threads: int, options: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(options.device)
    data = _transitions(BUFFER)
    td = _tensordict(data).to(device)
    builders = {
        "library": library_update, "library_loop": lambda d, o: library_update(d, o, "loop"),
        "library_vmap": lambda d, o: library_update(d, o, "vmap"),
        "torchrl": torchrl_update, "sb3": sb3_update, "plain": plain_update,
    }
    steps = {name: builders[name](data if name == "sb3" else td, options) for name in options.contenders}
    torch.set_num_threads(threads)  # in case building a contender changed it
    rates: dict[str, list[float]] = {name: [] for name in steps}
    # Interleave rounds so that drift in machine load affects every contender alike.
    for _ in range(options.rounds):
        for name, step in steps.items():
            rates[name].append(_updates_per_s(step, options.updates, options.warmup, device))
    base = statistics.median(rates["sb3"]) if "sb3" in rates else float("nan")
    return [
        {
            "contender": name,
            "threads": threads,
            "updates_per_s": statistics.median(rates[name]),
            "ratio_to_sb3": statistics.median(rates[name]) / base,
            "rounds_updates_per_s": rates[name],
        }
        for name in rates
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2],
                        help="torch intra-op thread counts to run the comparison with (default: 1 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: 5)")
    parser.add_argument("--updates", type=int, default=200, help="timed updates per contender per round (default: 200)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="untimed updates per contender before each round (default: 20)")
    parser.add_argument("--contenders", nargs="+", default=["library", "torchrl", "sb3"], choices=CONTENDERS,
                        help="which updates to time (default: all three)")
    parser.add_argument("--device", default="cpu", help="torch device of the data and networks (default: cpu)")
    parser.add_argument("--compile", default="none", choices=COMPILE_MODES,
                        help="torch.compile mode of the library and TorchRL updates (default: none)")
    parser.add_argument("--adam", default="default", choices=sorted(ADAM_KERNELS),
                        help="Adam implementation of the library and TorchRL updates (default: PyTorch's choice)")
    parser.add_argument("--autocast", default="none", choices=("none", "bfloat16"),
                        help="run the library, TorchRL and plain forwards under torch.autocast in this dtype (default: none)")
    parser.add_argument("--cudagraphs", action="store_true",
                        help="capture the library and TorchRL updates with tensordict's CudaGraphModule (CUDA only)")
    parser.add_argument("--inductor", nargs="+", default=[], metavar="KEY=VALUE",
                        help="torch._inductor.config settings for --compile, e.g. cpp.simdlen=8 (values as Python literals)")
    args = parser.parse_args()
    for setting in args.inductor:
        import torch._inductor.config as inductor_config

        key, _, value = setting.partition("=")
        try:
            setattr(inductor_config, key, ast.literal_eval(value))
        except (AttributeError, ValueError, SyntaxError) as err:
            parser.error(f"--inductor {setting}: {err}")
    if args.rounds < 1 or args.updates < 1 or args.warmup < 0 or min(args.threads) < 1:
        parser.error("--rounds, --updates and every --threads value must be >= 1; --warmup >= 0")
    if args.cudagraphs and not args.device.startswith("cuda"):
        parser.error(f"--cudagraphs needs a CUDA --device, got --device {args.device}")
    if args.cudagraphs and args.warmup < 6:
        parser.error("--cudagraphs needs --warmup >= 6 (five warm-up calls before the capture)")

    versions = {
        "torch": torch.__version__,
        "torchrl": torchrl.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }
    print(", ".join(f"{k} {v}" for k, v in versions.items()) + "; median updates/s; ratio = contender / sb3")
    print("| contender | threads | updates/s (median) | ratio to SB3 |")
    print("|---|---|---|---|")
    results = []
    for threads in args.threads:
        for r in run(threads, args):
            print(f"| {r['contender']} | {r['threads']} | {r['updates_per_s']:.1f} | {r['ratio_to_sb3']:.2f} |")
            results.append(r)
    print("RESULT " + json.dumps({"benchmark": "sac_update", "args": vars(args), "versions": versions, "results": results}))


if __name__ == "__main__":
    main()
