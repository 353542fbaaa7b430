"""The driver's side of many trials: which folds of which run directories still need training,
landing each finished trial in its run directory, and one progress line per trial.

Used by ``cmi run --jobs N`` (one run directory) and ``cmi sweep`` (one per point and seed).
Only this process writes ``summary.json`` and ``oof_predictions.csv``; trials that ran away from
the run directory (Ray) have their fold directory's files written here too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import attrs
import polars as pl

from cmi_core.common.console import say
from cmi_core.common.signals import stop_signals
from cmi_core.config import Config, config_to_dict
from cmi_core.data.fingerprint import DataFingerprint
from cmi_core.errors import RunError
from cmi_core.rundir.checks import check_same_data
from cmi_core.rundir.layout import LAST_FILE, create_run_dir, fold_dir, write_results
from cmi_core.rundir.reader import RunDir
from cmi_core.rundir.records import FoldRecord
from cmi_core.runs.executor import Executor, Trial, TrialReply, write_tree


@attrs.define
class RunInProgress:
    """A run directory being filled: its finished folds and those still wanted."""

    cfg: Config
    out_dir: Path
    wanted: list[int]
    records: dict[int, FoldRecord]
    oof: pl.DataFrame | None

    @classmethod
    def open(
        cls,
        cfg: Config,
        out_dir: Path,
        wanted: Sequence[int],
        data: DataFingerprint,
        *,
        resume: bool,
    ) -> Any:
        """Keep the folds an earlier attempt finished on the same data (``resume``), or start
        the directory."""
        if not resume:
            create_run_dir(cfg, out_dir)
        check_same_data(out_dir, data, resume=resume)
        records, oof = RunDir(out_dir).finished() if resume else ({}, None)
        return cls(cfg, Path(out_dir), sorted(wanted), records, oof)

    def pending(self) -> list[int]:
        return [k for k in self.wanted if k not in self.records]

    def trials(self, threads: int, gpus: int) -> list[Trial]:
        plain = config_to_dict(self.cfg)
        return [Trial(str(self.out_dir), k, plain, threads, gpus) for k in self.pending()]

    def land(self, outcome: TrialReply) -> None:
        """Write a finished trial: its fold files (if sent back), then the run's results."""
        result, k = outcome.result, outcome.trial.fold
        assert result is not None
        if outcome.files is not None:
            write_tree(fold_dir(self.out_dir, k), outcome.files)
        self.records[k] = result.record
        self.oof = result.oof if self.oof is None else pl.concat([self.oof, result.oof])
        self.summary()

    def summary(self) -> dict[str, Any]:
        """Write and return ``summary.json`` (nothing to write before the first fold)."""
        if self.oof is None:
            return {}
        return write_results(self.cfg, self.out_dir, self.records, self.oof, self.wanted)


def trial_resources(cfg: Config, default_threads: int) -> tuple[int, int]:
    """(threads, GPUs) of one trial: ``trainer.threads`` (else the executor's default) and one
    GPU per device when the config asks for a GPU by name (``auto`` asks for none)."""
    devices = cfg.trainer.devices
    wants_gpu = cfg.trainer.accelerator in ("gpu", "cuda")
    gpus = (devices if isinstance(devices, int) else 1) if wants_gpu else 0
    return cfg.trainer.threads or default_threads, gpus


def drive(
    runs: Sequence[RunInProgress],
    executor: Executor,
    *,
    on_outcome: Callable[[TrialReply], None] = lambda outcome: None,
) -> list[TrialReply]:
    """Run every pending trial of ``runs`` on ``executor``; return the failed ones.

    SIGTERM is handled like Ctrl-C (``Stopped`` keeps which one it was, for the exit code):
    the executor stops its workers, finished trials are kept.
    """
    trials = paired_order(runs, executor.default_threads)
    by_dir = {str(run.out_dir): run for run in runs}
    resumed = {t.name for t in trials if (fold_dir(Path(t.run_dir), t.fold) / LAST_FILE).is_file()}
    progress = Progress(len(trials) + sum(len(run.records) for run in runs), len(trials), resumed)
    failures = []
    # closing: a stop raised here, between two outcomes, still stops the workers at once
    with stop_signals(), contextlib.closing(executor.run(trials)) as outcomes:
        for outcome in outcomes:
            if outcome.error is None:
                by_dir[outcome.trial.run_dir].land(outcome)
            else:
                failures.append(outcome)
            progress.report(outcome)
            on_outcome(outcome)
    return failures


def paired_order(runs: Sequence[RunInProgress], default_threads: int) -> list[Trial]:
    """Pending trials by seed, then fold, then run: every config trains fold 0 of seed 0
    before any trains fold 1, so a sweep stopped early still holds paired comparisons."""
    keyed = [
        (run.cfg.trainer.seed, trial.fold, i, trial)
        for i, run in enumerate(runs)
        for trial in run.trials(*trial_resources(run.cfg, default_threads))
    ]
    return [trial for *_, trial in sorted(keyed, key=lambda item: item[:3])]


def run_parallel(
    cfg: Config,
    out_dir: Path,
    wanted: Sequence[int],
    executor: Executor,
    data: DataFingerprint,
    *,
    resume: bool,
) -> dict[str, Any]:
    """``cmi run --jobs N``: the folds of one run directory as trials on ``executor``."""
    run = RunInProgress.open(cfg, out_dir, wanted, data, resume=resume)
    for k in sorted(run.records):
        say(f"fold {k}: finished earlier (cmi_score {run.records[k].cmi_score:.4f}), kept")
    hint = f"finished folds are kept. Resume: cmi run --resume {out_dir}"
    try:
        failures = drive([run], executor)
    except KeyboardInterrupt:
        say(f"interrupted; {hint}")
        raise
    if failures:
        raise RunError(f"{failures[0].trial.name} failed: {failures[0].error}; {hint}")
    return run.summary()


class Progress:
    """``[done/total] <trial>: <score> | ETA`` lines: one display for all workers.

    The ETA is the time per trial so far times the trials left, counting only trials that
    started from scratch: one resumed from its ``last.ckpt`` near its end says nothing about a
    trial's length (it made the first ETA of a resumed sweep 10x too short).
    """

    def __init__(self, total: int, to_run: int, resumed: Collection[str] = ()) -> None:
        self.total, self.done, self.failed = total, total - to_run, 0
        self.to_run, self.ran, self.fresh = to_run, 0, 0
        self.resumed = frozenset(resumed)
        self.start = time.monotonic()

    def report(self, outcome: TrialReply) -> None:
        self.ran += 1
        self.fresh += outcome.trial.name not in self.resumed
        if outcome.error is None and outcome.result is not None:
            self.done += 1
            what = f"cmi_score {outcome.result.record.cmi_score:.4f}"
        else:
            self.failed += 1
            what = f"FAILED: {outcome.error}"
        failed = f", {self.failed} failed" if self.failed else ""
        say(f"[{self.done}/{self.total} trials{failed}] {outcome.trial.name}: {what}{self.eta()}")

    def eta(self) -> str:
        left = self.to_run - self.ran
        if not left or not self.fresh:
            return ""
        seconds = (time.monotonic() - self.start) / self.fresh * left
        return f" | ETA {format_duration(seconds)}"


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
