"""bench/hapt_to_kaggle.py on made-up recordings: the Kaggle files it writes read back through
the trainer's own reader, and the orientation it integrates gives back the gyroscope."""

from __future__ import annotations

import importlib
import io
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from cmi_core.config import FeatureConfig
from cmi_core.data.features import gravity_in_sensor, relative_rotvec
from cmi_core.data.reader import load_test, load_train
from cmi_core.data.schema import GESTURES

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
hapt = importlib.import_module("hapt_to_kaggle")


def recording(subject: int, rng: np.random.Generator) -> hapt.Recording:
    """Walking (1), a stand-to-sit transition (7), sitting (4), unlabelled gaps (-1)."""
    label = np.concatenate(
        [np.full(20, -1), np.full(600, 1), np.full(150, 7), np.full(500, 4), np.full(30, -1)]
    )
    acc = rng.normal([0.0, 0.0, 1.0], 0.05, size=(len(label), 3))
    return hapt.Recording(subject, acc, rng.normal(0, 0.3, size=(len(label), 3)), label)


def test_tilt_puts_the_world_up_axis_along_the_accelerometer() -> None:
    rng = np.random.default_rng(0)
    for acc in (*rng.normal(size=(5, 3)), np.array([0.0, 0.0, -1.0])):
        up = gravity_in_sensor(hapt.tilt_quaternion(acc))
        np.testing.assert_allclose(up, acc / np.linalg.norm(acc), atol=1e-9)


def test_integrated_orientation_gives_back_the_gyroscope() -> None:
    rng = np.random.default_rng(1)
    gyro = rng.normal(0, 2.0, size=(50, 3))
    quats = hapt.integrate_gyro(rng.normal(size=(50, 3)), gyro)
    assert (quats[:, 0] >= 0).all()
    np.testing.assert_allclose(relative_rotvec(quats) * hapt.HZ, gyro[:-1], atol=1e-9)


def test_cuts_follow_the_labelled_runs() -> None:
    label = recording(1, np.random.default_rng(0)).label
    cuts = hapt.cuts(label, np.random.default_rng(0))
    transition = [c for c in cuts if c.label == 7]
    assert len(transition) == 1 and (transition[0].gesture_from, transition[0].stop) == (620, 770)
    assert 620 - hapt.MAX_LEAD_IN <= transition[0].start <= 620
    for cut in cuts:
        assert (label[cut.gesture_from : cut.stop] == cut.label).all()
    activity = [c for c in cuts if c.label != 7]
    assert len(activity) == 2 * hapt.WINDOWS_PER_ACTIVITY
    lengths = [c.stop - c.start for c in activity]
    assert min(lengths) >= hapt.WINDOW_FRAMES[0] and max(lengths) <= hapt.WINDOW_FRAMES[1]


def test_written_files_read_back_through_the_trainer(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame = hapt.convert([recording(s, rng) for s in (1, 2, 3)], seed=0)
    hapt.write(frame, tmp_path, holdout=1)
    train = load_train(tmp_path, FeatureConfig())
    test = load_test(tmp_path, FeatureConfig())
    assert set(train.subjects) == {"SUBJ_000001", "SUBJ_000002"}
    assert set(test.subjects) == {"SUBJ_000003"}
    assert len(train) == 2 * (1 + 2 * hapt.WINDOWS_PER_ACTIVITY)
    names = {hapt.LABEL_TO_GESTURE[k] for k in (1, 4, 7)}
    assert {GESTURES[i] for i in train.labels} == names
    solution = (tmp_path / "test_solution.csv").read_text().splitlines()
    assert solution[0] == "sequence_id,gesture" and len(solution) == 1 + len(test)


def test_the_pickle_reader_refuses_any_other_global() -> None:
    payload = pickle.dumps(os.getcwd, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        hapt._FrameUnpickler(io.BytesIO(payload)).load()
