"""Building a recipe's parts from its config: parts by ``_target_``, environments, data pipeline.

A pluggable part (sampler, soft-value estimator, temperature, a user's own class) is a config node
naming its class with ``_target_`` and holding that class's options. :func:`build_part` builds it
with ``hydra.utils.instantiate`` and hands it the *runtime arguments its signature declares*: the
recipe passes what it knows (``action_spec``, ``observation_dim``, ``num_cells``, ``actor``), and
each class takes the ones it names. So a user's ``sampler._target_=mypkg.MySampler`` plugs in from
the command line with no change to the recipe. Nested nodes with a ``_target_`` (an importance
proposal) are built first, with the same runtime arguments.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

# torchrl.collectors defines deprecated weight-updater classes at import time; those warnings are
# about TorchRL's internals, not about anything a recipe does. The filter must precede the import.
warnings.filterwarnings(
    "ignore", message=r"Creating \w+ which inherits from WeightUpdaterBase is deprecated", category=DeprecationWarning
)

import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from tensordict import TensorDictBase  # noqa: E402
from tensordict.nn import TensorDictModuleBase  # noqa: E402
from torchrl.collectors import Collector  # noqa: E402
from torchrl.data import LazyTensorStorage, ReplayBuffer, SliceSampler  # noqa: E402
from torchrl.envs import DoubleToFloat, EnvBase, GymEnv, GymWrapper, TransformedEnv  # noqa: E402
from torchrl.objectives import HardUpdate  # noqa: E402

from maxent_components.checks import check_choice, check_nonnegative_int, check_positive_int  # noqa: E402
from maxent_components.objectives.targets import ForeachSoftUpdate  # noqa: E402

__all__ = [
    "build_part",
    "device_with_index",
    "import_object",
    "make_env",
    "minibatches",
    "observation_dim",
    "off_policy_collector",
    "stored_keys",
    "target_updater",
    "uniform_replay_buffer",
]


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def build_part(node: Mapping[str, Any] | DictConfig, *, name: str = "part", **context: Any) -> Any:
    """Instantiate the config ``node`` (with ``_target_``), passing the ``context`` arguments its target declares.

    The node's own options must be arguments the target names (unless it takes ``**kwargs``): a
    user's class plugged into a group (``sampler._target_=mypkg.MySampler``) that does not name the
    options the group's default choice brought along is refused with a ``ValueError`` naming them
    (``name`` is the option the node is, e.g. ``"sampler"``).

    Examples:
        >>> from torchrl.data import Bounded
        >>> node = {"_target_": "maxent_components.soft_value.UniformSoftValue", "num_samples": 8}
        >>> estimator = build_part(node, action_spec=Bounded(-1.0, 1.0, shape=(2,)), observation_dim=3)
        >>> type(estimator).__name__, estimator.num_samples
        ('UniformSoftValue', 8)
    """
    from hydra.utils import instantiate

    node = dict(_plain(node))
    if "_target_" not in node:
        raise ValueError(f"{name} needs a _target_ naming its class, got keys {sorted(node)}.")
    target = import_object(f"{name}._target_", node["_target_"])
    nested = {k: build_part(v, name=f"{name}.{k}", **context) for k, v in node.items() if isinstance(v, dict) and "_target_" in v}
    for key in nested:
        del node[key]
    parameters = inspect.signature(target).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(k for k in [*node, *nested] if not k.startswith("_") and k not in parameters)
    if unknown and not takes_any:
        listed = ", ".join(f"{name}.{k}" for k in unknown)
        raise ValueError(
            f"{name}._target_={node['_target_']} takes no argument named {', '.join(unknown)}; the options {listed} "
            f"come with the {name} group's choice: choose a {name} group whose options it takes as the base "
            f"({name}=<choice> {name}._target_=...), or set every option it needs in a config file of your own."
        )
    given = {k: v for k, v in context.items() if (k in parameters or takes_any) and k not in node}
    # A partial first, called with the runtime objects: instantiate() would merge its kwargs into the
    # config, and TorchRL specs (dataclasses) would be read as configs.
    return instantiate(node, _partial_=True, _convert_="all")(**nested, **given)


def device_with_index(device: str | torch.device) -> torch.device:
    """``device`` with its index (``cuda`` → ``cuda:<current>``, ``mps`` → ``mps:0``), as tensors report theirs."""
    device = torch.device(device)
    if device.type not in ("cuda", "mps") or device.index is not None:
        return device
    return torch.device(device.type, torch.cuda.current_device() if device.type == "cuda" else 0)


def import_object(name: str, dotted: str) -> Any:
    """The object ``dotted`` names (``package.module.attribute``), or a ``ValueError`` naming the option
    ``name`` and why it cannot be imported (Hydra's own error log line is kept quiet)."""
    from hydra.utils import get_object

    logger = logging.getLogger("hydra.utils")
    disabled, logger.disabled = logger.disabled, True
    try:
        return get_object(dotted)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"{name}={dotted!r} cannot be imported: {' '.join(str(err).split())}") from None
    finally:
        logger.disabled = disabled


