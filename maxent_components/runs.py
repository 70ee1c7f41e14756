"""Run directories and the plumbing every recipe shares.

A recipe is a Hydra application whose configuration is a dataclass registered in Hydra's
``ConfigStore`` (:func:`register_config`). Each field is declared with :func:`option`, which
records a help text (and optional bounds or choices) in the field's metadata, so that
``python recipes/<name>.py --help`` lists every option with its default (:func:`render_help`) and
bad values are rejected with an error naming the option (:func:`validate_options`).

A run writes into Hydra's output folder (:meth:`RunDirectory.from_hydra`):

- ``metrics.csv``: one row per logging event, a fixed set of columns, flushed row by row so that
  a crashed run keeps everything logged before the crash;
- ``checkpoint.pt``: the state dicts of several modules and optimisers;
- ``summary.json``: final numbers, written last with ``"finished": true``, so that a resumed sweep
  can skip the run (:func:`is_finished`).

``summary.json`` and checkpoints are written atomically (a temporary file in the same folder,
``fsync``, then ``os.replace``): readers see either the previous complete file or the new one,
never a truncated one.

The remaining helpers are what every training loop needs: :func:`seed_everything`,
:func:`set_threads`, :func:`evaluate`, :func:`progress_bar` and :class:`NonFiniteGuard`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tensordict import TensorDictBase
from torch import Tensor

__all__ = [
    "SUMMARY_FILE",
    "METRICS_FILE",
    "CHECKPOINT_FILE",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "is_finished",
    "RunDirectory",
    "load_checkpoint",
    "option",
    "RunConfig",
    "validate_options",
    "render_help",
    "register_config",
    "cli_override_keys",
    "apply_preset",
    "apply_presets",
    "finished_summary",
    "seed_everything",
    "set_threads",
    "evaluate",
    "evaluate_episodes",
    "progress_bar",
    "EpisodeReturns",
    "NonFiniteLossError",
    "NonFiniteGuard",
]

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.pt"


# ------------------------------------------------------------------------------------------------
# Atomic files
# ------------------------------------------------------------------------------------------------
@contextmanager
def _atomic_file(path: str | os.PathLike) -> Iterator[io.BufferedWriter]:
    """Yield a binary file that replaces ``path`` only once the ``with`` block has completed.

    The temporary file lives in the target's folder because ``os.replace`` is atomic only within
    one file system. On any exception, including ``KeyboardInterrupt``, the temporary file is
    removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder, hence best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with _atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Serialise ``obj`` as JSON and write it atomically (non-finite floats become ``null``)."""
    # Serialise first: an unserialisable object must fail before any file is touched.
    text = json.dumps(_json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_text(path, text)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomically."""
    with _atomic_file(path) as handle:
        torch.save(obj, handle)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, Tensor):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def is_finished(path: str | os.PathLike) -> bool:
    """Whether the run directory ``path`` holds a ``summary.json`` marked ``"finished": true``."""
    summary = Path(path) / SUMMARY_FILE
    try:
        with open(summary, encoding="utf-8") as handle:
            content = json.load(handle)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(content, dict) and content.get("finished") is True


