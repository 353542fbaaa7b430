"""``cmi report``: PNG plots and the per-fold table, read back from the run directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.image import imread

from cmi_core.analysis.report import (
    fold_table,
    read_scalars,
    score_figure,
    tag_family_figure,
    write_report,
)
from cmi_core.errors import RunError
from cmi_core.rundir.layout import fold_dirs

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
        pixels = imread(path)
        height, width = pixels.shape[:2]
        assert height > 300 and width > 500, f"{path.name}: {width}x{height}"
        colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
        assert len(colours) > 20, f"{path.name} is nearly blank: {len(colours)} colours"


def test_the_weight_plot_shows_the_logged_values(finished_run: Path) -> None:
    """Each fold's panel has one line per ``weights/*`` column of the csv log, with its values."""
    scalars = {fold: read_scalars(path) for fold, path in fold_dirs(finished_run).items()}
    figure = tag_family_figure(scalars, "weights/", "title", "weight")
    assert len(figure.axes) == len(scalars) == 2
    for ax, fold_dir in zip(figure.axes, fold_dirs(finished_run).values(), strict=True):
        logged = pl.read_csv(fold_dir / "csv" / "metrics.csv")
        columns = [c for c in logged.columns if c.startswith("weights/")]
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == sorted(c.removeprefix("weights/") for c in columns)
        for column in columns:
            rows = logged.select("step", column).drop_nulls()
            line = lines[column.removeprefix("weights/")]
            np.testing.assert_array_equal(line.get_xdata(), rows["step"].to_numpy())
            np.testing.assert_allclose(line.get_ydata(), rows[column].to_numpy(), rtol=1e-6)


def test_the_score_plot_stars_each_folds_best_epoch(finished_run: Path) -> None:
    summary = json.loads((finished_run / "summary.json").read_text())
    scalars = {fold: read_scalars(path) for fold, path in fold_dirs(finished_run).items()}
    (ax,) = score_figure(scalars).axes
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]  # in fold order
    assert len(stars) == len(summary["folds"]) == 2
    for star, record in zip(stars, summary["folds"], strict=True):
        assert star.get_xdata()[0] == record["best_epoch"]
        assert star.get_ydata()[0] == pytest.approx(record["cmi_score"], abs=1e-6)


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
