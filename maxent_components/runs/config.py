"""Recipe configuration: the option schema, its checks, presets and the ``--help`` text.

A recipe's configuration is composed by Hydra from

- a **schema**, a dataclass whose fields are declared with :func:`option` (a default, a help text,
  bounds or choices, and whether the option is *run-only*: it changes how a run is watched, not what
  it computes, so it is not part of the run's identity);
- **config groups** for the pluggable parts (``env``, ``sampler``, ``soft_value``, ``temperature``):
  YAML files under ``maxent_components/recipes/conf/<group>/`` whose ``_target_`` names the class
  that :func:`~maxent_components.training.builders.build_part` instantiates.

``--help`` (:mod:`maxent_components.runs.help`) lists every option of the schema and, for every
group, its choices with their options, each documented by the docstring of the class it configures.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = [
    "RunConfig",
    "LoggerConfig",
    "apply_presets",
    "group",
    "option",
    "neutral_defaults",
    "run_only_keys",
    "validate_options",
]


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    run_only: bool = False,
    neutral: bool = False,
) -> Any:
    """A dataclass field for a recipe option: a default, a help text and optional constraints.

    ``run_only`` options are left out of the run's identity (see
    :func:`~maxent_components.runs.directory.config_identity`). ``neutral`` options are left out of
    it at their default: an option added later whose default is what runs did before it, so that
    runs recorded before it existed keep their identity.
    """
    if not help:
        raise ValueError("every option needs a help text.")
    metadata = {"help": help, "choices": choices, "gt": gt, "ge": ge, "lt": lt, "le": le, "run_only": run_only,
                "neutral": neutral}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    if dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: dataclasses.replace(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group(help: str) -> Any:
    """A schema field filled by a config group (``env``, ``sampler``, ...): its choices are YAML files."""
    return dataclasses.field(default="???", metadata={"help": help, "group": True})


_BOUNDS = (
    ("gt", lambda v, b: v > b, ">"),
    ("ge", lambda v, b: v >= b, ">="),
    ("lt", lambda v, b: v < b, "<"),
    ("le", lambda v, b: v <= b, "<="),
)


def validate_options(cfg: Any, prefix: str = "") -> None:
    """Check every :func:`option` of the dataclass instance ``cfg`` (recursively).

    Raises a ``ValueError`` naming the option, its value and what was expected.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        name = prefix + f.name
        if f.metadata.get("group"):
            continue
        if dataclasses.is_dataclass(value):
            validate_options(value, name + ".")
            continue
        meta = f.metadata
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"option {name}={value!r} is invalid; expected one of {list(choices)}.")
        if value is None or isinstance(value, (str, bool)) or not isinstance(value, (int, float)):
            continue
        for key, holds, words in _BOUNDS:
            bound = meta.get(key)
            if bound is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"option {name}={value!r} is invalid; expected a finite number.")
            if not holds(value, bound):
                raise ValueError(f"option {name}={value!r} is invalid; expected a value {words} {bound}.")


@dataclasses.dataclass
class LoggerConfig:
    """Where the metrics go."""

    backend: str = option(
        "csv",
        "TorchRL logger of the metrics, written under the run folder's logs/ (wandb and mlflow when installed).",
        choices=("csv", "tensorboard", "wandb", "mlflow"),
        run_only=True,
    )

    def __post_init__(self) -> None:
        package = self.backend if self.backend in ("tensorboard", "wandb", "mlflow") else None  # csv: none
        if package is not None and importlib.util.find_spec(package) is None:
            raise ValueError(
                f"logger.backend={self.backend} needs the {package} package, which is not installed "
                f"(pip install {package}); logger.backend=csv needs none."
            )


@dataclasses.dataclass
class RunConfig:
    """Options every recipe shares; recipe schemas subclass it."""

    seed: int = option(0, "Random seed of torch, numpy, Python's random and the recipe's environments, if any.", ge=0)
    threads: int = option(1, "torch.set_num_threads(threads): intra-op CPU threads.", ge=1, run_only=True)
    progress: bool = option(True, "Show a tqdm progress bar on stderr.", run_only=True)
    smoke: bool = option(False, "Tiny-budget preset for tests; smoke=true --help shows the values it sets.", run_only=True)
    logger: LoggerConfig = option(LoggerConfig(), "Metrics logging.")

    def __post_init__(self) -> None:
        validate_options(self)


def run_only_keys(schema: type, prefix: str = "") -> list[str]:
    """The dotted names of the run-only options of ``schema``."""
    keys = []
    for f in dataclasses.fields(schema):
        default = _default_of(f)
        if dataclasses.is_dataclass(default):
            keys += run_only_keys(type(default), prefix + f.name + ".")
        elif f.metadata.get("run_only"):
            keys.append(prefix + f.name)
    return keys


def neutral_defaults(schema: type, prefix: str = "") -> dict[str, Any]:
    """``{dotted name: default}`` of the neutral options of ``schema``."""
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        default = _default_of(f)
        if dataclasses.is_dataclass(default):
            defaults.update(neutral_defaults(type(default), prefix + f.name + "."))
        elif f.metadata.get("neutral"):
            defaults[prefix + f.name] = default
    return defaults


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return "???"


# -- presets ---------------------------------------------------------------------------------------
def apply_presets(cfg: DictConfig, presets: Mapping[str, Mapping[str, Any]], explicit: Iterable[str]) -> DictConfig:
    """Apply the preset of every boolean option named in ``presets`` that is true.

    A preset maps dotted keys to values; keys given explicitly on the command line keep their
    values. The presets are exclusive: more than one set raises a ``ValueError`` naming them.
    """
    active = [name for name in presets if OmegaConf.select(cfg, name) is True]
    if len(active) > 1:
        raise ValueError(f"options {' and '.join(active)} are exclusive presets; set at most one of them to true.")
    explicit = set(explicit)
    missing = object()
    for name in active:
        for key, value in presets[name].items():
            # A preset may name the option of one group choice (sampler.num_particles): skipped for others.
            if key not in explicit and OmegaConf.select(cfg, key, default=missing) is not missing:
                OmegaConf.update(cfg, key, value, merge=False)
    return cfg
