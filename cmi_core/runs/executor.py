"""Executors: where trials run. A trial is one fold of one config and seed.

- :class:`LocalExecutor`: this machine. One job trains in this process; more jobs train in
  spawn-started worker processes (torch and ``fork`` do not mix; :mod:`cmi_core.runs.workers`),
  each with its own thread budget, reused across trials so the ~5-9 s import of torch and
  Lightning is paid once per worker. A worker trains inside its run directory's ``fold_<k>/``
  (so an interrupted trial resumes from its ``last.ckpt``). A worker that dies fails only its
  own trial (a new worker takes the queue); workers end when their driver dies.
- :class:`RayExecutor`: a Ray cluster (optional extra ``cmi-trainer[ray]``). Each trial asks Ray
  for the CPUs and GPUs its config needs, trains in a scratch directory on whichever node Ray
  picks, and sends its fold directory's files back with its result: workers need no shared
  filesystem.

Either way the driver alone writes ``summary.json`` and ``oof_predictions.csv``
(:mod:`cmi_core.runs.trials`). Executors yield outcomes as trials finish; a failed trial is an
outcome with an ``error``, so the other trials go on.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from cmi_core.common.atomic import write_bytes_atomic
from cmi_core.data.source import load_data
from cmi_core.errors import CmiError
from cmi_core.rundir.layout import fold_dir
from cmi_core.runs.workers import WorkerPool

if TYPE_CHECKING:
    import numpy as np

    from cmi_core.config import Config
    from cmi_core.data.sequences import SequenceSet
    from cmi_core.train.fold import FinishedFold

RAY_EXTRA = "pip install 'cmi-trainer[ray]'"


class ExecutorError(CmiError):
    """An executor that cannot start: Ray not installed, a cluster that cannot be reached."""


@attrs.frozen
class Trial:
    """One fold of one run directory, with the resources it needs."""

    run_dir: str
    fold: int
    config: dict[str, Any]
    """The resolved config as plain data (``config_to_dict``), rebuilt in the worker."""
    threads: int
    gpus: int = 0

    @property
    def name(self) -> str:
        return f"{Path(self.run_dir).name} fold {self.fold}"


@attrs.frozen
class TrialReply:
    """An executor's reply for one trial: the :class:`~cmi_core.train.fold.FinishedFold`, or
    the error that stopped it (and the fold directory's files when it ran elsewhere)."""

    trial: Trial
    result: FinishedFold | None = None
    files: dict[str, bytes] | None = None
    """The fold directory's files, when the trial ran away from the run directory."""
    error: str | None = None


class Executor(Protocol):
    default_threads: int
    """Threads of a trial whose config leaves ``trainer.threads`` at 0."""

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialReply]:
        """Run every trial; yield each outcome as it finishes."""
        ...

    def close(self) -> None: ...


def resolve_jobs(cfg: Config, requested: int | None, trials: int | None = None) -> int:
    """``--jobs``, else ``[trainer] jobs``, else automatic: one trial per ``trainer.threads``
    cores on a CPU-only machine (2 on a 2-core machine at 1 thread), no more than the
    ``trials`` to run, and 1 where a trial uses a GPU, several devices, or all cores
    (``threads = 0``).

    A trial's thread count comes from its config alone, never from the scheduling: its
    numbers depend on it (the summation order of parallel reductions), so a fold gives the
    same result alone, beside others, or in the last round with a core idle. On 2 cores, two
    folds at one thread each beat one fold at two threads (docs/benchmarks.md, "Jobs")."""
    jobs = requested if requested is not None else cfg.trainer.jobs
    if jobs:
        return jobs  # LocalExecutor refuses a negative count
    t = cfg.trainer
    if t.threads == 0 or t.devices not in (1, "auto") or t.strategy != "auto":
        return 1
    if t.accelerator != "cpu":
        import torch

        if torch.cuda.is_available():
            return 1
    parallel = usable_cores() // t.threads
    return max(1, parallel if trials is None else min(parallel, trials))


