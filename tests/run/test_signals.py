"""SIGTERM (a scheduler's or container's stop) is handled like Ctrl-C by every long command:
a real signal is sent to a real ``cmi`` process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from cmi_core.common.signals import Stopped
from cmi_core.config import config_to_toml
from cmi_core.runs.run import run_experiment
from tests.run.conftest import SendSignal, tiny_config, with_callbacks

ROOT = Path(__file__).parents[2]


def _signal_when(
    args: list[str], ready: Callable[[], bool], signum: int, timeout: float = 240
) -> subprocess.CompletedProcess:
    """Start ``cmi ARGS``, send ``signum`` once ``ready()``, return the finished process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmi_core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the command ended before it could be stopped"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _long_run(run_cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    cfg = tiny_config(run_cache, cv={"folds": [0]}, trainer={"max_epochs": 1000})
    config = tmp_path / "tiny.toml"
    config.write_text(config_to_toml(cfg))
    return config, tmp_path / "run"


def test_sigterm_in_a_fold_stops_it_at_the_next_batch_like_ctrl_c(
    run_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_dir = tmp_path / "run"
    with_callbacks(monkeypatch, lambda k: [SendSignal(signal.SIGTERM)])
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped) as caught:
        run_experiment(tiny_config(run_cache, cv={"folds": [0]}), run_dir, progress=False)
    assert caught.value.exit_code == 143
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert f"Resume: cmi run --resume {run_dir}" in capsys.readouterr().err
    assert torch.load(run_dir / "fold_0" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert not (run_dir / "summary.json").exists()


@pytest.mark.slow
def test_sigterm_stops_a_run_keeping_its_checkpoint_with_exit_143(
    run_cache: Path, tmp_path: Path
) -> None:
    config, run_dir = _long_run(run_cache, tmp_path)
    last = run_dir / "fold_0" / "last.ckpt"
    done = _signal_when(["run", str(config), "--out", str(run_dir)], last.is_file, signal.SIGTERM)
    assert done.returncode == 143, done.stderr[-3000:]
    assert f"Resume: cmi run --resume {run_dir}" in done.stderr
    assert done.stderr.rstrip().endswith("stopped by SIGTERM")
    assert "Traceback" not in done.stderr
    saved = torch.load(last, weights_only=True)
    assert saved["epoch"] < 999
    assert not (run_dir / "summary.json").exists()  # no fold finished


@pytest.mark.slow
def test_ctrl_c_still_exits_130(run_cache: Path, tmp_path: Path) -> None:
    config, run_dir = _long_run(run_cache, tmp_path)
    last = run_dir / "fold_0" / "last.ckpt"
    done = _signal_when(["run", str(config), "--out", str(run_dir)], last.is_file, signal.SIGINT)
    assert done.returncode == 130, done.stderr[-3000:]
    assert f"Resume: cmi run --resume {run_dir}" in done.stderr
    assert last.is_file()


def test_sigterm_stops_synth_with_exit_143(tmp_path: Path) -> None:
    out = tmp_path / "synth"

    def writing() -> bool:  # synth writes each file beside its target, renamed at the end
        return out.is_dir() and any(out.iterdir())

    done = _signal_when(["synth", str(out), "--subjects", "2000"], writing, signal.SIGTERM)
    assert done.returncode == 143, done.stderr[-3000:]
    assert done.stderr.rstrip().endswith("stopped by SIGTERM")
    assert "Traceback" not in done.stderr
    assert not list(out.iterdir()), "an interrupted synth must leave no partial file"
