"""Damaged or wrong-kind inputs to ``cmi compare``, ``cmi ensemble`` and ``cmi report``: one
line ``error: ...`` (exit code 2) before any output, and runs compared by their data
fingerprint, each counted once (issue 19). Hand-made run directories: no training."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cmi_core.analysis.compare import compare
from cmi_core.analysis.ensemble import ensemble_report
from cmi_core.cli import main
from cmi_core.data.schema import GESTURES
from cmi_core.runs.sweep_plan import write_sweep
from tests.sweep.test_compare import FINGERPRINT, ONE_WRONG, RIGHT, ROWS, write_run

OOF = "oof_predictions.csv"


def _probs(seed: int) -> np.ndarray:
    """Gesture probabilities of one run (each run its own, so no two runs look like copies)."""
    return np.random.default_rng(seed).dirichlet(np.ones(len(GESTURES)), size=len(ROWS))


def _run(path: Path, seed: int = 0, **kwargs: object) -> Path:
    return write_run(path, RIGHT, seed=seed, strategy="none", probs=_probs(seed), **kwargs)


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The command's one error line; it printed nothing else."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("error: "), (out, err)
    return lines[0]


# -- damaged files ---------------------------------------------------------------------------


def _truncate(path: Path, keep: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if keep is None else keep])


def _edit_oof(run: Path, edit: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    edit(pl.read_csv(run / OOF, infer_schema_length=0)).write_csv(run / OOF)


def _cut_at_a_line(run: Path) -> None:
    lines = (run / OOF).read_text().splitlines(keepends=True)
    (run / OOF).write_text("".join(lines[:6]))  # header + 5 of 8 rows: whole lines, parseable


DAMAGE: dict[str, tuple[Callable[[Path], object], str]] = {
    "truncated summary": (
        lambda run: _truncate(run / "summary.json"),
        "summary.json: not readable as JSON (",
    ),
    "summary not an object": (
        lambda run: (run / "summary.json").write_text("[1, 2]"),
        "summary.json: not a run summary (no fold records)",
    ),
    "summary fold record cut": (
        lambda run: (run / "summary.json").write_text('{"folds": [{"fold": 0}, {"fold": 1}]}'),
        "summary.json: fold 0: not a fold record (",
    ),
    "no OOF file": (lambda run: (run / OOF).unlink(), f"no {OOF} (not a run directory"),
    "OOF column missing": (
        lambda run: _edit_oof(run, lambda f: f.drop("subject")),
        f"{OOF}: missing column(s) subject",
    ),
    "OOF probability not a number": (
        lambda run: _edit_oof(run, lambda f: f.with_columns(pl.lit("abc").alias(GESTURES[3]))),
        f"{OOF}: not a readable OOF file (",
    ),
    "OOF cut at a line": (
        _cut_at_a_line,
        f"{OOF}: 5 rows of finished folds, but summary.json counts 8 sequences",
    ),
    "OOF cut inside a line": (
        lambda run: _truncate(run / OOF, len((run / OOF).read_bytes()) - 40),
        f"{OOF}: line 9 has no ",
    ),
    "OOF unknown gesture": (
        lambda run: _edit_oof(run, lambda f: f.with_columns(gesture=pl.lit("Above ear - pul"))),
        f"{OOF}: gesture 'Above ear - pul' is not a gesture",
    ),
    "corrupt config": (
        lambda run: (run / "config.toml").write_text("name = [\n"),
        "config.toml: TOML syntax error: ",
    ),
    "data fingerprint not an object": (
        lambda run: (run / "data_fingerprint.json").write_text('"abc"'),
        "data_fingerprint.json: not a JSON object (a str)",
    ),
}
READS_CONFIG = ("corrupt config", "data fingerprint not an object")
"""Damage that ``cmi report`` never sees: it reads no config and no fingerprint."""


@pytest.mark.parametrize("command", ["compare", "ensemble", "report"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_run_is_one_line_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, damage: str
) -> None:
    good, bad = _run(tmp_path / "good", 0), _run(tmp_path / "bad", 1)
    harm, message = DAMAGE[damage]
    harm(bad)
    if command == "report" and damage in READS_CONFIG:
        pytest.skip("cmi report reads neither config.toml nor data_fingerprint.json")
    argv = [command, str(bad)] if command == "report" else [command, str(good), str(bad)]
    line = _refused(argv, capsys)
    assert str(bad) in line and message in line
    assert not list(bad.glob("*.png")), "a report is drawn whole or not at all"


def test_a_damaged_sweep_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    _run(sweep / "a-seed0")
    write_sweep(sweep, {"points": [{"name": "a-seed0", "label": "a", "seed": 0}]})
    _truncate(sweep / "sweep.json")
    assert "sweep.json: not readable as JSON (" in _refused(["compare", str(sweep)], capsys)
    (sweep / "sweep.json").write_text('{"points": [{"name": 3}]}')
    line = _refused(["compare", str(sweep)], capsys)
    assert line.endswith("sweep.json: not a sweep (no list of points with a name, label and seed)")


# -- outputs ---------------------------------------------------------------------------------


def test_compare_outputs_are_checked_before_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _run(tmp_path / "a", 0), _run(tmp_path / "b", 1)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cases = {
        ("--csv", tmp_path / "nowhere" / "x.csv"): f"{tmp_path / 'nowhere'} does not exist",
        ("--json", blocker / "x.json"): f"cannot be created: {blocker} is a file, not a directory",
        ("--csv", tmp_path): "is a directory, expected a file",
        ("--plot", tmp_path / "cmp.xyz"): "unknown image type .xyz; use one of ",
    }
    for (option, path), message in cases.items():
        line = _refused(["compare", str(a), str(b), option, str(path)], capsys)
        assert line.startswith(f"error: {option} {path}: ") and message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a_file", "b"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_compare_refuses_a_read_only_output_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _run(tmp_path / "a")
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    line = _refused(["compare", str(a), "--csv", str(read_only / "x.csv")], capsys)
    assert line.endswith("cannot write there (Permission denied)")


def test_a_report_file_that_cannot_be_written_stops_the_report_before_any_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path / "run")
    (run / "confusion.png").mkdir()
    line = _refused(["report", str(run)], capsys)
    assert line == f"error: {run / 'confusion.png'}: is a directory, expected a file"
    assert [p.name for p in run.glob("*.png")] == ["confusion.png"]


def test_overflowing_weights_are_scaled_not_zeroed(tmp_path: Path) -> None:
    a, b = _run(tmp_path / "a", 0), _run(tmp_path / "b", 1)
    report = ensemble_report([a, b], [1e308, 1e308])
    assert report.weights == [0.5, 0.5]
    assert report.ensemble == ensemble_report([a, b]).ensemble


@pytest.mark.parametrize("weights", ["inf,1", "nan,1", "1e400,1"])
def test_non_finite_weights_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], weights: str
) -> None:
    a, b = _run(tmp_path / "a", 0), _run(tmp_path / "b", 1)
    line = _refused(["ensemble", str(a), str(b), "--weights", weights], capsys)
    assert "weights must be positive numbers" in line


# -- the same data, by fingerprint -----------------------------------------------------------


def _kaggle(directory: str) -> dict[str, object]:
    return {"source": "kaggle", "dir": directory}


def test_the_same_data_in_another_directory_compares_and_ensembles(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", 0, data_table=_kaggle("/data/here"))
    b = write_run(
        tmp_path / "b", ONE_WRONG, seed=0, strategy="direct", probs=_probs(1),
        data_table=_kaggle("/data/copied/elsewhere"),
    )  # fmt: skip
    assert [c.name for c in compare([a, b]).configs] == ["a", "b"]
    assert ensemble_report([a, b]).n_sequences == len(ROWS)


@pytest.mark.parametrize("command", ["compare", "ensemble"])
def test_other_data_under_the_same_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    a = _run(tmp_path / "a", 0)
    b = _run(tmp_path / "b", 1, data={**FINGERPRINT, "labels": "relabelled"})
    line = _refused([command, str(a), str(b)], capsys)
    assert "(the data (data_fingerprint.json: labels) differ)" in line


def test_other_features_of_the_same_sequences_compare(tmp_path: Path) -> None:
    """The feature digest differs with ``data.features``; the sequences are still the same."""
    thm_tof = {"source": "synthetic", "features": {"thm_tof": True}}
    a = _run(tmp_path / "a", 0)
    b = _run(tmp_path / "b", 1, data={**FINGERPRINT, "features": "x"}, data_table=thm_tof)
    assert len(compare([a, b]).configs) == 2
    c = _run(tmp_path / "c", 2, data={**FINGERPRINT, "features": "other values"})
    with pytest.raises(Exception, match=r"data_fingerprint.json: features\)"):
        compare([a, c])


def test_runs_without_a_fingerprint_compare_by_their_data_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _run(tmp_path / "a", 0, data=None, data_table=_kaggle("/data/one"))
    b = _run(tmp_path / "b", 1, data=None, data_table=_kaggle("/data/two"))
    assert "(data.dir differ)" in _refused(["compare", str(a), str(b)], capsys)


# -- each run counts once --------------------------------------------------------------------


def test_a_run_given_twice_counts_once(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", 0)
    (config,) = compare([a, a, tmp_path / "." / "a"]).configs
    assert config.runs == [str(a)] and config.seeds == [0] and len(config.oof_scores) == 1


def test_two_copies_of_a_sweep_are_refused_and_one_sweep_twice_counts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    points = []
    for seed in (0, 1):
        _run(sweep / f"none-seed{seed}", seed)
        points.append({"name": f"none-seed{seed}", "label": "none", "seed": seed})
    write_sweep(sweep, {"points": points})
    (config,) = compare([sweep, sweep]).configs
    assert config.seeds == [0, 1]
    shutil.copytree(sweep, tmp_path / "copy")
    line = _refused(["compare", str(sweep), str(tmp_path / "copy")], capsys)
    assert "are the same config at the same seed (trainer.seed = 0)" in line


@pytest.mark.parametrize("copy", [False, True])
def test_ensemble_refuses_one_run_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], copy: bool
) -> None:
    a = _run(tmp_path / "a", 0)
    again = Path(shutil.copytree(a, tmp_path / "copy")) if copy else a
    line = _refused(["ensemble", str(a), str(again)], capsys)
    expected = "a copy of one run" if copy else "given twice"
    assert expected in line and "weight it with --weights" in line
    assert json.loads((a / "summary.json").read_text())["complete"]  # nothing was touched
