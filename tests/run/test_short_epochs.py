"""Epochs too short for the configured run: a fold whose processes get no training batch is
refused in one line, and a run shorter than the logging interval says that its per-step curves
are missing, at training time (`cmi run`) and at plotting time (`cmi report`) (issue 19)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from cmi_core.analysis.report import write_report
from cmi_core.config import config_to_toml
from cmi_core.errors import RunError
from tests.run.conftest import tiny_config
from tests.run.test_multinode import child_env

WARNING = "fewer than logging.log_every_n_steps = 5"


@pytest.fixture(scope="module")
def short_run(run_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One fold of 1 epoch of 3 steps, logged every 5 steps: ``(run_dir, stderr)``."""
    from cmi_core.runs.run import run_experiment

    run_dir = tmp_path_factory.mktemp("short") / "run"
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        trainer={"max_epochs": 1},
        logging={"loggers": ["csv"], "log_every_n_steps": 5},
    )
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        run_experiment(cfg, run_dir, progress=False)
    return run_dir, err.getvalue()


def test_run_warns_once_when_an_epoch_is_shorter_than_the_logging_interval(short_run):
    """Before the fix the run logged no weights/*, loss/* or grad/* point and said nothing."""
    _, stderr = short_run
    lines = [line for line in stderr.splitlines() if WARNING in line]
    assert len(lines) == 1, stderr
    assert "3 training step(s)" in lines[0]


def test_report_says_which_plots_it_left_out_and_why(short_run):
    """Before the fix `cmi report` left the weight and loss plots out without a word."""
    run_dir, _ = short_run
    notes: list[str] = []
    written = {path.name for path in write_report(run_dir, note=notes.append)}
    left_out = {note.split(":")[0].removeprefix("left out ") for note in notes}
    assert {"weights.png", "losses.png"} <= left_out
    assert not left_out & written
    assert all("logging.log_every_n_steps = 5" in n for n in notes if "weights.png" in n)


def test_a_run_with_enough_steps_neither_warns_nor_leaves_weights_out(finished_run, capsys):
    notes: list[str] = []
    written = {path.name for path in write_report(finished_run, note=notes.append)}
    assert {"weights.png", "losses.png"} <= written
    assert not any("weights.png" in note or "losses.png" in note for note in notes)


def test_more_processes_than_training_batches_is_refused_before_fit(
    run_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """2 processes of ~100 sequences each and a batch of 150 (the loader drops the partial
    batch): before the fix every rank trained nothing and the fold ended in "no validation
    score was recorded". The fit is replaced so that no DDP process is ever launched."""
    from cmi_core.runs.run import run_experiment
    from cmi_core.train import fold

    def fit_reached(*args, **kwargs):
        raise AssertionError("the fold reached trainer.fit")

    monkeypatch.setattr(fold, "_fit", fit_reached)
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        trainer={"strategy": "ddp", "devices": 2, "batch_size": 150, "max_epochs": 1},
    )
    with pytest.raises(RunError, match=r"over 2 process\(es\) give 101 per process") as info:
        run_experiment(cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(info.value) and "trainer.batch_size = 150" in str(info.value)


@pytest.mark.ddp
def test_more_processes_than_training_batches_is_one_line_from_a_real_cmi_run(
    run_cache: Path, tmp_path: Path
):
    """The same refusal end to end: `cmi run` in a process of its own, 2 CPU processes (gloo),
    nothing stubbed; it ends with exit code 2 and one `error:` line."""
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        trainer={"strategy": "ddp", "devices": 2, "batch_size": 150, "max_epochs": 1},
    )
    config = tmp_path / "cfg.toml"
    config.write_text(config_to_toml(cfg))
    argv = [sys.executable, "-m", "cmi_core.cli", "run", str(config), "--out", str(tmp_path / "r")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=child_env())
    assert done.returncode == 2, done.stderr[-3000:]  # a user error (docs/running.md)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "over 2 process(es) give 101 per process" in errors[0]
    assert "Traceback" not in done.stderr
