"""The reader: one code path for files and frames, the cache, and every bad-input case."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cmi_core.config import DataConfig, FeatureConfig, SyntheticConfig
from cmi_core.data import reader, schema
from cmi_core.data.features import IMU_FEATURES
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.source import resolve_data_dir
from cmi_core.errors import DataError

IMU = FeatureConfig()
FULL = FeatureConfig(thm_tof=True)


def data_error(call, *args) -> str:
    with pytest.raises(DataError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def rewrite(directory: Path, change) -> None:
    """Apply ``change`` to the frame of train.csv (all columns as text) and write it back."""
    path = directory / "train.csv"
    frame = pl.read_csv(path, infer_schema=False)
    change(frame).write_csv(path)


# -- reading valid data -----------------------------------------------------------------------


def test_load_train_aligns_everything(imu_train: SequenceSet, train_frame: pl.DataFrame) -> None:
    data = imu_train
    n = train_frame["sequence_id"].n_unique()
    assert len(data) == n
    assert list(data.sequence_ids) == sorted(data.sequence_ids)
    assert data.feature_names == IMU_FEATURES
    assert data.demographics.shape == (n, 7) and data.demographics.dtype == np.float32
    assert data.labels.dtype == np.int64 and data.labels.min() >= 0
    assert len(data.features) == len(data.valid) == n
    first = train_frame.filter(pl.col("sequence_id") == data.sequence_ids[0])
    assert data.features[0].shape == (first.height, 16)
    assert data.features[0].dtype == np.float32
    assert data.subjects[0] == first["subject"][0]
    assert schema.GESTURES[data.labels[0]] == first["gesture"][0]
    assert data.orientations[0] == first["orientation"][0]
    values = np.concatenate(data.features)
    assert np.isfinite(values).all()
    assert np.abs(values).max() < 40  # fixed scaling keeps channels O(1)


def test_load_test_is_unlabelled_with_half_imu_only(synthetic_dir: Path) -> None:
    data = reader.load_test(synthetic_dir, FULL)
    assert (data.labels == -1).all()
    assert data.orientations is None
    assert data.feature_names[-1] == "thm_tof_present"
    present = np.array([x[0, -1] for x in data.features])
    assert set(present.tolist()) == {0.0, 1.0}
    assert 0.4 <= present.mean() <= 0.6
    assert np.isfinite(np.concatenate(data.features)).all()


def test_frames_give_the_same_result_as_files(
    synthetic_dir: Path, train_frame: pl.DataFrame, demographics: pl.DataFrame
) -> None:
    from_files = reader.load_train(synthetic_dir, FULL)
    shuffled = train_frame.sample(fraction=1.0, shuffle=True, seed=1)
    from_frames = reader.sequences_from_frames(shuffled, demographics, FULL)
    assert list(from_frames.sequence_ids) == list(from_files.sequence_ids)
    for a, b in zip(from_frames.features[:50], from_files.features[:50], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(from_frames.demographics, from_files.demographics)
    np.testing.assert_array_equal(from_frames.labels, from_files.labels)


def test_one_kaggle_sequence_imu_only_and_one_row(
    test_frame: pl.DataFrame, synthetic_dir: Path
) -> None:
    demo = pl.read_csv(synthetic_dir / "test_demographics.csv")
    seq = test_frame.filter(pl.col("sequence_id") == test_frame["sequence_id"][0])
    imu_only = seq.with_columns(
        pl.lit(None).alias(c) for c in schema.THM_COLUMNS + schema.TOF_COLUMNS
    )
    imu_only = imu_only.with_columns(pl.lit(None, dtype=pl.Float64).alias("rot_x"))  # NaN quats
    subject_demo = demo.filter(pl.col("subject") == seq["subject"][0])
    data = reader.sequences_from_frames(imu_only, subject_demo, FULL)
    assert len(data) == 1
    x = data.features[0]
    assert x.shape == (seq.height, 32) and np.isfinite(x).all()
    np.testing.assert_array_equal(x[:, 16:], 0.0)  # absent thm/ToF, flag 0
    single = reader.sequences_from_frames(seq.head(1), subject_demo, IMU)
    assert single.features[0].shape == (1, 16) and single.valid[0].all()


def test_left_handed_subjects_are_mirrored(
    train_frame: pl.DataFrame, demographics: pl.DataFrame
) -> None:
    seq = train_frame.filter(pl.col("sequence_id") == train_frame["sequence_id"][0])
    subject = seq["subject"][0]
    righty = demographics.filter(pl.col("subject") == subject).with_columns(handedness=1)
    lefty = righty.with_columns(subject=pl.lit("SUBJ_LEFT"), handedness=0)
    twin = seq.with_columns(
        subject=pl.lit("SUBJ_LEFT"),
        acc_x=-pl.col("acc_x"),
        rot_y=-pl.col("rot_y"),
        rot_z=-pl.col("rot_z"),
        thm_3=pl.col("thm_5"),
        thm_5=pl.col("thm_3"),
    )
    right = reader.sequences_from_frames(seq, righty, FULL)
    left = reader.sequences_from_frames(twin, lefty, FULL)
    np.testing.assert_allclose(left.features[0][:, :21], right.features[0][:, :21], atol=1e-5)
    assert left.demographics[0, 3] == 0.0 and right.demographics[0, 3] == 1.0


def test_all_nan_imu_sequence_becomes_zeros_and_mask(mini_dir: Path) -> None:
    first = pl.read_csv(mini_dir / "train.csv")["sequence_id"][0]
    rewrite(
        mini_dir,
        lambda f: f.with_columns(
            pl.when(pl.col("sequence_id") == first).then(None).otherwise(pl.col(c)).alias(c)
            for c in schema.IMU_COLUMNS
        ),
    )
    data = reader.load_train(mini_dir, IMU)
    k = list(data.sequence_ids).index(first)
    assert not data.valid[k].any()
    np.testing.assert_array_equal(data.features[k], 0.0)
    assert all(v.all() for i, v in enumerate(data.valid) if i != k)


# -- cache ------------------------------------------------------------------------------------


def test_cache_round_trip_and_invalidation(mini_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    parsed = reader.load_train(mini_dir, FULL, cache_dir=cache)
    assert len(list(cache.glob("train-*.npz"))) == 1
    cached = reader.load_train(mini_dir, FULL, cache_dir=cache)
    assert cached.feature_names == parsed.feature_names
    for name in ("sequence_ids", "subjects", "demographics", "labels", "orientations"):
        np.testing.assert_array_equal(getattr(cached, name), getattr(parsed, name))
    for a, b in zip(cached.features, parsed.features, strict=True):
        np.testing.assert_array_equal(a, b)
    reader.load_train(mini_dir, IMU, cache_dir=cache)  # another feature set: another entry
    assert len(list(cache.glob("train-*.npz"))) == 2
    rewrite(mini_dir, lambda f: f.with_columns(acc_x=pl.lit("0.5")))
    changed = reader.load_train(mini_dir, FULL, cache_dir=cache)
    assert len(list(cache.glob("train-*.npz"))) == 3
    assert (changed.features[0][:, 0] == np.float32(0.5 / 9.81)).all()


def test_resolve_synthetic_generates_once(tmp_path: Path) -> None:
    cfg = DataConfig(cache_dir=str(tmp_path), synthetic=SyntheticConfig(subjects=2, seed=3))
    path = resolve_data_dir(cfg)
    assert path == tmp_path / "synthetic-2-3"
    assert {p.name for p in path.iterdir()} >= {"train.csv", "test_demographics.csv"}
    stamp = os.stat(path / "train.csv").st_mtime_ns
    assert resolve_data_dir(cfg) == path
    assert os.stat(path / "train.csv").st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic-2-3"]  # no temporary left


def test_resolve_kaggle(mini_dir: Path, tmp_path: Path) -> None:
    assert resolve_data_dir(DataConfig(source="kaggle", dir=str(mini_dir))) == mini_dir
    assert "data.dir" in data_error(resolve_data_dir, DataConfig(source="kaggle"))
    empty = tmp_path / "empty"
    empty.mkdir()
    message = data_error(resolve_data_dir, DataConfig(source="kaggle", dir=str(empty)))
    assert "train.csv" in message


def test_subset(imu_train: SequenceSet) -> None:
    data = imu_train
    part = data.subset([3, 1])
    assert list(part.sequence_ids) == [data.sequence_ids[3], data.sequence_ids[1]]
    assert part.features[1] is data.features[1]
    assert len(data.subset(data.labels == data.labels[0])) == (data.labels == data.labels[0]).sum()


# -- bad input: one line naming the file, column or sequence ----------------------------------


def test_missing_file(mini_dir: Path) -> None:
    (mini_dir / "train_demographics.csv").unlink()
    message = data_error(reader.load_train, mini_dir, IMU)
    assert "train_demographics.csv" in message and "not found" in message


def test_misspelled_column(mini_dir: Path) -> None:
    rewrite(mini_dir, lambda f: f.rename({"acc_y": "acc_Y"}))
    message = data_error(reader.load_train, mini_dir, IMU)
    assert "train.csv" in message and "'acc_y'" in message and "'acc_Y'" in message


def test_missing_column(mini_dir: Path) -> None:
    rewrite(mini_dir, lambda f: f.drop("tof_3_v7"))
    assert "'tof_3_v7'" in data_error(reader.load_train, mini_dir, IMU)


def test_unknown_gesture(mini_dir: Path) -> None:
    first = pl.read_csv(mini_dir / "train.csv")["sequence_id"][0]
    rewrite(
        mini_dir,
        lambda f: f.with_columns(
            gesture=pl.when(pl.col("sequence_id") == first)
            .then(pl.lit("Neck - Scratch"))
            .otherwise(pl.col("gesture"))
        ),
    )
    message = data_error(reader.load_train, mini_dir, IMU)
    assert first in message and "'Neck - Scratch'" in message and "'Neck - scratch'" in message


def test_gesture_changing_inside_a_sequence(mini_dir: Path) -> None:
    rewrite(
        mini_dir, lambda f: f.with_columns(gesture=pl.lit("Wave hello")).head(3).vstack(f.slice(3))
    )
    message = data_error(reader.load_train, mini_dir, IMU)
    assert "'gesture'" in message and "SEQ_" in message


def test_zero_rows(mini_dir: Path, demographics: pl.DataFrame) -> None:
    rewrite(mini_dir, lambda f: f.head(0))
    assert "no rows" in data_error(reader.load_train, mini_dir, IMU)
    empty = pl.read_csv(mini_dir / "train.csv")
    assert "no rows" in data_error(reader.sequences_from_frames, empty, demographics, IMU, "seq")


def test_subject_without_demographics(mini_dir: Path, demographics: pl.DataFrame) -> None:
    subject = pl.read_csv(mini_dir / "train.csv")["subject"][0]
    demographics.filter(pl.col("subject") != subject).write_csv(mini_dir / "train_demographics.csv")
    message = data_error(reader.load_train, mini_dir, IMU)
    assert "train_demographics.csv" in message and subject in message and "SEQ_" in message


def test_non_numeric_sensor_value(mini_dir: Path) -> None:
    rewrite(mini_dir, lambda f: f.with_columns(rot_z=pl.lit("n/a")))
    message = data_error(reader.load_train, mini_dir, IMU)
    assert "train.csv" in message and "'rot_z'" in message and "n/a" in message


def test_non_numeric_value_in_a_frame(
    train_frame: pl.DataFrame, demographics: pl.DataFrame
) -> None:
    frame = train_frame.head(5).with_columns(acc_z=pl.lit("abc"))
    message = data_error(reader.sequences_from_frames, frame, demographics, IMU, "predict()")
    assert "predict()" in message and "'acc_z'" in message


def test_non_numeric_demographics(mini_dir: Path, demographics: pl.DataFrame) -> None:
    demographics.with_columns(age=pl.lit("old")).write_csv(mini_dir / "train_demographics.csv")
    message = data_error(reader.load_train, mini_dir, IMU)
    assert "train_demographics.csv" in message and "'age'" in message


def test_missing_demographic_values_use_defaults(
    mini_dir: Path, demographics: pl.DataFrame
) -> None:
    demographics.with_columns(age=pl.lit(None)).write_csv(mini_dir / "train_demographics.csv")
    data = reader.load_train(mini_dir, IMU)
    assert np.allclose(data.demographics[:, 1], (22 - 8) / 52)


def test_left_handed_kaggle_sequences_with_thm_tof(
    test_frame: pl.DataFrame, synthetic_dir: Path
) -> None:
    """Polars sometimes hands out read-only arrays; the in-place mirror must not trip on them
    (it did for some sequences before the sensor array was made writable)."""
    demo = pl.read_csv(synthetic_dir / "test_demographics.csv").with_columns(handedness=0)
    for (_,), seq in test_frame.group_by("sequence_id", maintain_order=True):
        data = reader.sequences_from_frames(seq, demo, FULL)
        assert np.isfinite(data.features[0]).all()


def test_unreadable_cache_entry_is_parsed_again(mini_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    parsed = reader.load_train(mini_dir, IMU, cache_dir=cache)
    (entry,) = cache.glob("train-*.npz")
    entry.write_bytes(b"not a zip file")
    again = reader.load_train(mini_dir, IMU, cache_dir=cache)
    np.testing.assert_array_equal(again.labels, parsed.labels)
    assert entry.stat().st_size > 100  # rewritten