def make_env(
    env: Mapping[str, Any] | DictConfig,
    *,
    seed: int,
    evaluation: bool = False,
    device: str | torch.device = "cpu",
    num_envs: int = 1,
) -> EnvBase:
    """The TorchRL ``GymEnv`` of an ``env`` config node (``name``, ``kwargs``, ``eval_kwargs``, ``max_episode_steps``).

    ``name`` is any Gymnasium id, ``module:Id-v0`` included (Gymnasium imports the module, which
    registers the id). Evaluation environments get ``eval_kwargs`` on top of ``kwargs`` and their
    own seed. Tasks with float64 observations (MuJoCo) get TorchRL's ``DoubleToFloat``, so that
    the networks (float32) read them. The simulator steps on the CPU; its tensors are placed on
    ``device`` (``GymEnv(device=...)``), where the networks that read them live. For the CPU the env
    is left without a device: its tensors are made there anyway, and TorchRL then skips a cast of
    every step's output (154 against 218 µs per CartPole-v1 transition, ``benchmarks/env_step.py``).

    With ``num_envs > 1`` it steps that many copies together, in this process: Gymnasium's
    ``SyncVectorEnv`` (copy ``i`` seeded ``seed + i``, resetting within the step that ends an
    episode) in TorchRL's ``GymWrapper``, which keeps each episode's last observation as its
    ``("next", "observation")``. The env then has batch size ``[num_envs]``, and TorchRL's
    bookkeeping of a step and the policy's call are shared by ``num_envs`` transitions. (In a step
    that ends every copy's episode, TorchRL resets them all once more: fresh starts all the same.)
    """
    num_envs = check_positive_int("num_envs", num_envs)
    env = _plain(env)
    kwargs = dict(env.get("kwargs") or {})
    if evaluation:
        kwargs.update(env.get("eval_kwargs") or {})
    if env.get("max_episode_steps") is not None:
        kwargs["max_episode_steps"] = check_positive_int("env.max_episode_steps", env["max_episode_steps"])
    device = None if torch.device(device).type == "cpu" else device
    try:
        if num_envs == 1:
            made = GymEnv(env["name"], device=device, **kwargs)
        else:
            import gymnasium as gym

            copies = [functools.partial(gym.make, env["name"], **kwargs)] * num_envs  # picklable, for checkpoints
            vector = gym.vector.SyncVectorEnv(copies, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
            made = GymWrapper(vector, device=device)
    except Exception as err:  # Gymnasium raises several error types for unknown ids and bad kwargs
        raise ValueError(f"env.name={env['name']!r} could not be made: {str(err).splitlines()[0]}") from None
    if any(spec.dtype == torch.float64 for spec in made.observation_spec.values(True, True)):
        made = made.append_transform(DoubleToFloat()) if isinstance(made, TransformedEnv) else TransformedEnv(made, DoubleToFloat())
    made.set_seed(seed + (1000 if evaluation else 0))
    return made


def observation_dim(env: EnvBase, key: str = "observation") -> int:
    """The size of the flat observation of ``env`` (of one copy, for several envs stepped together)."""
    shape = env.observation_spec_unbatched[key].shape
    if len(shape) != 1:
        raise ValueError(f"the recipes need a flat observation vector, got {key!r} of shape {tuple(shape)}.")
    return int(shape[-1])


def off_policy_collector(
    env: EnvBase,
    policy: TensorDictModuleBase,
    *,
    frames_per_batch: int,
    total_frames: int,
    init_random_frames: int,
) -> Collector:
    """A single-process TorchRL collector acting with ``policy`` (uniformly random for the first
    ``init_random_frames`` steps), yielding ``frames_per_batch`` steps at a time up to ``total_frames``."""
    return Collector(
        env,
        policy,
        frames_per_batch=frames_per_batch,
        total_frames=total_frames,
        init_random_frames=init_random_frames,
        # The samplers read only the observation: no policy transform is needed.
        auto_register_policy_transforms=False,
        # Nothing reads trajectory ids (slices are cut at ("next", "done")), and tracking them is a
        # measurable share of every collector step (benchmarks/RESULTS.md).
        track_traj_ids=False,
    )


def uniform_replay_buffer(
    capacity: int, *, batch_size: int, slice_len: int | None = None, device: str | torch.device = "cpu"
) -> ReplayBuffer:
    """A replay buffer of ``capacity`` transitions sampled uniformly, ``batch_size`` at a time, or
    ``batch_size`` slices of ``slice_len`` consecutive transitions of one episode (TorchRL's
    ``SliceSampler`` on the ``("next", "done")`` flags; a sample is ``[batch_size * slice_len]``).
    Its storage lives on ``device``, so that samples arrive where the loss is."""
    check_positive_int("buffer_size", capacity)
    check_positive_int("batch_size", batch_size)
    storage = LazyTensorStorage(capacity, device=device)
    if slice_len is None:
        return ReplayBuffer(storage=storage, batch_size=batch_size)
    sampler = SliceSampler(slice_len=check_positive_int("slice_len", slice_len), end_key=("next", "done"), strict_length=True)
    return ReplayBuffer(storage=storage, sampler=sampler, batch_size=batch_size * slice_len)


def stored_keys(loss) -> list | None:
    """The entries of a collected batch that the replay buffer keeps for ``loss``: what a
    :class:`~maxent_components.objectives.SoftQLoss` reads (its ``in_keys``: the transition, the Q
    network's and the estimator's inputs) and its actor's and proposals' inputs; ``None`` (keep every
    entry) for any other loss. The collector's extra entries (the action's log-probability, the
    ``done`` flags of the current step, ``truncated``) are then neither written nor gathered at every
    sample (``benchmarks/RESULTS.md``); the minibatches hold the same values as with every entry kept."""
    from maxent_components.objectives import SoftQLoss

    if not isinstance(loss, SoftQLoss):
        return None
    parts = [loss.actor, *loss.proposals]
    keys = [*loss.in_keys, *[key for part in parts if part is not None for key in getattr(part, "in_keys", [])]]
    return list(dict.fromkeys(keys))


#: at most this many minibatches are drawn together (a bound on the rows gathered at once)
MINIBATCHES_PER_DRAW = 16


def minibatches(buffer: ReplayBuffer, count: int, *, slice_len: int | None = None) -> Iterator[TensorDictBase]:
    """``count`` minibatches of ``buffer``'s batch size: ``[batch_size]`` transitions, or with
    ``slice_len`` ``[batch_size / slice_len, slice_len]`` trajectory slices.

    Up to :data:`MINIBATCHES_PER_DRAW` of them come from one ``buffer.sample`` of all their rows,
    split: one index draw and one gather instead of one per minibatch, and for slices one search for
    the episodes instead of one per minibatch (``benchmarks/replay_draw.py``). The buffer's
    samplers draw with replacement, every row (or slice) independently of the others, and nothing is
    written to the buffer in between, so each minibatch is distributed exactly as a
    ``buffer.sample()`` of its own.
    """
    count = check_nonnegative_int("count", count)
    rows = buffer.batch_size
    if rows is None:
        raise ValueError("minibatches needs a replay buffer built with a batch_size (the rows of one minibatch).")
    if slice_len is not None and rows % check_positive_int("slice_len", slice_len):
        raise ValueError(f"the buffer's batch_size {rows} is not a whole number of slices of slice_len={slice_len}.")
    return _drawn_together(buffer, count, rows, slice_len)


def _drawn_together(buffer: ReplayBuffer, count: int, rows: int, slice_len: int | None) -> Iterator[TensorDictBase]:
    while count > 0:
        n = min(count, MINIBATCHES_PER_DRAW)
        if n == 1:
            drawn = buffer.sample()
        else:
            with warnings.catch_warnings():  # the size given here is meant to prevail over the buffer's own
                warnings.filterwarnings("ignore", message="Got conflicting batch_sizes", category=UserWarning)
                drawn = buffer.sample(batch_size=n * rows)
        if slice_len is not None:
            drawn = drawn.reshape(-1, slice_len)  # slice-major: whole slices, one after the other
        yield from (drawn,) if n == 1 else drawn.chunk(n)
        count -= n


def target_updater(loss, *, kind: str, tau: float = 0.005, interval: int = 1000):
    """Polyak averaging with ``tau`` (TorchRL's ``SoftUpdate``, stepped as one fused in-place update:
    :class:`~maxent_components.objectives.targets.ForeachSoftUpdate`) or TorchRL's ``HardUpdate`` (a
    copy every ``interval`` updates)."""
    check_choice("target_update", kind, ("soft", "hard"))
    if kind == "soft":
        return ForeachSoftUpdate(loss, tau=tau)
    # TorchRL's HardUpdate copies on every (value_network_update_interval + 1)-th step.
    return HardUpdate(loss, value_network_update_interval=check_positive_int("hard_update_interval", interval) - 1)
