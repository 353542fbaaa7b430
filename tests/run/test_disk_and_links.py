"""A full disk and planted links (issue 19, faults 7 and 8): a write that cannot finish is a
one-line error that leaves no temporary file; a write into a run directory never follows a
symbolic link planted there."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from cmi_core.analysis.report import write_report
from cmi_core.cli import main
from cmi_core.errors import RunError
from cmi_core.runs.run import run_experiment
from cmi_core.train.callbacks import atomic_torch_save
from tests.run.conftest import finished_run, tiny_config  # noqa: F401  (a fixture)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB file system (tmpfs); skipped where mounting is not allowed."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root, or no permission)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _only(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_torch_save_on_a_full_disk_is_one_line_and_leaves_nothing(tiny_disk: Path) -> None:
    """``torch.save`` reports a full disk as a RuntimeError about stream positions."""
    target = tiny_disk / "best.pt"
    with pytest.raises(RunError) as caught:
        atomic_torch_save({"w": torch.zeros(200_000)}, target)
    assert str(caught.value) == f"{target}: cannot write (No space left on device)"
    assert _only(tiny_disk) == []


def test_parquet_on_a_full_disk_is_one_line_and_leaves_nothing(tiny_disk: Path) -> None:
    """``cmi predict --out x.parquet`` writes through the same writer; polars raises a
    ComputeError there."""
    from cmi_core.common.atomic import atomic_path

    frame = pl.DataFrame({"x": np.random.default_rng(0).normal(size=100_000)})
    target = tiny_disk / "submission.parquet"
    with (
        pytest.raises(RunError, match=r"cannot write \(No space left on device\)$"),
        atomic_path(target) as tmp,
    ):
        frame.write_parquet(tmp)
    assert _only(tiny_disk) == []


def test_synth_on_a_full_disk_is_one_line_and_leaves_nothing(
    tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny_disk / "data"
    assert main(["synth", str(out), "--subjects", "4"]) == 2
    err = capsys.readouterr().err.splitlines()  # a progress bar first, then the error
    assert [line for line in err if "error" in line.lower()] == [
        f"error: {out}: cannot write the data set (No space left on device)"
    ], err
    assert _only(out) == []


def test_a_run_on_a_full_disk_is_one_line_and_leaves_no_temporary(
    run_cache: Path, tiny_disk: Path
) -> None:
    run_dir = tiny_disk / "run"
    with pytest.raises(RunError, match="No space left on device"):
        run_experiment(tiny_config(run_cache, cv={"folds": [0]}), run_dir, progress=False)
    left = [p.name for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    assert left == []


def test_a_writer_bug_elsewhere_keeps_its_traceback(tmp_path: Path) -> None:
    """Only a full disk turns a writer's own error into one line: a bug stays visible."""
    from cmi_core.common.atomic import atomic_path

    with pytest.raises(ValueError, match="a bug"), atomic_path(tmp_path / "x"):
        raise ValueError("a bug")
    assert _only(tmp_path) == []


# -- planted links --------------------------------------------------------------------------


def _copy(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the finished run and an outside file a link may point at."""
    run_dir = tmp_path / "run"
    shutil.copytree(run, run_dir)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    return run_dir, outside


def test_report_never_writes_through_a_planted_link(
    finished_run: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    run_dir, outside = _copy(finished_run, tmp_path)
    (run_dir / "confusion.png").symlink_to(outside)
    assert run_dir / "confusion.png" in write_report(run_dir)
    assert outside.read_text() == "precious\n"
    confusion = run_dir / "confusion.png"
    assert not confusion.is_symlink() and confusion.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["summary.json.tmp", "summary.json", "oof_predictions.csv.tmp"])
def test_resume_never_writes_through_a_planted_link(
    finished_run: Path,  # noqa: F811
    run_cache: Path,
    tmp_path: Path,
    name: str,
) -> None:
    run_dir, outside = _copy(finished_run, tmp_path)
    if name == "summary.json":  # the link must still read as the run's summary
        outside.write_bytes((run_dir / name).read_bytes())
        (run_dir / name).unlink()
    before = outside.read_bytes()
    (run_dir / name).symlink_to(outside)
    run_experiment(tiny_config(run_cache), run_dir, resume=True, progress=False)
    assert outside.read_bytes() == before
    assert (run_dir / "summary.json").is_file()
