"""bench/bench_imu_only.py: a thm/ToF run scored with every thermopile/ToF value emptied."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cmi_core.config import FeatureConfig
from cmi_core.data.features import IMU_FEATURES
from cmi_core.data.reader import load_train
from cmi_core.data.schema import GESTURE_INDEX, GESTURES

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
bench = importlib.import_module("bench_imu_only")


def test_the_copy_reads_as_imu_only_with_the_same_imu(
    tiny_thm_tof_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, data_dir = tiny_thm_tof_run
    features = FeatureConfig(thm_tof=True)
    full = load_train(data_dir, features)
    imu = load_train(bench.imu_only_copy(data_dir, tmp_path), features)
    present = full.feature_names.index("thm_tof_present")
    assert any(x[:, present].any() for x in full.features)
    assert not any(x[:, present].any() for x in imu.features)
    n_imu = len(IMU_FEATURES)
    assert all(
        np.array_equal(a[:, :n_imu], b[:, :n_imu])
        for a, b in zip(full.features, imu.features, strict=True)
    )
    assert not any(b[:, n_imu:].any() for b in imu.features)  # absent thm/ToF read as zeros


def test_an_imu_only_run_scores_the_same_without_thm_tof(tiny_run: tuple[Path, Path]) -> None:
    run_dir, _ = tiny_run
    scores = bench.evaluate(run_dir, seed=0)
    assert scores["all sensors"] == scores["IMU-only"] == scores["half/half"]


def test_a_thm_tof_run_reproduces_its_oof_and_reads_different_inputs(
    tiny_thm_tof_run: tuple[Path, Path], monkeypatch
) -> None:
    """``evaluate`` stops if the all-sensor predictions do not reproduce the run's OOF file;
    the IMU-only pass must feed the models inputs without thermopile/ToF."""
    run_dir, _ = tiny_thm_tof_run
    seen: list[bool] = []
    predict = bench.fold_predictions

    def spy(run_dir: Path, data, folds: np.ndarray) -> np.ndarray:
        present = data.feature_names.index("thm_tof_present")
        seen.append(any(x[:, present].any() for x in data.features))
        return predict(run_dir, data, folds)

    monkeypatch.setattr(bench, "fold_predictions", spy)
    scores = bench.evaluate(run_dir, seed=0)
    assert seen == [True, False]
    assert set(scores) == {"all sensors", "IMU-only", "half/half"}


def test_a_run_whose_oof_file_does_not_match_its_models_is_refused(
    tiny_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    oof = pl.read_csv(run_dir / "oof_predictions.csv")
    wrong = [GESTURES[(GESTURE_INDEX[g] + 1) % len(GESTURES)] for g in oof["prediction"]]
    oof.with_columns(prediction=pl.Series(wrong)).write_csv(run_dir / "oof_predictions.csv")
    with pytest.raises(SystemExit, match=r"only 0\.0% of its OOF predictions reproduced"):
        bench.evaluate(run_dir, seed=0)


def test_routed_gives_the_imu_only_half_to_the_imu_run(
    tiny_run: tuple[Path, Path], tiny_thm_tof_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """``routed`` takes the hidden half from the IMU run's OOF file (made constant here, so it
    cannot match the thm/ToF run's own IMU-only predictions), and only from a run of the same
    folds."""
    imu_run = tmp_path / "imu"
    shutil.copytree(tiny_run[0], imu_run)
    oof = pl.read_csv(imu_run / "oof_predictions.csv")
    oof.with_columns(prediction=pl.lit(GESTURES[0])).write_csv(imu_run / "oof_predictions.csv")
    scores = bench.evaluate(tiny_thm_tof_run[0], seed=0, imu_run=imu_run)
    assert set(scores) == {"all sensors", "IMU-only", "half/half", "routed"}
    assert scores["routed"] != scores["half/half"]
    shifted = oof.with_columns(fold=1 - pl.col("fold"))
    shifted.write_csv(imu_run / "oof_predictions.csv")
    with pytest.raises(SystemExit, match="its sequences or folds differ"):
        bench.evaluate(tiny_thm_tof_run[0], seed=0, imu_run=imu_run)
