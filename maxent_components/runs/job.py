"""One job of a recipe, from its run folder's lock to the line that says how it ended.

:func:`run_job` is what Hydra calls for each job (the one run, or each cell of a sweep):

1. the run folder is found by the run's config (a sweep relaunched with other overrides finds its
   cells wherever they are) and judged (:meth:`RunDirectory.status`): a folder holding another
   config, or a run logged with another ``logger.backend``, is refused with one line and exit
   status 2, **before anything is written** (Hydra is configured to write nothing of its own first);
2. the folder is locked (:class:`~maxent_components.runs.lock.RunLock`): a second live process is
   refused with one line naming the folder and the holder's PID, exit status 2;
3. only then are Hydra's ``.hydra/`` files and the job log written, and the run trains;
4. every way it ends is one line on stderr and a summary marked ``finished`` or ``failed`` with the
   reason: a :class:`~maxent_components.runs.errors.RunFailure` (exit 1), ``SIGINT``/``SIGTERM``
   (exit 130/143, saying how to resume), a full disk or an unwritable file (exit 1), and any other
   error (exit 1, its traceback kept in ``error.log`` in the run folder).
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from maxent_components.runs.checkpoint import verify_checkpoint
from maxent_components.runs.directory import RunConflictError, RunDirectory, config_identity, find_run
from maxent_components.runs.errors import CheckpointError, RunFailure, RunInterrupted
from maxent_components.runs.files import atomic_write_text
from maxent_components.runs.lock import RunLock, RunLockedError
from maxent_components.runs.overrides import key_of
from maxent_components.runs.rng import seed_everything, set_threads

__all__ = ["ERROR_LOG", "run_job"]

ERROR_LOG = "error.log"
_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def _fail(name: str, message: str, code: int) -> None:
    print(f"{name}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_job(recipe, cfg: DictConfig) -> dict | None:
    """Run one job of ``recipe`` (a :class:`~maxent_components.runs.cli.Recipe`) on its composed ``cfg``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    name = recipe.name
    hydra_cfg = HydraConfig.get()
    recipe.prepare(cfg, explicit=[key_of(o) for o in hydra_cfg.overrides.task])
    config = OmegaConf.to_container(cfg, resolve=True)
    _, digest = config_identity(config, recipe.run_only, recipe.neutral)
    job_dir = Path(hydra_cfg.runtime.output_dir)
    run = RunDirectory(job_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        existing = find_run(hydra_cfg.sweep.dir, digest)
        if existing is not None and existing.resolve() != job_dir.resolve():
            if run.is_empty_job_folder():
                shutil.rmtree(job_dir, ignore_errors=True)
            run = RunDirectory(existing)
    lock = RunLock(run.path)
    try:
        status = _judge(run, digest, config)
        lock.acquire()
        status = _judge(run, digest, config)  # again under the lock: the holder may have just ended
    except (RunConflictError, RunLockedError) as err:
        _remove_if_empty(run.path)  # the folder Hydra made for a job that does not run
        _fail(name, str(err), 2)
    except OSError as err:
        _fail(name, f"cannot write into the run folder {run.path}: {err.strerror or err}", 1)
    try:
        return _run(recipe, cfg, run, config, digest, status, hydra_cfg)
    finally:
        lock.release()


def _judge(run: RunDirectory, digest: str, config: dict) -> str:
    """The folder's status for this config; a resume under another logger backend is a conflict."""
    status = run.status(digest, config)
    if status == "resumable":
        summary = run.read_summary() or {}
        before = (summary.get("config") or {}).get("logger", {}).get("backend")
        now = config.get("logger", {}).get("backend")
        if before is not None and now is not None and before != now:
            raise RunConflictError(
                f"{run.path} holds a run logged with logger.backend={before}; resume it with "
                f"logger.backend={before} (its metrics stay in one backend), or choose another hydra.run.dir."
            )
    return status


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()  # only an empty folder
    except OSError:
        pass


def _write_hydra_files(run: RunDirectory, cfg: DictConfig, hydra_cfg: DictConfig, job_name: str) -> logging.Handler:
    """Hydra's ``.hydra/`` files and the job log, written once the run is known to go ahead."""
    from hydra.core.hydra_config import HydraConfig

    folder = run.path / ".hydra"
    atomic_write_text(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(folder / "hydra.yaml", OmegaConf.to_yaml(HydraConfig.instance().cfg))
    atomic_write_text(folder / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.overrides.task))
    handler = logging.FileHandler(run.path / f"{job_name}.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """``SIGTERM`` ends the run as ``SIGINT`` does (:class:`RunInterrupted`), in the main thread."""

    def handler(signum, frame):
        raise RunInterrupted(signal.Signals(signum).name)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals are left as they are
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _last_checkpoint(run: RunDirectory) -> str:
    for path in (run.checkpoint_path, run.previous_checkpoint_path):
        try:
            return f"step {verify_checkpoint(path)['step']}"
        except CheckpointError:
            continue
    return "the start (no checkpoint yet)"


def _run(recipe, cfg: DictConfig, run: RunDirectory, config: dict, digest: str, status: str, hydra_cfg) -> dict | None:
    name = recipe.name
    if status == "finished":
        print(f"{name}: {run.path} already holds a finished run of this config; skipping.")
        summary = run.read_summary()
        if recipe.report is not None:
            print(recipe.report(cfg, summary))
        return summary
    for note in run.notes:
        print(f"{name}: {note}")
    if status == "resumable":
        print(f"{name}: resuming {run.path} from its checkpoint.")
    handler = None
    try:
        handler = _write_hydra_files(run, cfg, hydra_cfg, hydra_cfg.job.name)
        run.start(config, digest, run_only=recipe.run_only, neutral=recipe.neutral, resume=status == "resumable")
        run.check_writable()
    except OSError as err:
        _fail(name, f"cannot write into the run folder {run.path}: {err.strerror or err}", 1)
    set_threads(cfg.threads)
    seed_everything(cfg.seed)  # a resumed run restores the generators' states from its checkpoint
    try:
        with _signals_interrupt():
            summary = {"recipe": name, **recipe.train(cfg, run)}
            run.finish(summary)
    except (RunFailure, CheckpointError) as err:
        _mark_failed(run, getattr(err, "summary", {}), str(err))
        _fail(name, str(err), 1)
    except KeyboardInterrupt as err:  # SIGINT, or SIGTERM through _signals_interrupt
        signal_name = err.signal_name if isinstance(err, RunInterrupted) else "SIGINT"
        cause = (f"interrupted by {signal_name}; relaunch the same command to resume from the checkpoint at "
                 f"{_last_checkpoint(run)}")
        _mark_failed(run, getattr(err, "summary", {}), cause)
        _fail(name, f"{run.path} {cause}.", _EXIT.get(signal_name, 130))
    except OSError as err:  # the final summary (or a file the run writes itself) on a full or read-only disk
        where = f"could not write {err.filename}" if err.filename else "a file could not be written"
        _mark_failed(run, {}, f"{where}: {err.strerror or err}")
        _fail(name, f"{where}: {err.strerror or err}; the run's checkpoint at {_last_checkpoint(run)} is kept, "
              f"relaunch to resume once there is room.", 1)
    except Exception as err:
        kept = _keep_traceback(run, err)
        text = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        _mark_failed(run, getattr(err, "summary", {}), text)
        _fail(name, f"unexpected {text} ({kept})", 1)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    if recipe.report is not None:
        print(recipe.report(cfg, summary))
    return summary


def _mark_failed(run: RunDirectory, summary: dict[str, Any], cause: str) -> None:
    try:
        run.fail(summary, cause)
    except OSError:
        pass  # a disk that refused the run's files may refuse the summary too; the old one says unfinished


def _keep_traceback(run: RunDirectory, err: BaseException) -> str:
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        atomic_write_text(run.path / ERROR_LOG, text)
    except OSError:
        return "its traceback could not be written"
    return f"traceback in {run.path / ERROR_LOG}"
