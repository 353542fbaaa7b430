"""Folds as trials in worker processes and on Ray: the same run directory and the same scores
as the sequential run; SIGTERM stops every worker and the run resumes. Slow: each worker pays
the import of torch and Lightning, Ray its runtime start-up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psutil
import pytest
import torch

from cmi_core.runs.executor import LocalExecutor, RayExecutor
from cmi_core.runs.run import run_experiment
from tests.run.conftest import finished_run, tiny_config  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow


def _same_results(run_dir: Path, reference: Path) -> None:
    ours = json.loads((run_dir / "summary.json").read_text())
    theirs = json.loads((reference / "summary.json").read_text())
    assert [f["cmi_score"] for f in ours["folds"]] == [f["cmi_score"] for f in theirs["folds"]]
    assert ours["cmi_score"] == theirs["cmi_score"]
    assert pl.read_csv(run_dir / "oof_predictions.csv").equals(
        pl.read_csv(reference / "oof_predictions.csv")
    )
    for k in (0, 1):
        torch.load(run_dir / f"fold_{k}" / "best.pt", weights_only=True)
        assert (run_dir / f"fold_{k}" / "last.ckpt").is_file()
        assert list((run_dir / f"fold_{k}").glob("events.out.tfevents.*"))


def test_two_local_jobs_give_the_sequential_run(
    run_cache: Path,
    finished_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    run_experiment(tiny_config(run_cache), tmp_path / "run", executor=LocalExecutor(2))
    _same_results(tmp_path / "run", finished_run)


def test_ray_trials_send_their_fold_files_back(
    run_cache: Path,
    finished_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        executor = RayExecutor("auto")  # joins the runtime this test started
        run_experiment(tiny_config(run_cache), tmp_path / "run", executor=executor)
    finally:
        ray.shutdown()
    _same_results(tmp_path / "run", finished_run)


def test_sigterm_stops_every_worker_and_the_run_resumes(tiny_toml: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "cmi_core.cli", "run", str(tiny_toml), "--out", str(run_dir)]
    argv += ["-o", "trainer.max_epochs=6", "--jobs", "2"]
    driver = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(run_dir.glob("fold_*/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.5)
    workers = psutil.Process(driver.pid).children(recursive=True)
    assert len([w for w in workers if "spawn_main" in " ".join(w.cmdline())]) == 2
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 143, err  # 128 + SIGTERM, as for a sequential run
    assert "stopped by SIGTERM" in err
    assert f"Resume: cmi run --resume {run_dir}" in err
    assert "Traceback" not in err
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "worker processes outlived the driver"

    resumed = subprocess.run(
        [sys.executable, "-m", "cmi_core.cli", "run", "--resume", str(run_dir), "--jobs", "2"],
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["complete"]