def usable_cores() -> int:
    """The cores this process may run on (``taskset``, container limits), not all the host's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- the trial, as a worker runs it ------------------------------------------------------------

_DATA: dict[str, tuple[SequenceSet, np.ndarray]] = {}
"""The data and fold assignment a worker process has loaded, by data+cv settings."""


def run_trial(trial: Trial, scratch: bool = False) -> TrialReply:
    """Train one fold; ``scratch`` trains in a temporary directory and returns its files."""
    try:
        if not scratch:
            return TrialReply(trial, _train(trial, Path(trial.run_dir)))
        with tempfile.TemporaryDirectory(prefix="cmi-trial-") as tmp:
            result = _train(trial, Path(tmp))
            return TrialReply(trial, result, read_tree(fold_dir(Path(tmp), trial.fold)))
    except CmiError as exc:
        return TrialReply(trial, error=str(exc))
    except Exception as exc:  # a bug in one trial must not stop the others: report it
        return TrialReply(trial, error=f"{type(exc).__name__}: {exc}")


def _train(trial: Trial, run_dir: Path) -> FinishedFold:
    import torch

    from cmi_core.config import config_from_dict
    from cmi_core.train.assemble import quiet_lightning
    from cmi_core.train.fold import train_fold

    cfg = config_from_dict(trial.config, trial.name)
    data, fold_of = _load(cfg)
    quiet_lightning()
    torch.set_num_threads(trial.threads)
    result = train_fold(cfg, data, fold_of, trial.fold, run_dir, progress=False)
    if result is None:  # only DDP worker ranks return None, and trials never launch DDP
        raise RuntimeError(f"{trial.name}: the fold returned no result")
    return result


def _load(cfg: Any) -> tuple[SequenceSet, np.ndarray]:
    import json

    from cmi_core.config import config_to_dict
    from cmi_core.data.folds import assign_folds

    plain = config_to_dict(cfg)
    key = json.dumps([plain["data"], plain["cv"]], sort_keys=True)
    if key not in _DATA:
        data = load_data(cfg)
        _DATA[key] = data, assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    return _DATA[key]


def read_tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by relative POSIX path."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def write_tree(directory: Path, files: dict[str, bytes]) -> None:
    """Replace ``directory`` with exactly ``files`` (a trial's fold directory, sent back)."""
    if directory.is_symlink():
        directory.unlink()  # a link planted in place of the fold directory is not followed
    elif directory.exists():
        shutil.rmtree(directory)
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, content)


# -- local -----------------------------------------------------------------------------------


class LocalExecutor:
    """``jobs`` trials at once on this machine (1: in this process, no start-up cost)."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ExecutorError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.default_threads = max(1, usable_cores() // jobs)

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialReply]:
        if self.jobs == 1 or len(trials) <= 1:
            for trial in trials:
                yield run_trial(trial)
            return
        pool = WorkerPool(min(self.jobs, len(trials)), run_trial)
        finished = False
        try:
            for end in pool.run(trials):
                yield end.result if end.died is None else TrialReply(end.item, error=end.died)
            finished = True
        finally:
            pool.stop(graceful=finished)

    def close(self) -> None:
        """Nothing to release: each :meth:`run` stops its own workers."""


# -- Ray -------------------------------------------------------------------------------------


class RayExecutor:
    """Trials as Ray tasks on a cluster (``address``: ``auto``, ``HOST:PORT``, ``ray://...``,
    or ``local`` for a runtime on this machine bound to 127.0.0.1)."""

    default_threads = 1

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError(f"--ray needs the optional Ray extra: {RAY_EXTRA}") from None
        self.ray = ray
        self.owned = not ray.is_initialized()
        if self.owned:
            connect(ray, address)

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialReply]:
        task = self.ray.remote(run_trial)
        pending = {
            task.options(num_cpus=t.threads, num_gpus=t.gpus).remote(t, True): t for t in trials
        }
        try:
            while pending:
                done, _ = self.ray.wait(list(pending), num_returns=1)
                trial = pending.pop(done[0])
                try:
                    yield self.ray.get(done[0])
                except self.ray.exceptions.RayError as exc:  # the task's worker died
                    yield TrialReply(trial, error=f"Ray task failed: {exc}")
        finally:
            for ref in pending:
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def connect(ray: Any, address: str) -> None:
    """Start or join a Ray runtime; an unreachable address is a one-line error."""
    if address == "local":
        ray.init(
            num_cpus=usable_cores(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level="WARNING",
        )
        return
    if address != "auto":
        check_reachable(address)
    try:
        ray.init(address=address, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExecutorError(f"--ray {address}: cannot connect to a Ray cluster ({first})") from None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (Ray itself retries for a minute) when nothing listens at ``HOST:PORT``."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(f"--ray {address}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorError(f"--ray {address}: cannot reach {host}:{port} ({exc})") from None
