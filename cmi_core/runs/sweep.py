"""``cmi sweep``: a grid of configs times seeds, every (point, seed, fold) one trial.

The sweep directory holds ``sweep.json`` (grid, seeds, points and their status) and one normal
run directory per point and seed, so ``cmi report``, ``cmi predict`` and ``cmi compare`` read
them like any run. Re-running the same command resumes: finished folds are kept, unfinished
ones continue from their last checkpoint, failed ones are tried again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cmi_core.common.console import say
from cmi_core.common.lock import directory_lock
from cmi_core.config import Config
from cmi_core.data.fingerprint import DataFingerprint
from cmi_core.data.source import load_data
from cmi_core.rundir.checks import check_run_dir
from cmi_core.rundir.layout import CONFIG_FILE, has_entries
from cmi_core.runs.executor import Executor, TrialReply
from cmi_core.runs.sweep_plan import SweepError, SweepPlan, read_sweep, write_sweep
from cmi_core.runs.trials import RunInProgress, drive


def run_sweep(plan: SweepPlan, out: Path, executor: Executor) -> dict[str, Any]:
    """Train every trial not finished yet; returns the final ``sweep.json`` content.

    The sweep directory and each of its run directories stay locked while this runs: a second
    identical sweep, or a ``cmi run --resume`` of one of its runs, is refused.
    """
    state = _open(out, plan)
    with contextlib.ExitStack() as locks:
        for directory in [out, *(out / p.name for p in plan.points)]:
            locks.enter_context(directory_lock(directory))
        return _run_locked(plan, out, executor, state)


def _run_locked(
    plan: SweepPlan, out: Path, executor: Executor, state: dict[str, Any]
) -> dict[str, Any]:
    """The sweep, its directories locked."""
    data = _prepare_data(plan.configs.values())
    runs = {
        p.name: RunInProgress.open(
            plan.configs[p.name],
            out / p.name,
            _wanted(plan.configs[p.name]),
            data[_data_key(plan.configs[p.name])],
            resume=(out / p.name / CONFIG_FILE).is_file(),
        )
        for p in plan.points
    }
    _check_resumable(runs)

    def record(outcome: TrialReply) -> None:
        _update(state, runs, outcome)
        write_sweep(out, state)

    try:
        failures = drive(list(runs.values()), executor, on_outcome=record)
    except KeyboardInterrupt:
        say("interrupted; finished trials are kept. Resume: run the same cmi sweep command")
        raise
    for entry in state["points"]:
        _set_status(entry, runs[entry["name"]])
    write_sweep(out, state)
    if failures:
        say(f"{len(failures)} trial(s) failed; run the same command to try them again")
    return state


def _open(out: Path, plan: SweepPlan) -> dict[str, Any]:
    """A new ``sweep.json``, or the existing one when the same sweep is run again."""
    state = {
        "config": str(plan.config),
        "overrides": list(plan.overrides),
        "grid": {axis.key: list(axis.values) for axis in plan.axes},
        "seeds": list(plan.seeds),
        "points": [
            {
                "name": p.name,
                "label": p.label,
                "seed": p.seed,
                "values": p.values,
                "status": "pending",
                "folds_done": [],
                "errors": {},
            }
            for p in plan.points
        ],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    old = read_sweep(out)
    if old is not None:
        same = ("overrides", "grid", "seeds")
        if any(old.get(key) != state[key] for key in same):
            raise SweepError(
                f"{out} holds a different sweep (its grid, seeds or overrides differ); "
                "choose another --out"
            )
        return old
    if out.exists() and has_entries(out):
        raise SweepError(f"{out} is not empty and holds no sweep; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_sweep(out, state)
    return state


def _prepare_data(configs: Iterable[Config]) -> dict[str, DataFingerprint]:
    """Load each distinct data set once here (so workers never generate one at the same time)
    and fingerprint it for its run directories."""

    fingerprints: dict[str, DataFingerprint] = {}
    for cfg in configs:
        key = _data_key(cfg)
        if key not in fingerprints:
            fingerprints[key] = DataFingerprint.of(load_data(cfg))
    return fingerprints


def _data_key(cfg: Config) -> str:
    return repr(cfg.data)


def _wanted(cfg: Config) -> list[int]:
    return sorted(set(cfg.cv.folds or range(cfg.cv.n_folds)))


def _check_resumable(runs: dict[str, RunInProgress]) -> None:
    for run in runs.values():
        check_run_dir(run.cfg, run.out_dir, resume=True, overwrite=False)


def _update(state: dict[str, Any], runs: dict[str, RunInProgress], outcome: TrialReply) -> None:
    name = Path(outcome.trial.run_dir).name
    entry = next(e for e in state["points"] if e["name"] == name)
    fold = str(outcome.trial.fold)
    if outcome.error is None:
        entry["errors"].pop(fold, None)
    else:
        entry["errors"][fold] = outcome.error
    _set_status(entry, runs[name])


def _set_status(entry: dict[str, Any], run: RunInProgress) -> None:
    entry["folds_done"] = sorted(run.records)
    if not run.pending():
        entry["status"] = "done"
    elif entry["errors"]:
        entry["status"] = "failed"
    else:
        entry["status"] = "partial" if run.records else "pending"