# ------------------------------------------------------------------------------------------------
# Run directory
# ------------------------------------------------------------------------------------------------
class RunDirectory:
    """The folder of one training run: metrics, summary and checkpoints.

    Args:
        path: the folder (created if missing). Recipes use :meth:`from_hydra`.

    Keyword Args:
        metrics_columns: the metric names of ``metrics.csv`` (after ``step``). If omitted, the
            keys of the first :meth:`log` call fix them. A later unknown key raises, so that no
            column is ever silently dropped.

    Examples:
        >>> import tempfile, torch
        >>> run = RunDirectory(tempfile.mkdtemp(), metrics_columns=["loss", "eval_return"])
        >>> run.log(100, loss=torch.tensor(0.5))
        >>> path = run.save_checkpoint({"net": torch.nn.Linear(2, 1)}, step=100)
        >>> run.finish({"eval_return_mean": 12.0})
        >>> is_finished(run.path)
        True
    """

    def __init__(self, path: str | os.PathLike, *, metrics_columns: list[str] | None = None) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._columns: list[str] | None = None
        self._metrics_handle: io.TextIOWrapper | None = None
        self._writer = None
        if metrics_columns is not None:
            self._open_metrics(list(metrics_columns))

    @classmethod
    def from_hydra(cls, **kwargs: Any) -> RunDirectory:
        """The run directory of the running Hydra job (``hydra.runtime.output_dir``)."""
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            raise RuntimeError(
                "RunDirectory.from_hydra() must be called inside a @hydra.main application; "
                "use RunDirectory(path) elsewhere."
            )
        return cls(HydraConfig.get().runtime.output_dir, **kwargs)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def finished(self) -> bool:
        """Whether this run has already finished (see :func:`is_finished`)."""
        return is_finished(self.path)

    # -- metrics -------------------------------------------------------------------------------
    def _open_metrics(self, columns: list[str]) -> None:
        if "step" in columns:
            raise ValueError("metrics_columns must not contain 'step': it is always the first column.")
        if len(set(columns)) != len(columns):
            raise ValueError(f"metrics_columns has duplicates: {columns}.")
        self._columns = columns
        # A restarted (unfinished) run starts its metrics afresh rather than interleaving two runs.
        self._metrics_handle = open(self.metrics_path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._metrics_handle)
        self._writer.writerow(["step", *columns])
        self._metrics_handle.flush()

    @property
    def metrics_columns(self) -> list[str] | None:
        return None if self._columns is None else list(self._columns)

    def set_metrics_columns(self, columns: list[str]) -> None:
        """Fix the columns of ``metrics.csv`` (``step`` first, then ``columns``) before the first row."""
        if self._columns is not None:
            if list(columns) == self._columns:
                return
            raise RuntimeError(f"metrics.csv already has columns {self._columns}; they cannot change.")
        self._open_metrics(list(columns))

    def log(self, step: int, **metrics: float | Tensor | None) -> None:
        """Append one row to ``metrics.csv``; columns not given are left empty.

        Values may be Python numbers or 0-d tensors (converted here, so call this only at logging
        intervals: the conversion synchronises).
        """
        if self._columns is None:
            self._open_metrics(list(metrics))
        unknown = set(metrics) - set(self._columns)
        if unknown:
            raise ValueError(
                f"unknown metric(s) {sorted(unknown)}; metrics.csv has columns {self._columns} "
                f"(declare all of them with metrics_columns=...)."
            )
        row = [int(step)]
        for name in self._columns:
            value = metrics.get(name)
            if value is None:
                row.append("")
            elif isinstance(value, int) and not isinstance(value, bool):
                row.append(str(value))
            else:
                row.append(repr(float(value)))
        self._writer.writerow(row)
        self._metrics_handle.flush()

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(
        self,
        states: Mapping[str, Any],
        *,
        step: int,
        name: str = CHECKPOINT_FILE,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save the state dicts of several objects (modules, optimisers, ...) atomically.

        Args:
            states: name → object with ``state_dict()`` (or an already extracted state dict).

        Keyword Args:
            step: the environment step the checkpoint belongs to.
            name: the file name inside the run directory.
            extra: further plain data stored alongside (e.g. the config as a dict).
        """
        payload = {
            "step": int(step),
            "state_dicts": {key: _state_dict_of(key, obj) for key, obj in states.items()},
            "extra": dict(extra or {}),
        }
        path = self.path / name
        atomic_torch_save(payload, path)
        return path

    def load_checkpoint(
        self, targets: Mapping[str, Any], *, name: str = CHECKPOINT_FILE, strict: bool = True
    ) -> dict[str, Any]:
        """Load a checkpoint written by :meth:`save_checkpoint` into ``targets`` (name → object).

        Returns the whole payload (``step``, ``state_dicts``, ``extra``).
        """
        return load_checkpoint(self.path / name, targets, strict=strict)

    # -- summary -------------------------------------------------------------------------------
    def write_summary(self, summary: Mapping[str, Any], *, finished: bool = False) -> None:
        """Write ``summary.json`` atomically; ``finished=True`` marks the run as complete."""
        if "finished" in summary:
            raise ValueError("summary must not contain 'finished'; pass finished=True instead.")
        atomic_write_json(self.summary_path, {**summary, "finished": bool(finished)})

    def read_summary(self) -> dict[str, Any]:
        with open(self.summary_path, encoding="utf-8") as handle:
            return json.load(handle)

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Close the metrics file and write the final summary, marking the run finished."""
        self.close()
        self.write_summary(summary, finished=True)

    def close(self) -> None:
        if self._metrics_handle is not None and not self._metrics_handle.closed:
            self._metrics_handle.close()

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"


def _state_dict_of(name: str, obj: Any) -> Any:
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"states[{name!r}] must have a state_dict() or be a mapping, got {type(obj).__name__}.")


