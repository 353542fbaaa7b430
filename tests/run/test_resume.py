"""Ctrl-C, resume and the guard against mixing runs in one directory."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import polars as pl
import pytest
import torch

from cmi_core.cli import main
from cmi_core.errors import RunError
from cmi_core.runs.run import run_experiment
from tests.run.conftest import SendSignal, tiny_config, with_callbacks


def test_ctrl_c_keeps_finished_folds_and_resume_trains_only_the_rest(
    run_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg, run_dir, ctrl_c = tiny_config(run_cache), tmp_path / "run", SendSignal()
    with_callbacks(monkeypatch, lambda k: [ctrl_c] if k == 1 else [])
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, run_dir, progress=False)
    assert signal.getsignal(signal.SIGINT) is handler  # restored after the fold
    err = capsys.readouterr().err
    assert f"cmi run --resume {run_dir}" in err
    interrupted = json.loads((run_dir / "summary.json").read_text())
    assert interrupted["complete"] is False
    assert [f["fold"] for f in interrupted["folds"]] == [0]
    assert torch.load(run_dir / "fold_1" / "last.ckpt", weights_only=True)["epoch"] == 0
    fold_0_best = (run_dir / "fold_0" / "best.pt").stat().st_mtime_ns

    summary = run_experiment(cfg, run_dir, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "fold 0: finished earlier" in err
    assert f"fold 1: resuming from {run_dir / 'fold_1' / 'last.ckpt'}" in err
    assert (run_dir / "fold_0" / "best.pt").stat().st_mtime_ns == fold_0_best
    assert summary["complete"] is True
    assert summary["folds"][0] == interrupted["folds"][0]
    assert summary["folds"][1]["epochs_trained"] == 2
    assert summary["n_sequences"] == sum(f["n_val"] for f in summary["folds"])
    metrics = pl.read_csv(run_dir / "fold_1" / "csv" / "metrics.csv")
    assert set(metrics["epoch"].drop_nulls()) == {0, 1}, "the csv log lost the first attempt"


def test_resuming_a_finished_run_trains_nothing(
    finished_run: Path, run_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    before = json.loads((run_dir / "summary.json").read_text())
    summary = run_experiment(tiny_config(run_cache), run_dir, resume=True, progress=False)
    assert summary["folds"] == before["folds"]
    assert summary["cmi_score"] == before["cmi_score"]
    assert capsys.readouterr().err.count("finished earlier") == 2


def test_a_directory_holding_a_run_is_refused(finished_run: Path, run_cache: Path) -> None:
    with pytest.raises(RunError, match="already holds a run; continue it with --resume"):
        run_experiment(tiny_config(run_cache), finished_run, progress=False)


def test_a_non_empty_directory_without_a_run_is_refused_even_with_overwrite(
    run_cache: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(RunError, match="is not empty and holds no run"):
        run_experiment(tiny_config(run_cache), tmp_path, overwrite=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_resume_needs_a_run_and_the_same_config(
    finished_run: Path, run_cache: Path, tmp_path: Path
) -> None:
    with pytest.raises(RunError, match="nothing to resume"):
        run_experiment(tiny_config(run_cache), tmp_path, resume=True)
    changed = tiny_config(run_cache, optimizer={"lr": 0.01})
    with pytest.raises(RunError, match=r"differs from the run being resumed at optimizer\.lr;"):
        run_experiment(changed, finished_run, resume=True)


def test_a_run_from_before_a_new_key_resumes_at_the_keys_default(
    finished_run: Path, run_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "old"
    shutil.copytree(finished_run, run_dir)
    config = run_dir / "config.toml"
    lines = config.read_text().splitlines(keepends=True)
    config.write_text("".join(line for line in lines if not line.startswith("downsample =")))
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert capsys.readouterr().err.count("finished earlier") == 2
    changed = tiny_config(run_cache, data={"features": {"downsample": 2}})
    with pytest.raises(RunError, match=r"at data\.features\.downsample;"):
        run_experiment(changed, run_dir, resume=True)
    config.write_text(config.read_text().replace("[trainer]\n", "[trainer]\nretired = 1\n"))
    with pytest.raises(RunError, match=r"resumed at .*trainer\.retired;"):  # a key since removed
        run_experiment(tiny_config(run_cache), run_dir, resume=True)


def test_overwrite_replaces_the_old_run(
    finished_run: Path, run_cache: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    cfg = tiny_config(run_cache, trainer={"max_epochs": 1}, cv={"folds": [0]})
    summary = run_experiment(cfg, run_dir, overwrite=True, progress=False)
    assert [f["fold"] for f in summary["folds"]] == [0]
    assert not (run_dir / "fold_1").exists()
    assert "max_epochs = 1" in (run_dir / "config.toml").read_text()


def test_cli_resume_takes_the_run_directory(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    assert main(["run", "--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "fold 0: finished earlier" in captured.err
    assert f"run directory: {run_dir}" in captured.out
