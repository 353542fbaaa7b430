"""Per-frame labels (``phase``, ``behavior``): read from the files, cached, and aligned with the
frames through padding, time stretch, span masking and mirroring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cmi_core.config import AugmentConfig, FeatureConfig
from cmi_core.data import schema
from cmi_core.data.cache import read_cache, write_cache
from cmi_core.data.dataset import (
    FRAME_LABEL_KEYS,
    SequenceDataset,
    augment_sequence,
    pad_frame_labels,
    pad_or_truncate,
    time_stretch,
)
from cmi_core.data.features import IMU_FEATURES
from cmi_core.data.reader import load_test
from cmi_core.data.sequences import SequenceSet

ONLY = dict(noise_p=0.0, stretch_p=0.0, mask_p=0.0, mirror_p=0.0, drop_thm_tof_p=0.0)


def test_labels_match_the_csv_rows(imu_train: SequenceSet, train_frame: pl.DataFrame) -> None:
    frame = train_frame.sort("sequence_id", "sequence_counter")
    for column, classes in schema.FRAME_LABELS.items():
        expected = np.array([classes.index(v) for v in frame[column].to_list()])
        np.testing.assert_array_equal(np.concatenate(imu_train.frame_labels[column]), expected)
        lengths = [len(v) for v in imu_train.frame_labels[column]]
        assert lengths == [len(f) for f in imu_train.features]
    assert set(np.concatenate(imu_train.frame_labels["behavior"])) == {0, 1, 2, 3}


def test_test_files_carry_none(synthetic_dir: Path) -> None:
    assert load_test(synthetic_dir, FeatureConfig()).frame_labels == {}


def test_cache_keeps_frame_labels(imu_train: SequenceSet, tmp_path: Path) -> None:
    write_cache(tmp_path / "c.npz", imu_train)
    cached = read_cache(tmp_path / "c.npz")
    assert set(cached.frame_labels) == set(schema.FRAME_LABELS)
    for column in schema.FRAME_LABELS:
        pairs = zip(imu_train.frame_labels[column], cached.frame_labels[column], strict=True)
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)


def test_padding_keeps_the_end_and_marks_padding_unknown() -> None:
    labels = np.arange(6)[:, None]
    valid = np.array([True, True, False, True, True, True])
    _, mask = pad_or_truncate(np.zeros((6, 1), np.float32), valid, 8)
    assert pad_frame_labels(labels, mask)[:, 0].tolist() == [-1, -1, 0, 1, -1, 3, 4, 5]
    _, mask = pad_or_truncate(np.zeros((6, 1), np.float32), valid, 4)
    assert pad_frame_labels(labels, mask)[:, 0].tolist() == [-1, 3, 4, 5]


def test_stretch_takes_the_label_of_the_frame_the_mask_comes_from() -> None:
    """A frame's label index is the frame its ``valid`` came from: encode the frame number in
    the features and check the label of every stretched frame sits next to it."""
    x = np.arange(10, dtype=np.float32)[:, None]
    labels = np.arange(10)[:, None] * 10
    cfg = AugmentConfig(**{**ONLY, "stretch_p": 1.0, "stretch_range": (1.7, 1.7)})
    out, _, _, out_labels = augment_sequence(
        x, np.ones(10, bool), np.zeros(7, np.float32), cfg, ("a",), np.random.default_rng(0), labels
    )
    assert len(out_labels) == len(out) == 17
    expected, _ = time_stretch(x, np.ones(10, bool), 1.7)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out_labels[:, 0], np.rint(out[:, 0]).astype(int) * 10)


def test_masked_span_and_mirroring() -> None:
    """A masked span becomes unknown after padding; mirroring leaves the labels as they are."""
    x = np.ones((12, len(IMU_FEATURES)), np.float32)
    labels = np.arange(12)[:, None]
    cfg = AugmentConfig(**{**ONLY, "mask_p": 1.0, "mask_max_len": 4, "mirror_p": 1.0})
    _, valid, _, out_labels = augment_sequence(
        x,
        np.ones(12, bool),
        np.zeros(7, np.float32),
        cfg,
        IMU_FEATURES,
        np.random.default_rng(3),
        labels,
    )
    np.testing.assert_array_equal(out_labels, labels)
    assert not valid.all()
    _, mask = pad_or_truncate(x, valid, 12)
    padded = pad_frame_labels(out_labels, mask)[:, 0]
    np.testing.assert_array_equal(padded, np.where(valid, np.arange(12), -1))


def test_augmentation_draws_the_same_with_and_without_labels() -> None:
    x = np.random.default_rng(1).normal(size=(30, len(IMU_FEATURES))).astype(np.float32)
    cfg = AugmentConfig(stretch_p=1.0, mask_p=1.0, noise_p=1.0, mirror_p=1.0)
    demo = np.zeros(7, np.float32)
    plain = augment_sequence(
        x, np.ones(30, bool), demo, cfg, IMU_FEATURES, np.random.default_rng(5)
    )
    labelled = augment_sequence(
        x,
        np.ones(30, bool),
        demo,
        cfg,
        IMU_FEATURES,
        np.random.default_rng(5),
        np.zeros((30, 2), np.int64),
    )
    for a, b in zip(plain[:3], labelled[:3], strict=True):
        np.testing.assert_array_equal(a, b)


def test_dataset_items_carry_padded_frame_labels(imu_train: SequenceSet) -> None:
    item = SequenceDataset(imu_train, np.array([0]), max_len=400)[0]
    for column, key in FRAME_LABEL_KEYS.items():
        raw = imu_train.frame_labels[column][0]
        assert item[key].shape == (400,)
        assert item[key][-len(raw) :].tolist() == np.where(imu_train.valid[0], raw, -1).tolist()
        assert (item[key][: 400 - len(raw)] == -1).all()
    unlabelled = imu_train.subset([0])
    object.__setattr__(unlabelled, "frame_labels", {})
    item = SequenceDataset(unlabelled, np.array([0]), max_len=50)[0]
    assert all((item[key] == -1).all() for key in FRAME_LABEL_KEYS.values())