def load_checkpoint(
    path: str | os.PathLike, targets: Mapping[str, Any], *, strict: bool = True
) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``targets`` (name → object with ``load_state_dict``).

    With ``strict``, every target must be present in the checkpoint.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved = payload["state_dicts"]
    missing = [key for key in targets if key not in saved]
    if missing and strict:
        raise KeyError(f"checkpoint {str(path)!r} has no state for {missing}; it holds {sorted(saved)}.")
    for key, obj in targets.items():
        if key in saved:
            if strict or not hasattr(obj, "load_state_dict"):
                obj.load_state_dict(saved[key])
            else:
                try:
                    obj.load_state_dict(saved[key], strict=False)
                except TypeError:  # optimisers take no ``strict``
                    obj.load_state_dict(saved[key])
    return payload


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field for a recipe option: a default, a help text and optional constraints.

    String options with a fixed set of values take ``choices`` (OmegaConf cannot type a field as
    ``Literal[...]``, so the recipe config types them ``str`` and :func:`validate_options` enforces
    the choices). Numeric options take bounds ``gt``/``ge``/``lt``/``le``.
    """
    if not help:
        raise ValueError("every option needs a help text.")
    metadata = {"help": help, "choices": choices, "gt": gt, "ge": ge, "lt": lt, "le": le}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def validate_options(cfg: Any) -> None:
    """Check every field of the dataclass instance ``cfg`` against its :func:`option` constraints.

    Raises a ``ValueError`` naming the option, the value and what was expected.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            validate_options(value)
            continue
        meta = f.metadata
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"option {f.name}={value!r} is invalid; expected one of {list(choices)}.")
        if value is None or isinstance(value, (str, bool)):
            continue
        for key, holds, words in (
            ("gt", lambda v, b: v > b, ">"),
            ("ge", lambda v, b: v >= b, ">="),
            ("lt", lambda v, b: v < b, "<"),
            ("le", lambda v, b: v <= b, "<="),
        ):
            bound = meta.get(key)
            if bound is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"option {f.name}={value!r} is invalid; expected a finite number.")
            if not holds(value, bound):
                raise ValueError(f"option {f.name}={value!r} is invalid; expected a value {words} {bound}.")


@dataclasses.dataclass
class RunConfig:
    """Options every recipe shares; recipe configs subclass it."""

    seed: int = option(0, "Random seed of torch, numpy, Python's random and the environments.", ge=0)
    threads: int = option(1, "torch.set_num_threads(threads): intra-op CPU threads.", ge=1)
    progress: bool = option(True, "Show a tqdm progress bar on stderr.")
    skip_finished: bool = option(
        True,
        "Exit at once if the run directory already holds a finished run (summary.json with "
        "finished=true), so that re-launching a sweep only runs what is missing.",
    )

    def __post_init__(self) -> None:
        validate_options(self)


def _format_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


