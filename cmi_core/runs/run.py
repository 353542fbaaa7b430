"""A cross-validated training run: data -> folds -> one fold trial each -> OOF score.

This is the driver: it checks and creates the run directory (:mod:`cmi_core.rundir.layout`), trains
every wanted fold not finished yet (:func:`cmi_core.train.fold.train_fold`) and alone writes
``summary.json`` and ``oof_predictions.csv`` after each one, so an interrupted run keeps its
finished folds.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from cmi_core.common.console import say
from cmi_core.common.lock import directory_lock
from cmi_core.config import Config
from cmi_core.data.fingerprint import DataFingerprint
from cmi_core.data.folds import assign_folds
from cmi_core.data.source import load_data
from cmi_core.errors import RunError
from cmi_core.rundir.checks import check_run_dir, check_same_data
from cmi_core.rundir.layout import create_run_dir, write_results
from cmi_core.rundir.reader import RunDir
from cmi_core.rundir.records import FoldRecord
from cmi_core.runs.executor import Executor
from cmi_core.runs.launch import launched_externally, rank_zero_first
from cmi_core.runs.trials import run_parallel
from cmi_core.train.assemble import quiet_lightning
from cmi_core.train.fold import train_fold

RUN_DIR_ENV = "CMI_RUN_DIR"
"""Set by the run for the DDP worker processes Lightning launches: they re-run the same command
and must land in the same (possibly timestamped) directory."""


def default_run_dir(cfg: Config) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` (a DDP worker process gets its launcher's directory)."""
    if rank_zero_only.rank > 0 and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    if launched_externally():  # each process would pick its own timestamp
        raise RunError("under torchrun or srun every process needs the same directory: pass --out")
    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def resume_hint(out_dir: Path) -> str:
    return f"cmi run --resume {out_dir}"


def run_experiment(
    cfg: Config,
    out_dir: Path,
    *,
    folds: Sequence[int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Train the requested folds (default ``cfg.cv.folds``, else all) into ``out_dir``.

    Returns the summary (also written to ``summary.json``). With ``resume``, folds finished
    in ``out_dir`` are kept and an unfinished fold continues from its ``last.ckpt``. With an
    ``executor`` (``cmi run --jobs N``), the folds are trials run on it, here only landed.
    """
    out_dir = Path(out_dir)
    launcher = rank_zero_only.rank == 0  # DDP workers re-run this command: they write nothing
    with rank_zero_first(
        cfg.trainer.accelerator
    ):  # torchrun/srun start all ranks at once: they wait for the check
        if launcher:
            check_run_dir(cfg, out_dir, resume=resume, overwrite=overwrite)
    wanted = _wanted_folds(cfg, folds)
    # DDP workers re-run this command inside the launcher's lock: only the launcher takes it
    with directory_lock(out_dir) if launcher else contextlib.nullcontext():
        return _locked(cfg, out_dir, wanted, resume, progress, executor, launcher)


def _locked(
    cfg: Config,
    out_dir: Path,
    wanted: list[int],
    resume: bool,
    progress: bool,
    executor: Executor | None,
    launcher: bool,
) -> dict[str, Any]:
    """The run, with ``out_dir`` locked against a second writer."""
    quiet_lightning()
    if executor is not None:  # data loaded (generated, cached) once, before the workers read it
        data = DataFingerprint.of(load_data(cfg))
        return run_parallel(cfg, out_dir, wanted, executor, data, resume=resume)
    with _torch_threads(cfg.trainer.threads):
        return _run(cfg, out_dir, wanted, resume=resume, progress=progress, launcher=launcher)


def _run(
    cfg: Config,
    out_dir: Path,
    wanted: Sequence[int],
    *,
    resume: bool,
    progress: bool,
    launcher: bool,
) -> dict[str, Any]:
    """Load the data, assign the folds, train every wanted fold not finished yet."""
    data = load_data(cfg)
    fold_of = assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    with rank_zero_first(cfg.trainer.accelerator):
        if launcher:
            if not resume:
                create_run_dir(cfg, out_dir)
            check_same_data(out_dir, DataFingerprint.of(data), resume=resume)
    os.environ[RUN_DIR_ENV] = str(out_dir.resolve())
    records, oof = RunDir(out_dir).finished() if resume else ({}, None)
    for k in wanted:
        if k in records:
            say(f"fold {k}: finished earlier (cmi_score {records[k].cmi_score:.4f}), kept")
            continue
        try:
            result = train_fold(cfg, data, fold_of, k, out_dir, progress=progress)
        except KeyboardInterrupt:
            say(f"interrupted in fold {k}; finished folds are kept. Resume: {resume_hint(out_dir)}")
            raise
        if launcher and result is not None:
            records[k] = result.record
            oof = result.oof if oof is None else pl.concat([oof, result.oof])
            write_results(cfg, out_dir, records, oof, wanted)
    return _final_summary(cfg, out_dir, records, oof, wanted, launcher)


def _final_summary(
    cfg: Config,
    out_dir: Path,
    records: dict[int, FoldRecord],
    oof: pl.DataFrame | None,
    wanted: Sequence[int],
    launcher: bool,
) -> dict[str, Any]:
    """The summary the launcher wrote last; DDP workers wait for it and read it."""
    if launcher:
        summary = write_results(cfg, out_dir, records, oof, wanted)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    if not launcher:
        summary = RunDir(out_dir).summary()
    return summary


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """``trainer.threads`` for the run only (0 keeps torch's choice); restored afterwards."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _wanted_folds(cfg: Config, folds: Sequence[int] | None) -> list[int]:
    wanted = list(folds) if folds is not None else cfg.cv.folds or range(cfg.cv.n_folds)
    bad = [k for k in wanted if not 0 <= k < cfg.cv.n_folds]
    if bad:
        raise RunError(f"folds {bad} do not exist: cv.n_folds = {cfg.cv.n_folds}")
    return sorted(set(wanted))
