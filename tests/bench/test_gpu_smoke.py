"""bench/gpu_smoke.sh and .py, the parts a machine without a GPU can check: the wrapper stops with
a message, and the CPU rehearsal runs every stage (training in bf16-mixed, a gradient-level
strategy, ``cmi predict``) and reports them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]


def has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return smi is not None and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


@pytest.mark.skipif(has_gpu(), reason="the wrapper would set up CUDA torch and train")
def test_the_wrapper_stops_without_a_gpu() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_smoke.sh")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("gpu_smoke: no NVIDIA GPU here (nvidia-smi -L fails)")
    assert done.stdout == ""


@pytest.mark.skipif(has_gpu(), reason="a GPU machine runs the real thing")
def test_the_script_stops_without_cuda() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_smoke.py")], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "sees no CUDA device" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow  # ~45 s on 2 cores
def test_the_cpu_rehearsal_runs_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_smoke.py"), "--cpu", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # the data cache (.cache/cmi) lands here, not in the repository
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "cpu rehearsal"
    assert [results[s]["steps"] for s in ("train", "gradient")] == [4, 2]
    assert all(results[s]["steps_per_s"] > 0 for s in ("train", "gradient"))
    for stage, strategy in (("exp025_full", "uncertainty"), ("upgrad", "upgrad")):
        config = (out / stage / "config.toml").read_text()
        assert 'precision = "bf16-mixed"' in config and f'strategy = "{strategy}"' in config
    submission = pl.read_csv(out / "submission.csv")
    assert submission.height == results["predict"]["sequences"] > 0
    assert "steps/s after the first epoch" in done.stdout
