"""--resume refuses other training data (by content: the same files moved are the same data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cmi_core.data.source import resolve_data_dir
from cmi_core.errors import RunError
from cmi_core.runs.run import run_experiment
from tests.run.conftest import tiny_config


def _kaggle_copy(run_cache: Path, target: Path) -> Path:
    """The tiny synthetic set as a plain Kaggle directory at ``target``."""
    source = resolve_data_dir(tiny_config(run_cache).data)
    target.mkdir(parents=True)
    for name in ("train.csv", "train_demographics.csv"):
        shutil.copy(source / name, target / name)
    return target


def test_resume_accepts_the_same_data_moved_and_refuses_changed_data(
    run_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = _kaggle_copy(run_cache, tmp_path / "data")

    def config(data_dir: Path):
        data = {"source": "kaggle", "dir": str(data_dir)}
        return tiny_config(run_cache, data=data, cv={"folds": [0]}, trainer={"max_epochs": 1})

    run_dir = tmp_path / "run"
    run_experiment(config(original), run_dir, progress=False)
    stored = json.loads((run_dir / "data_fingerprint.json").read_text())
    assert stored["n_sequences"] > 0 and str(original) not in json.dumps(stored)

    moved = tmp_path / "moved"
    original.rename(moved)
    run_experiment(config(moved), run_dir, resume=True, progress=False)
    assert "fold 0: finished earlier" in capsys.readouterr().err

    changed = _kaggle_copy(run_cache, tmp_path / "changed")
    lines = (changed / "train.csv").read_text().splitlines(keepends=True)
    header, row = lines[0].split(","), lines[1].split(",")
    row[header.index("acc_x")] = "9.5"
    lines[1] = ",".join(row)
    (changed / "train.csv").write_text("".join(lines))
    with pytest.raises(RunError) as caught:
        run_experiment(config(changed), run_dir, resume=True, progress=False)
    assert str(caught.value) == (
        f"{run_dir}: the training data differ from the data the run was trained on (features); "
        "resume with the run's own data (data.dir, data.synthetic) or start a new run"
    )

    fewer = _kaggle_copy(run_cache, tmp_path / "fewer")
    lines = (fewer / "train.csv").read_text().splitlines(keepends=True)
    last_sequence = lines[-1].split(",")[2]
    kept = [line for line in lines if line.split(",")[2] != last_sequence]
    (fewer / "train.csv").write_text("".join(kept))
    with pytest.raises(RunError, match=r"\(\d+ sequences instead of \d+\)"):
        run_experiment(config(fewer), run_dir, resume=True, progress=False)