def _option_lines(config_cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    for f in dataclasses.fields(config_cls):
        name = prefix + f.name
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "???"
        if dataclasses.is_dataclass(default) or (
            isinstance(f.type, type) and dataclasses.is_dataclass(f.type)
        ):
            nested = default if dataclasses.is_dataclass(default) else f.type
            rows.extend(_option_lines(type(nested) if not isinstance(nested, type) else nested, name + "."))
            continue
        help_text = f.metadata.get("help", "")
        if not help_text:
            raise ValueError(f"option {name} of {config_cls.__name__} has no help text; declare it with option().")
        choices = f.metadata.get("choices")
        if choices:
            help_text += f" One of: {', '.join(_format_default(c) for c in choices)}."
        rows.append((name, _format_default(default), help_text))
    return rows


def render_help(config_cls: type, *, app_name: str, description: str) -> str:
    """Render every option of ``config_cls`` (name, default, help) as a ``--help`` text."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls must be a dataclass, got {config_cls!r}.")
    rows = _option_lines(config_cls)
    width = max(len(f"{name}={default}") for name, default, _ in rows)
    width = min(width, 40)
    lines = [app_name, "", textwrap.fill(description, 96), "", "Options (override as key=value):", ""]
    for name, default, help_text in rows:
        head = f"  {name}={default}"
        wrapped = textwrap.wrap(help_text, 96 - width - 6) or [""]
        if len(head) > width + 2:
            lines.append(head)
            lines.extend(" " * (width + 6) + chunk for chunk in wrapped)
        else:
            lines.append(head.ljust(width + 6) + wrapped[0])
            lines.extend(" " * (width + 6) + chunk for chunk in wrapped[1:])
    lines += [""]
    lines += textwrap.wrap(
        "Hydra: hydra.run.dir=PATH sets the run directory; -m runs a sweep (e.g. -m seed=0,1,2, "
        "with hydra.sweep.dir=PATH to make it resumable); --cfg job prints the resolved config.",
        96,
    )
    lines += [""]
    # Hydra resolves the template with OmegaConf (where "${" starts an interpolation) and then with
    # string.Template (where "$" starts a placeholder), so a literal "$" is escaped for both.
    return "\n".join(lines).replace("$", "$$").replace("${", "\\${")


def register_config(name: str, config_cls: type, *, description: str) -> None:
    """Register ``config_cls`` in Hydra's ConfigStore as the primary config ``name``.

    The schema is stored as ``<name>_schema`` and the primary config sets
    ``hydra.help.template`` to :func:`render_help`, so ``--help`` lists every option. Use with
    ``@hydra.main(version_base=None, config_name=name)``.
    """
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name=f"{name}_schema", node=config_cls)
    template = render_help(config_cls, app_name=name, description=description)
    store.store(
        name=name,
        node={
            "defaults": [f"{name}_schema", "_self_"],
            "hydra": {"help": {"app_name": name, "template": template}},
        },
    )


def cli_override_keys() -> set[str]:
    """The option names set explicitly on the command line of the running Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    keys = set()
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        keys.add(key)
    return keys


def apply_preset(cfg: Any, preset: Mapping[str, Any], *, explicit: set[str] | None = None) -> Any:
    """Set the options of ``preset`` on ``cfg``, except those given explicitly on the command line.

    Presets (``smoke=true``, ``demo=true``) change defaults; an explicit ``key=value`` still wins.
    Returns ``cfg`` after re-validating it.
    """
    explicit = cli_override_keys() if explicit is None else explicit
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, value in preset.items():
        if key not in names:
            raise KeyError(f"preset option {key!r} is not an option of {type(cfg).__name__}.")
        if key not in explicit:
            setattr(cfg, key, value)
    validate_options(cfg)
    return cfg


def apply_presets(cfg: Any, presets: Mapping[str, Mapping[str, Any]]) -> Any:
    """Apply the preset of every boolean option of ``cfg`` named in ``presets`` that is true.

    The presets are exclusive: more than one of them set raises a ``ValueError`` naming them.
    Options given explicitly on the command line keep their values (see :func:`apply_preset`).
    """
    for name in presets:
        if not hasattr(cfg, name):
            raise AttributeError(f"presets names option {name!r}, which the config {type(cfg).__name__} lacks.")
    if sum(bool(getattr(cfg, name)) for name in presets) > 1:
        names = " and ".join(presets)
        raise ValueError(f"options {names} are exclusive presets; set at most one of them to true.")
    for name, preset in presets.items():
        if getattr(cfg, name):
            apply_preset(cfg, preset)
    return cfg


def finished_summary(name: str, run: RunDirectory, *, skip_finished: bool) -> dict | None:
    """The stored summary when ``run`` already finished and ``skip_finished`` is set (saying so on
    stdout), else ``None``: the run should go ahead."""
    if not (skip_finished and run.finished):
        return None
    print(f"{name}: {run.path} already holds a finished run; skipping (skip_finished=false to rerun).")
    return run.read_summary()


# ------------------------------------------------------------------------------------------------
# Training-loop helpers
# ------------------------------------------------------------------------------------------------
def seed_everything(seed: int, *envs: Any) -> None:
    """Seed Python's ``random``, numpy, torch and each TorchRL environment in ``envs``.

    Environments get distinct seeds (``seed``, ``seed + 1``, ...; TorchRL's ``set_seed`` may
    advance them further) so that training and evaluation episodes differ.
    """
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    for offset, env in enumerate(envs):
        env.set_seed(seed + 1000 * (offset + 1))


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` with a check (small networks run fastest on 1 thread)."""
    if isinstance(threads, bool) or int(threads) != threads or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}.")
    torch.set_num_threads(int(threads))


_EXPLORATION = ("deterministic", "random", "mode", "mean")


def evaluate_episodes(
    env: Any,
    policy: Callable[[TensorDictBase], TensorDictBase],
    *,
    num_episodes: int,
    max_steps: int,
    exploration: Literal["deterministic", "random", "mode", "mean"] = "deterministic",
    reward_key: str = "reward",
) -> tuple[Tensor, Tensor]:
    """Run ``num_episodes`` episodes of ``policy`` in the TorchRL ``env``; return their returns and lengths.

    Each episode starts from ``env.reset()`` and ends at the first ``done`` or after ``max_steps``
    steps. The policy runs under ``set_exploration_type(exploration)`` and ``torch.no_grad()``.
    ``env`` must be a single (unbatched) environment.
    """
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    if exploration not in _EXPLORATION:
        raise ValueError(f"exploration must be one of {list(_EXPLORATION)}, got {exploration!r}.")
    if isinstance(num_episodes, bool) or int(num_episodes) != num_episodes or num_episodes < 1:
        raise ValueError(f"num_episodes must be a positive integer, got {num_episodes!r}.")
    if isinstance(max_steps, bool) or int(max_steps) != max_steps or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}.")
    if tuple(env.batch_size) != ():
        raise ValueError(f"evaluate expects an unbatched environment, got batch_size={tuple(env.batch_size)}.")
    exploration_type = {
        "deterministic": ExplorationType.DETERMINISTIC,
        "random": ExplorationType.RANDOM,
        "mode": ExplorationType.MODE,
        "mean": ExplorationType.MEAN,
    }[exploration]
    returns, lengths = [], []
    with torch.no_grad(), set_exploration_type(exploration_type):
        for _ in range(int(num_episodes)):
            rollout = env.rollout(int(max_steps), policy, break_when_any_done=True, auto_reset=True)
            rewards = rollout.get(("next", reward_key))
            returns.append(rewards.sum())
            lengths.append(rewards.shape[0])
    return torch.stack(returns).to(torch.float64), torch.tensor(lengths)


def evaluate(
    env: Any,
    policy: Callable[[TensorDictBase], TensorDictBase],
    *,
    num_episodes: int,
    max_steps: int,
    exploration: Literal["deterministic", "random", "mode", "mean"] = "deterministic",
    reward_key: str = "reward",
) -> float:
    """Mean undiscounted return of ``policy`` over ``num_episodes`` episodes (see :func:`evaluate_episodes`)."""
    returns, _ = evaluate_episodes(
        env,
        policy,
        num_episodes=num_episodes,
        max_steps=max_steps,
        exploration=exploration,
        reward_key=reward_key,
    )
    return float(returns.mean())


class progress_bar:  # noqa: N801 - used like a function, as tqdm itself is
    """A tqdm bar over environment steps that costs nothing when disabled.

    Examples:
        >>> with progress_bar(1000, enabled=False, desc="train") as bar:
        ...     bar.update(10, loss=0.5)
    """

    def __init__(self, total: int, *, enabled: bool = True, desc: str | None = None) -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            # mininterval keeps redraws (and their cost) to a few per second.
            self._bar = tqdm(total=int(total), desc=desc, unit="step", mininterval=0.5, dynamic_ncols=True)

    def update(self, n: int, **postfix: float | str) -> None:
        """Advance by ``n`` steps; ``postfix`` values are shown next to the bar."""
        if self._bar is None:
            return
        if postfix:
            shown = {k: (f"{float(v):.4g}" if not isinstance(v, str) else v) for k, v in postfix.items()}
            self._bar.set_postfix(shown, refresh=False)
        self._bar.update(int(n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> progress_bar:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class EpisodeReturns:
    """Undiscounted returns of the training episodes seen in collector batches.

    ``update(reward, done)`` takes the ``("next", "reward")`` and ``("next", "done")`` entries of a
    flattened, time-ordered batch of one environment (``[T, 1]`` or ``[T]``) and closes an episode
    at each ``done``; a partial episode carries over to the next batch.

    Examples:
        >>> tracker = EpisodeReturns()
        >>> tracker.update(torch.ones(5, 1), torch.tensor([[False], [False], [True], [False], [False]]))
        >>> tracker.update(torch.ones(2, 1), torch.tensor([[False], [True]]))
        >>> tracker.returns, tracker.mean_recent()
        ([3.0, 4.0], 3.5)
    """

    def __init__(self, *, window: int = 10) -> None:
        if isinstance(window, bool) or int(window) != window or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}.")
        self.window = int(window)
        self.returns: list[float] = []
        self._current = 0.0

    def update(self, reward: Tensor, done: Tensor) -> None:
        reward = reward.reshape(-1)
        done = done.reshape(-1)
        if reward.shape != done.shape:
            raise ValueError(f"reward and done must have the same number of steps, got {reward.shape} and {done.shape}.")
        for r, d in zip(reward.tolist(), done.tolist()):
            self._current += r
            if d:
                self.returns.append(self._current)
                self._current = 0.0

    @property
    def count(self) -> int:
        """Number of completed episodes."""
        return len(self.returns)

    def mean_recent(self) -> float | None:
        """Mean return of the last ``window`` completed episodes (``None`` before the first one)."""
        if not self.returns:
            return None
        recent = self.returns[-self.window :]
        return sum(recent) / len(recent)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the run is aborted rather than continued on garbage."""


class NonFiniteGuard:
    """Abort a run with a clear error as soon as a loss term is not finite.

    ``check(losses, step=...)`` looks at every ``loss_*`` entry of a TensorDict (or mapping) and
    raises :class:`NonFiniteLossError` naming the non-finite terms and the step. Pass
    ``every=k`` to check only every ``k``-th call: each check synchronises with the device.

    Examples:
        >>> guard = NonFiniteGuard()
        >>> guard.check({"loss_qvalue": torch.tensor(1.0)}, step=10)
        >>> guard.check({"loss_qvalue": torch.tensor(float("nan"))}, step=11)
        Traceback (most recent call last):
        ...
        maxent_components.runs.NonFiniteLossError: non-finite loss at step 11: loss_qvalue=nan. ...
    """

    def __init__(self, *, every: int = 1) -> None:
        if isinstance(every, bool) or int(every) != every or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}.")
        self.every = int(every)
        self._calls = 0

    def check(self, losses: TensorDictBase | Mapping[str, Tensor], *, step: int) -> None:
        self._calls += 1
        if (self._calls - 1) % self.every:
            return
        items = losses.items() if isinstance(losses, Mapping) else losses.items(include_nested=False)
        terms = {k: v for k, v in items if isinstance(k, str) and k.startswith("loss") and isinstance(v, Tensor)}
        if not terms:
            return
        # One stacked reduction instead of one host synchronisation per term.
        finite = torch.stack([torch.isfinite(v.detach()).all() for v in terms.values()])
        if bool(finite.all()):
            return
        bad = {k: float(v.detach().float().mean()) for (k, v), ok in zip(terms.items(), finite.tolist()) if not ok}
        shown = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {shown}. Aborting the run; lower the learning rate, "
            f"check the reward scale and the temperature, or inspect metrics.csv for where it diverged."
        )
