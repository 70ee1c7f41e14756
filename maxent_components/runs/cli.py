"""A recipe's command line: Hydra's, with every usage error caught before anything runs.

:class:`Recipe` turns ``train(cfg, run) -> summary`` into a Hydra application whose config is the
recipe's schema plus its config groups (``maxent_components/recipes/conf``). Before Hydra creates
any folder, every job of the command (each cell of a ``-m`` sweep) is composed and checked:

- an unknown option (``totl_frames=3``, or ``+foo=1``, which Hydra would accept), an unknown group
  choice (``sampler=foo``), a value of the wrong type or out of bounds, and any value the recipe's
  parts reject when they are built, ends the command with one line on stderr and exit status 2;
- a run folder that cannot be one (a file in the way, a read-only folder) ends it with one line and
  exit status 1;
- then Hydra runs the jobs (sequentially, or on the launcher chosen with ``hydra/launcher=...``),
  each through :func:`~maxent_components.runs.job.run_job`, which locks and judges the run folder
  before anything is written (Hydra itself is configured to write nothing first).
"""

from __future__ import annotations

import difflib
import itertools
import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from maxent_components.runs.config import apply_presets, neutral_defaults, run_only_keys
from maxent_components.runs.directory import RunDirectory, folder_problem
from maxent_components.runs.help import render_help
from maxent_components.runs.overrides import (
    dotted_keys,
    expand,
    hydra_settings,
    key_of,
    one_line,
)

__all__ = ["Recipe", "UsageError"]

CONF_MODULE = "maxent_components.recipes.conf"
CONF_DIR = Path(__file__).resolve().parents[1] / "recipes" / "conf"
# Flags with which Hydra runs nothing: passed straight through.
_INFO_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc",
               "--version", "--resolve", "--package", "-p"}
