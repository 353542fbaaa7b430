"""A run with the ToF image branch predicts through the Kaggle path: its fold model
reproduces the run's OOF predictions (bench/bench_imu_only.py's check), and an IMU-only
sequence (every thermopile/ToF value empty) is predicted from the branch's "missing" input."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import torch

from cmi_core.predict.predictor import Predictor
from tests.inference.gateway import gateway_calls
from tests.inference.test_ensemble import _without_thm_tof

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
bench = importlib.import_module("bench_imu_only")


def test_the_fold_model_reproduces_the_oof_and_imu_only_input_differs(
    tiny_tof_images_run: tuple[Path, Path],
) -> None:
    run_dir, _ = tiny_tof_images_run
    ckpt = torch.load(run_dir / "fold_0" / "best.pt", weights_only=True)
    assert any(k.startswith("image_branch.cnn") for k in ckpt["state_dict"])
    scores = bench.evaluate(run_dir, seed=0)  # stops unless the OOF file is reproduced
    assert set(scores) == {"all sensors", "IMU-only", "half/half"}


def test_the_predictor_serves_both_halves_of_the_test_set(
    tiny_tof_images_run: tuple[Path, Path],
) -> None:
    run_dir, data_dir = tiny_tof_images_run
    _, frame, demographics = next(gateway_calls(data_dir, "test", seed=3))
    predictor = Predictor.from_run(run_dir)
    full = predictor.predict_proba(frame, demographics)
    imu_only = predictor.predict_proba(_without_thm_tof(frame), demographics)
    assert np.isfinite(imu_only).all() and np.allclose(imu_only.sum(), 1.0, atol=1e-5)
    assert np.abs(full - imu_only).max() > 1e-6
