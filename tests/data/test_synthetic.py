"""The synthetic data set: exact schema, Kaggle-like structure and statistics, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cmi_core.data import schema
from cmi_core.data.synthetic import generate
from cmi_core.errors import DataError


def header(path: Path) -> tuple[str, ...]:
    with open(path) as fh:
        return tuple(fh.readline().rstrip("\n").split(","))


def per_sequence(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("sequence_id").agg(
        pl.len().alias("length"),
        pl.col("subject").first(),
        pl.col("orientation").first(),
        pl.col("gesture").first(),
        pl.col("sequence_type").first(),
    )


def test_exact_schema(synthetic_dir: Path) -> None:
    assert header(synthetic_dir / "train.csv") == schema.TRAIN_COLUMNS
    assert header(synthetic_dir / "test.csv") == schema.TEST_COLUMNS
    assert header(synthetic_dir / "train_demographics.csv") == schema.DEMOGRAPHICS_COLUMNS
    assert header(synthetic_dir / "test_demographics.csv") == schema.DEMOGRAPHICS_COLUMNS


def test_values_follow_the_kaggle_conventions(train_frame: pl.DataFrame) -> None:
    assert set(train_frame["gesture"].unique()) == set(schema.GESTURES)
    assert set(train_frame["orientation"].unique()) == set(schema.ORIENTATIONS)
    assert set(train_frame["behavior"].unique()) == set(schema.BEHAVIORS)
    assert set(train_frame["phase"].unique()) == set(schema.PHASES)
    assert (train_frame["rot_w"].drop_nulls() >= 0).all()
    row = train_frame.row(0, named=True)
    assert row["row_id"] == f"{row['sequence_id']}_{row['sequence_counter']:06d}"
    assert row["subject"].startswith("SUBJ_")
    seqs = per_sequence(train_frame)
    expected = np.where(seqs["gesture"].is_in(schema.TARGET_GESTURES), "Target", "Non-Target")
    assert (seqs["sequence_type"].to_numpy() == expected).all()
    tof = train_frame.select(schema.TOF_COLUMNS).to_numpy()
    seen = tof[np.isfinite(tof)]
    assert seen.min() == -1 and seen.max() <= 254
    assert np.array_equal(seen, np.round(seen))


def test_every_subject_does_each_valid_pair_about_twice(train_frame: pl.DataFrame) -> None:
    seqs = per_sequence(train_frame)
    valid = {(o, g) for g, orients in schema.ORIENTATION_GESTURES.items() for o in orients}
    pairs = set(zip(seqs["orientation"], seqs["gesture"], strict=True))
    assert pairs == valid
    counts = seqs.group_by("subject", "orientation", "gesture").len()["len"]
    assert counts.max() == 2
    assert (counts == 2).mean() > 0.95
    assert seqs["subject"].n_unique() == 4
    assert 4 * 98 <= seqs.height <= 4 * 102


def test_transition_then_gesture_phase(train_frame: pl.DataFrame) -> None:
    ordered = train_frame.sort("sequence_id", "sequence_counter")
    steps = ordered.group_by("sequence_id", maintain_order=True).agg(
        pl.col("phase").rle().struct.field("value").alias("phases"),
        pl.col("behavior").rle().struct.field("value").alias("behaviors"),
        pl.col("sequence_counter").diff().drop_nulls().eq(1).all().alias("contiguous"),
    )
    assert steps["contiguous"].all()
    assert all(p.to_list() == ["Transition", "Gesture"] for p in steps["phases"])
    for behaviors in steps["behaviors"]:
        assert behaviors[0] in schema.MOVE_BEHAVIORS
        assert behaviors[1:].to_list() == [schema.PAUSE_BEHAVIOR, schema.GESTURE_BEHAVIOR]


def test_lengths_and_class_balance(train_frame: pl.DataFrame) -> None:
    seqs = per_sequence(train_frame)
    lengths = seqs["length"]
    assert lengths.min() >= 29
    assert lengths.max() <= 700
    assert 52 <= lengths.median() <= 68
    assert lengths.mean() > lengths.median()  # the long tail
    assert 0.58 <= (seqs["sequence_type"] == "Target").mean() <= 0.67
    per_gesture = seqs.group_by("gesture").len()
    targets = per_gesture.filter(pl.col("gesture").is_in(schema.TARGET_GESTURES))["len"]
    assert targets.min() >= 30  # 4 subjects x 4 orientations x 2, minus rare drops


def test_missing_value_rates(train_frame: pl.DataFrame, test_frame: pl.DataFrame) -> None:
    rot_nan = train_frame["rot_w"].is_null().mean()
    assert 0.0005 < rot_nan < 0.02
    thm5 = train_frame["thm_5"].is_null().mean()
    assert 0.01 < thm5 < 0.15
    tof = train_frame.select(schema.TOF_COLUMNS[:64]).to_numpy()
    assert 0.2 < (tof == -1).mean() < 0.8
    imu_only = (
        test_frame.group_by("sequence_id")
        .agg(
            pl.all_horizontal(pl.col(schema.THM_COLUMNS + schema.TOF_COLUMNS).is_null())
            .all()
            .alias("imu_only")
        )["imu_only"]
        .mean()
    )
    assert 0.4 <= imu_only <= 0.6
    train_imu_only = train_frame.group_by("sequence_id").agg(pl.col("thm_1").is_null().all())
    assert train_imu_only["thm_1"].mean() < 0.08


def test_demographics_are_plausible(synthetic_dir: Path) -> None:
    demo = pl.read_csv(synthetic_dir / "train_demographics.csv")
    assert demo.height == 4
    assert demo["handedness"].min() == 0  # at least one left-handed subject
    assert demo["age"].is_between(10, 53).all()
    assert demo["height_cm"].is_between(135, 190.5).all()
    assert demo["shoulder_to_wrist_cm"].is_between(41, 71).all()
    assert demo["elbow_to_wrist_cm"].is_between(18, 44).all()
    assert demo["adult_child"].is_in([0, 1]).all() and demo["sex"].is_in([0, 1]).all()
    test_subjects = pl.read_csv(synthetic_dir / "test_demographics.csv")["subject"]
    assert test_subjects.len() == 2
    assert not set(test_subjects).intersection(demo["subject"])


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", subjects=2, seed=7)
    b = generate(tmp_path / "b", subjects=2, seed=7)
    c = generate(tmp_path / "c", subjects=2, seed=8)
    for name in ("train.csv", "train_demographics.csv", "test.csv", "test_demographics.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "train.csv").read_bytes() != (c / "train.csv").read_bytes()


def test_needs_a_subject(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 1 subject"):
        generate(tmp_path, subjects=0)


def test_synth_refuses_a_non_empty_directory(tmp_path: Path, capsys) -> None:
    from cmi_core.cli import main

    (tmp_path / "train.csv").write_text("my real data\n")
    assert main(["synth", str(tmp_path), "--subjects", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {tmp_path}: directory is not empty (train.csv); --overwrite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]
    assert (tmp_path / "train.csv").read_text() == "my real data\n"


def test_synth_overwrite_replaces_only_its_own_files(tmp_path: Path, capsys) -> None:
    from cmi_core.cli import main

    (tmp_path / "train.csv").write_text("old\n")
    (tmp_path / "notes.txt").write_text("keep me\n")
    assert main(["synth", str(tmp_path), "--subjects", "1", "--overwrite"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"
    assert header(tmp_path / "train.csv") == schema.TRAIN_COLUMNS
    written = {"notes.txt", "train.csv", "train_demographics.csv", "test.csv"}
    assert {p.name for p in tmp_path.iterdir()} == written | {"test_demographics.csv"}


def test_synth_into_an_empty_or_new_directory(tmp_path: Path) -> None:
    assert (generate(tmp_path, subjects=1) / "test.csv").is_file()
    assert (generate(tmp_path / "new" / "dir", subjects=1) / "train.csv").is_file()


def test_an_interrupted_synth_keeps_the_old_files_and_leaves_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cmi_core.data import synthetic

    (tmp_path / "train.csv").write_text("old\n")

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_subject_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, subjects=1, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["train.csv"]
    assert (tmp_path / "train.csv").read_text() == "old\n"
