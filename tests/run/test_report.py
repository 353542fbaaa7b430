"""``cmi report``: PNG plots and the per-fold table, read back from the run directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cmi_core.errors import RunError
from cmi_core.report import fold_table, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ["weights.png", "weighting.png", "losses.png", "val_score.png", "confusion.png"]


def test_report_writes_every_plot_as_png(finished_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    written = write_report(run_dir)
    assert [p.name for p in written] == PLOTS
    for path in written:
        assert path.parent == run_dir
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert path.stat().st_size > 10_000


def test_report_reads_the_csv_log_when_there_are_no_event_files(
    finished_run: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    for events in run_dir.rglob("events.out.tfevents.*"):
        events.unlink()
    assert [p.name for p in write_report(run_dir)] == PLOTS


def test_fold_table_lists_each_fold_and_the_oof_score(finished_run: Path) -> None:
    summary = json.loads((finished_run / "summary.json").read_text())
    lines = fold_table(finished_run).splitlines()
    assert lines[0].split()[:4] == ["fold", "cmi", "binary", "macro"]
    for k, record in enumerate(summary["folds"]):
        cells = lines[2 + k].split()
        assert cells[:5] == [
            str(k),
            f"{record['cmi_score']:.4f}",
            f"{record['binary_f1']:.4f}",
            f"{record['macro_f1']:.4f}",
            str(record["best_epoch"]),
        ]
        assert f"multiclass {record['weights']['multiclass']:.3f}" in lines[2 + k]
    assert lines[-1].startswith(f" OOF  {summary['cmi_score']:.4f}")


def test_a_directory_without_results_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="not a run directory with results"):
        write_report(tmp_path)
    with pytest.raises(RunError, match="not a run directory with results"):
        fold_table(tmp_path)