_MAX_JOBS_CHECKED = 2000
#: Hydra's job logging without its log file (the job opens that once its run goes ahead)
JOB_LOGGING = {
    "version": 1,
    "formatters": {"simple": {"format": "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "simple", "stream": "ext://sys.stdout"}},
    "root": {"level": "INFO", "handlers": ["console"]},
    "disable_existing_loggers": False,
}


class UsageError(ValueError):
    """A bad command line: reported as one line and exit status 2."""


class Recipe:
    """A training recipe as a command-line application.

    Args:
        name: the recipe's name and its primary config ``conf/<name>.yaml``.
        train: ``train(cfg, run) -> summary``: builds the parts and trains, writing into ``run``
            (a :class:`~maxent_components.runs.directory.RunDirectory`).

    Keyword Args:
        schema: the dataclass of the recipe's own options (a :class:`~maxent_components.runs.config.RunConfig`).
        description: the first paragraph of ``--help``.
        check: ``check(cfg)`` raises ``ValueError``/``TypeError`` for a config that cannot run, e.g.
            by building the recipe's parts; called on every job before anything runs.
        presets: boolean options that set several others (``smoke``, ``demo``): ``{name: {key: value}}``.
        groups: the config groups listed in ``--help``.
        group_docs: help texts of group options whose nodes name no class (``{"env": {"name": ...}}``).
        neutral: group options added later, left out of a run's identity at the value given, as the
            schema's neutral options are (``{"sampler.bandwidth_scale": 1.0}``).
        report: ``report(cfg, summary)``: the lines printed at the end of a run, or of a skipped one.
        fits: ``fits(group, cls)``: whether a group choice's class fits the recipe; ``--help`` lists only
            those (``None``: every choice).
    """

    def __init__(
        self,
        name: str,
        train: Callable[[DictConfig, RunDirectory], dict],
        *,
        schema: type,
        description: str,
        check: Callable[[DictConfig], None] | None = None,
        presets: Mapping[str, Mapping[str, Any]] | None = None,
        groups: Sequence[str] = (),
        group_docs: Mapping[str, Mapping[str, str]] | None = None,
        neutral: Mapping[str, Any] | None = None,
        report: Callable[[DictConfig, dict], str] | None = None,
        fits: Callable[[str, type], bool] | None = None,
    ) -> None:
        from hydra.core.config_store import ConfigStore

        self.name, self.train, self.schema, self.check, self.report = name, train, schema, check, report
        self.fits = fits
        self.presets = dict(presets or {})
        self.groups = tuple(groups)
        self.run_only, self.neutral = run_only_keys(schema), {**neutral_defaults(schema), **(neutral or {})}
        store = ConfigStore.instance()
        store.store(name=f"{name}_schema", node=schema)
        # A preset other than the tests' smoke names its run folder (runs/sql/demo=true): a demo does not
        # take the folder of the recipe's default run.
        in_folder_name = [key for key in self.run_only if key not in self.presets or key == "smoke"]
        store.store(name=f"{name}_hydra", node={"hydra": hydra_settings(name, in_folder_name)})
        # Hydra's job log without its file: the job opens the file once the run goes ahead.
        store.store(group="hydra/job_logging", name="maxent_components", node=JOB_LOGGING)
        self.description, self.group_docs = description, dict(group_docs or {})
        # Hydra's own --help is replaced by help(), which knows the composed defaults.
        store.store(group="hydra/help", name=name, node={"app_name": name, "header": "", "footer": "", "template": ""})

    # -- entry point ---------------------------------------------------------------------------
    def main(self, argv: Sequence[str] | None = None) -> None:
        """Run the command line ``argv`` (default ``sys.argv[1:]``); exits with status 2 on a usage error."""
        try:
            self._main(list(sys.argv[1:] if argv is None else argv))
        except KeyboardInterrupt:  # before a run started (a run's own interruption is reported by the job)
            print(f"{self.name}: interrupted before the run started; nothing was written.", file=sys.stderr)
            raise SystemExit(130) from None

    def _main(self, argv: list[str]) -> None:
        if {"--help", "-h"} & set(argv):
            try:
                print(self.help([a for a in argv if not a.startswith("-")]))
            except UsageError as err:
                print(f"{self.name}: error: {err}", file=sys.stderr)
                raise SystemExit(2) from None
            return
        if not _INFO_FLAGS.intersection(argv):
            overrides = [a for a in argv if not a.startswith("-")]
            try:
                folders = self.preflight(overrides, multirun=bool({"-m", "--multirun"} & set(argv)))
            except UsageError as err:
                print(f"{self.name}: error: {err}", file=sys.stderr)
                raise SystemExit(2) from None
            for folder in folders:  # before Hydra makes the folders and configures its logging
                problem = folder_problem(folder)
                if problem is not None:
                    print(f"{self.name}: error: cannot write into the run folder {folder}: {problem}", file=sys.stderr)
                    raise SystemExit(1)
        import hydra

        saved, sys.argv = sys.argv, [sys.argv[0], *argv]
        try:
            hydra.main(version_base=None, config_path=f"pkg://{CONF_MODULE}", config_name=self.name)(self._job)()
        finally:
            sys.argv = saved

    def help(self, overrides: Sequence[str] = ()) -> str:
        """The ``--help`` text: every option with its value under ``overrides`` and its documentation."""
        from hydra import compose, initialize_config_module
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        own = [o for o in overrides if not key_of(o).startswith("hydra")]
        with initialize_config_module(config_module=CONF_MODULE, version_base=None):
            try:
                cfg = compose(self.name, overrides=own)
            except (HydraException, OmegaConfBaseException) as err:
                raise UsageError(self._explain(err, base=compose(self.name))) from None
        try:  # a preset's values are shown as they will run (smoke=true --help)
            apply_presets(cfg, self.presets, [key_of(o) for o in own])
        except ValueError as err:
            raise UsageError(one_line(str(err))) from None
        return render_help(self.name, self.description, self.schema, cfg, self.groups, CONF_DIR, self.group_docs,
                           fits=self.fits)

    # -- checks before anything runs -----------------------------------------------------------
    def preflight(self, overrides: Sequence[str], *, multirun: bool) -> list[Path]:
        """Compose and check every job of the command; raise :class:`UsageError` on the first bad one.
        Returns the jobs' run folders (those Hydra will make), for a check before it makes them."""
        from hydra import compose, initialize_config_module
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        quiet_torchrl()  # the checks build the environments
        own = [o for o in overrides if not key_of(o).startswith("hydra")]
        hydra_overrides = [o for o in overrides if key_of(o).startswith("hydra")]
        missing = object()
        with initialize_config_module(config_module=CONF_MODULE, version_base=None):
            defaults = compose(self.name)  # the known options, for "did you mean"
            for override in own:
                key = key_of(override)
                parent = key.rpartition(".")[0]
                open_dict_key = parent.endswith("kwargs") and OmegaConf.select(defaults, parent, default=None) is not None
                if override.startswith("~") or (
                    override.startswith("+") and not open_dict_key
                    and OmegaConf.select(defaults, key, default=missing) is missing
                ):
                    raise UsageError(self._unknown(key, defaults, override))
            jobs = expand(own) if multirun else [own]
            folders = []
            for index, job in enumerate(itertools.islice(jobs, _MAX_JOBS_CHECKED)):
                choices, cfg = "", None
                try:
                    # The Hydra overrides (launcher, folders) are composed once, with the first job.
                    cfg = compose(self.name, overrides=job + (hydra_overrides if index == 0 else []), return_hydra_config=True)
                    if index == 0 or multirun:
                        folders += _job_folder(cfg.hydra, multirun, first=folders[0] if folders else None)
                    chosen = cfg.hydra.runtime.choices
                    choices = " ".join(f"{g}={chosen[g]}" for g in self.groups if g in chosen)
                    with open_dict(cfg):
                        del cfg["hydra"]
                    self.prepare(cfg, explicit=[key_of(o) for o in job])
                    if self.check is not None:
                        self.check(cfg)
                except (HydraException, OmegaConfBaseException) as err:
                    raise UsageError(self._explain(err, base=defaults)) from None
                except (ValueError, TypeError, KeyError) as err:
                    text = self._qualify(one_line(str(err) if not isinstance(err, KeyError) else err.args[0]), cfg)
                    raise UsageError(f"{text} [{choices}]" if choices else text) from None
        return folders

    def _qualify(self, text: str, cfg: DictConfig | None) -> str:
        """A part's own error names its argument (``bandwidth_scale must be ...``); on the command line
        that option is ``group.argument``: prefixed when exactly one chosen part has it."""
        match = re.match(r"(\w+)(\[\d+\])?[ =]", text)
        if match is None or cfg is None or match.group(1) in cfg:  # a top-level option (alpha) is named as typed
            return text
        groups = [g for g in self.groups if isinstance(cfg.get(g), DictConfig) and match.group(1) in cfg[g]]
        return f"{groups[0]}.{text}" if len(groups) == 1 else text

    def prepare(self, cfg: DictConfig, *, explicit: Iterable[str]) -> DictConfig:
        """Apply the presets (explicit keys win) and check the schema's bounds; returns ``cfg``."""
        apply_presets(cfg, self.presets, explicit)
        OmegaConf.to_object(cfg)  # instantiates the schema dataclass: its __post_init__ checks the bounds
        return cfg

    def _unknown(self, key: str, base: DictConfig | None, shown: str) -> str:
        known = dotted_keys(OmegaConf.to_container(base)) if base is not None else []
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see --help for the options"
        return f"unknown option {key!r} ({shown}){hint}"

    def _explain(self, err: Exception, *, base: DictConfig | None) -> str:
        """One line for a Hydra or OmegaConf error, from the exception's own fields: the group choice
        that does not exist, the key the structured config does not know, the value its type refuses."""
        from hydra.errors import MissingConfigException
        from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

        cause = err.__cause__
        if isinstance(err, MissingConfigException) and err.missing_cfg_file and "/" in err.missing_cfg_file:
            group, choice = err.missing_cfg_file.rsplit("/", 1)
            listed = f"; choose one of {', '.join(err.options)}" if err.options else ""
            return f"{group.replace('/', '.')}={choice} is not a choice of {group.replace('/', '.')}{listed}"
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
            return self._unknown(str(cause.full_key), base, str(cause.full_key))
        if isinstance(cause, ValidationError) and cause.full_key:
            expected = _expected_kind(OmegaConf.select(base, str(cause.full_key), default=None) if base is not None else None)
            return f"option {cause.full_key}={_shown(cause.value)} is invalid; expected {expected}"
        text = str(err)
        if "Ambiguous value for argument" in text:  # an override's comma list without -m (Hydra's parser)
            return f"{one_line(text).split(' 1.')[0]}: a comma list is a sweep (add -m), a list value is key=[a,b]"
        return one_line("\n".join(str(e) for e in (err, cause) if e is not None))

    # -- one job -------------------------------------------------------------------------------
    def _job(self, cfg: DictConfig) -> dict | None:
        from maxent_components.runs.job import run_job

        quiet_torchrl()
        return run_job(self, cfg)


def _expected_kind(default) -> str:
    """What an option's type accepts, from its default in the structured config."""
    from omegaconf import ListConfig

    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, ListConfig):
        return "a list, key=[a,b]"
    if isinstance(default, DictConfig):
        return "options key.name=value"
    return "a value of the option's type (see --help)"


def _shown(value) -> str:
    return str(value) if not isinstance(value, (list, tuple)) else "[" + ",".join(map(str, value)) + "]"


def _job_folder(hydra: DictConfig, multirun: bool, first: Path | None) -> list[Path]:
    """The folder of a composed job (``[]`` when its name depends on what only the launch knows,
    such as ``${hydra.job.num}``); a sweep's cells below the sweep folder of its first job."""
    try:
        if not multirun:
            return [Path(str(OmegaConf.select(hydra, "run.dir", throw_on_missing=True)))]
        sweep = first.parent if first is not None else Path(str(OmegaConf.select(hydra, "sweep.dir", throw_on_missing=True)))
        return [sweep / str(OmegaConf.select(hydra, "sweep.subdir", throw_on_missing=True))]
    except Exception:  # an interpolation that only the launch resolves: left to the job's own check
        return []


def quiet_torchrl() -> None:
    """TorchRL logs INFO lines (a replay storage's size, a vector env's spec check) to stdout, through
    the progress bar; its warnings still show."""
    logging.getLogger("torchrl").setLevel(logging.WARNING)
