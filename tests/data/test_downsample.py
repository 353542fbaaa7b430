"""``data.features.downsample``: frames averaged in runs aligned to each sequence's end, on a
hand-computed case and through the reader (labels, per-frame labels, every sequence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cmi_core.config import FeatureConfig
from cmi_core.data import features as feat
from cmi_core.data.reader import load_test, load_train
from cmi_core.data.sequences import SequenceSet


def test_runs_end_at_the_last_frame_and_average_the_valid_frames() -> None:
    # two sequences: 5 frames (runs [0], [1, 2], [3, 4]) and 2 frames (one run [5, 6])
    values = np.arange(7, dtype=np.float32)[:, None] * np.array([[1.0, 10.0]], dtype=np.float32)
    valid = np.array([True, True, False, True, True, False, False])
    pooled, ok, starts, last_rows = feat.downsample(values, valid, np.array([0, 5]), 2)
    np.testing.assert_allclose(pooled[:, 0], [0.0, 1.0, 3.5, 0.0])  # frame 2 invalid: left out
    np.testing.assert_allclose(pooled[:, 1], [0.0, 10.0, 35.0, 0.0])
    assert pooled.dtype == np.float32
    assert ok.tolist() == [True, True, True, False]  # a run without a valid frame is invalid
    assert starts.tolist() == [0, 3] and last_rows.tolist() == [0, 2, 4, 6]


def test_a_factor_longer_than_the_sequence_gives_one_frame() -> None:
    values = np.array([[1.0], [2.0], [6.0]])
    pooled, ok, starts, last_rows = feat.downsample(values, np.ones(3, bool), np.array([0]), 4)
    assert pooled.tolist() == [[3.0]] and ok.tolist() == [True]
    assert starts.tolist() == [0] and last_rows.tolist() == [2]


@pytest.fixture(scope="module")
def halved(synthetic_dir: Path) -> SequenceSet:
    return load_train(synthetic_dir, FeatureConfig(downsample=2))


def test_the_reader_pools_every_sequence(imu_train: SequenceSet, halved: SequenceSet) -> None:
    assert halved.labels.tolist() == imu_train.labels.tolist()
    assert halved.sequence_ids.tolist() == imu_train.sequence_ids.tolist()
    for full, half, ok in zip(imu_train.features, halved.features, imu_train.valid, strict=True):
        assert len(half) == -(-len(full) // 2)
        if ok.all() and len(full) % 2 == 0:  # whole pairs of valid frames: plain means
            np.testing.assert_allclose(half, (full[0::2] + full[1::2]) / 2, rtol=1e-6, atol=1e-6)


def test_per_frame_labels_are_those_of_each_run_s_last_frame(
    imu_train: SequenceSet, halved: SequenceSet
) -> None:
    for column, per_sequence in halved.frame_labels.items():
        for full, half in zip(imu_train.frame_labels[column], per_sequence, strict=True):
            np.testing.assert_array_equal(half, full[::-1][::2][::-1])


def test_test_files_are_pooled_alike(synthetic_dir: Path) -> None:
    full = load_test(synthetic_dir, FeatureConfig())
    half = load_test(synthetic_dir, FeatureConfig(downsample=2))
    assert [len(x) for x in half.features] == [-(-len(x) // 2) for x in full.features]
