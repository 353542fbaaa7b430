"""Jobs resolution, the fold files a remote trial sends back, and Ray address checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmi_core.runs import executor
from cmi_core.runs.executor import (
    ExecutorError,
    LocalExecutor,
    check_reachable,
    read_tree,
    write_tree,
)
from tests.run.conftest import tiny_config


@pytest.mark.parametrize(
    ("trainer", "requested", "cores", "jobs"),
    [
        ({"threads": 1}, None, 2, 2),  # the default on a 2-core CPU machine: 2 folds at once
        ({"threads": 2}, None, 8, 4),
        ({"threads": 0}, None, 8, 1),  # one fold already takes every core
        ({"threads": 1, "devices": 2, "strategy": "ddp"}, None, 8, 1),
        ({"threads": 1, "jobs": 3}, None, 2, 3),  # [trainer] jobs
        ({"threads": 1, "jobs": 3}, 1, 2, 1),  # --jobs wins
    ],
)
def test_resolve_jobs(
    run_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    trainer: dict,
    requested: int | None,
    cores: int,
    jobs: int,
) -> None:
    monkeypatch.setattr(executor, "usable_cores", lambda: cores)
    cfg = tiny_config(run_cache, trainer=trainer)  # accelerator cpu
    assert executor.resolve_jobs(cfg, requested) == jobs


@pytest.mark.parametrize(
    ("trials", "cores", "jobs"),
    [
        (1, 2, 1),  # one fold (--folds 0): trained in this process, no worker start-up
        (5, 2, 2),  # 5 folds on 2 cores: rounds of 2, the last fold alone at its own 1 thread
        (3, 8, 3),  # no idle workers
    ],
)
def test_automatic_jobs_never_exceed_the_trials(
    run_cache: Path, monkeypatch: pytest.MonkeyPatch, trials: int, cores: int, jobs: int
) -> None:
    monkeypatch.setattr(executor, "usable_cores", lambda: cores)
    cfg = tiny_config(run_cache, trainer={"threads": 1})
    assert executor.resolve_jobs(cfg, None, trials=trials) == jobs
    assert executor.resolve_jobs(cfg, 4, trials=trials) == 4  # --jobs is taken as given


def test_negative_jobs_are_refused() -> None:
    with pytest.raises(ExecutorError, match="--jobs must be at least 1, got -1"):
        LocalExecutor(-1)


def test_fold_files_round_trip_and_replace_a_stale_directory(tmp_path: Path) -> None:
    source = tmp_path / "trial" / "fold_0"
    (source / "csv").mkdir(parents=True)
    (source / "best.pt").write_bytes(b"\x00weights")
    (source / "csv" / "metrics.csv").write_text("step,loss\n")
    target = tmp_path / "run" / "fold_0"
    target.mkdir(parents=True)
    (target / "stale.ckpt").write_text("from an interrupted attempt")
    write_tree(target, read_tree(source))
    assert read_tree(target) == {"best.pt": b"\x00weights", "csv/metrics.csv": b"step,loss\n"}


@pytest.mark.parametrize("address", ["localhost", "host:port", "ray://"])
def test_malformed_ray_address(address: str) -> None:
    with pytest.raises(ExecutorError, match="expected auto, local, HOST:PORT or ray://HOST:PORT"):
        check_reachable(address)
