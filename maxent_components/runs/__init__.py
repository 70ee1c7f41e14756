"""Runs: run folders identified by their config, atomic files, recipe configs and command lines.

- :mod:`~maxent_components.runs.files`: files that are never half-written;
- :mod:`~maxent_components.runs.checkpoint`: checksummed checkpoint files;
- :mod:`~maxent_components.runs.errors`: the named errors a run ends with;
- :mod:`~maxent_components.runs.directory`: the run folder (summary, checkpoints, logs), run identity;
- :mod:`~maxent_components.runs.config`: option schemas, presets, ``--help``;
- :mod:`~maxent_components.runs.lock`: one live process per run folder;
- :mod:`~maxent_components.runs.logs`: metrics loggers resumed without a repeated or missing step;
- :mod:`~maxent_components.runs.cli`: the recipe command line (usage errors before anything runs);
- :mod:`~maxent_components.runs.job`: one job, from its folder's lock to the line that says how it ended;
- :mod:`~maxent_components.runs.rng`: seeding, threads, and the RNG states a checkpoint restores.
"""

from typing import TYPE_CHECKING

from maxent_components._lazy import lazy_names

if TYPE_CHECKING:  # the names, for type checkers and the API reference; imported on first use
    from maxent_components.runs.checkpoint import read_checkpoint, write_checkpoint
    from maxent_components.runs.cli import Recipe, UsageError
    from maxent_components.runs.config import LoggerConfig, RunConfig, group, option, validate_options
    from maxent_components.runs.directory import (
        CHECKPOINT_FILE,
        SUMMARY_FILE,
        RunConflictError,
        RunDirectory,
        config_identity,
        find_run,
    )
    from maxent_components.runs.errors import CheckpointError, RunFailure, RunInterrupted, RunWriteError
    from maxent_components.runs.files import atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text
    from maxent_components.runs.lock import RunLock, RunLockedError
    from maxent_components.runs.logs import RunLogger
    from maxent_components.runs.rng import rng_state, seed_everything, set_rng_state, set_threads

#: public name → the module it comes from (imported on first use: the command line's --help needs
#: only the schema and the config groups, not PyTorch)
_EXPORTS = {
    **dict.fromkeys(("read_checkpoint", "write_checkpoint"), "checkpoint"),
    **dict.fromkeys(("Recipe", "UsageError"), "cli"),
    **dict.fromkeys(("LoggerConfig", "RunConfig", "group", "option", "validate_options"), "config"),
    **dict.fromkeys(("CHECKPOINT_FILE", "SUMMARY_FILE", "RunConflictError", "RunDirectory", "config_identity",
                     "find_run"), "directory"),
    **dict.fromkeys(("CheckpointError", "RunFailure", "RunInterrupted", "RunWriteError"), "errors"),
    **dict.fromkeys(("atomic_torch_save", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"), "files"),
    **dict.fromkeys(("RunLock", "RunLockedError"), "lock"),
    "RunLogger": "logs",
    **dict.fromkeys(("rng_state", "seed_everything", "set_rng_state", "set_threads"), "rng"),
}

__all__ = [
    "CHECKPOINT_FILE",
    "CheckpointError",
    "LoggerConfig",
    "Recipe",
    "RunConfig",
    "RunConflictError",
    "RunDirectory",
    "RunFailure",
    "RunInterrupted",
    "RunLock",
    "RunLockedError",
    "RunLogger",
    "RunWriteError",
    "SUMMARY_FILE",
    "UsageError",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "config_identity",
    "find_run",
    "group",
    "option",
    "read_checkpoint",
    "rng_state",
    "seed_everything",
    "set_rng_state",
    "set_threads",
    "validate_options",
    "write_checkpoint",
]

__getattr__, __dir__ = lazy_names(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()}, globals())
