"""Damaged or unwritable run files give one-line errors, never a traceback, and lose nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cmi_core.cli import main
from cmi_core.config import config_to_toml
from cmi_core.errors import RunError
from cmi_core.runs.run import run_experiment
from tests.run.conftest import tiny_config


def _copy(finished_run: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    return run_dir


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[-1].startswith("error: ")
    return lines[-1]


def _run_cli(run_cache: Path, tmp_path: Path, out: Path) -> int:
    config = tmp_path / "tiny.toml"
    config.write_text(config_to_toml(tiny_config(run_cache, cv={"folds": [0]})))
    return main(["run", str(config), "--out", str(out)])


def test_an_unwritable_out_is_a_one_line_error(
    run_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert _run_cli(run_cache, tmp_path, blocker / "run") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: --out {blocker / 'run'}: cannot be created: {blocker} is a file, not a directory"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_out_is_a_one_line_error(
    run_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    assert _run_cli(run_cache, tmp_path, read_only / "run") == 2
    assert "cannot write the run directory (Permission denied)" in capsys.readouterr().err


def test_a_truncated_last_ckpt_at_resume_is_a_one_line_error(
    finished_run: Path, run_cache: Path, tmp_path: Path
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["folds"] = summary["folds"][:1]  # fold 1 unfinished, as after an interruption
    summary["n_sequences"] = summary["folds"][0]["n_val"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    last = run_dir / "fold_1" / "last.ckpt"
    _truncate(last)
    with pytest.raises(RunError) as caught:
        run_experiment(tiny_config(run_cache), run_dir, resume=True, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{last}: cannot be read (")
    assert message.endswith("the checkpoint is damaged. Delete it to train fold 1 from its start")
    assert last.is_file(), "the damaged checkpoint is the user's to delete"


def test_a_truncated_summary_is_a_one_line_error_at_resume_and_in_report(
    finished_run: Path, run_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    _truncate(run_dir / "summary.json")
    expected = f"{run_dir / 'summary.json'}: not readable as JSON \\(.*\\); the file is damaged$"
    with pytest.raises(RunError, match=expected):
        run_experiment(tiny_config(run_cache), run_dir, resume=True, progress=False)
    assert main(["report", str(run_dir)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {run_dir / 'summary.json'}: not readable as JSON (")


def test_overwrite_deletes_only_what_the_run_owns(
    finished_run: Path, run_cache: Path, tmp_path: Path
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    (run_dir / "notes.txt").write_text("keep me")
    (run_dir / "analysis").mkdir()
    (run_dir / "analysis" / "plot.py").write_text("keep me too")
    (run_dir / "fold_1" / "mine.txt").write_text("inside a fold: the run's")
    cfg = tiny_config(run_cache, trainer={"max_epochs": 1}, cv={"folds": [0]})
    run_experiment(cfg, run_dir, overwrite=True, progress=False)
    assert (run_dir / "notes.txt").read_text() == "keep me"
    assert (run_dir / "analysis" / "plot.py").read_text() == "keep me too"
    assert not (run_dir / "fold_1").exists()
    assert [f["fold"] for f in json.loads((run_dir / "summary.json").read_text())["folds"]] == [0]
