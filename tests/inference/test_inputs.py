"""Sequences the hidden test set holds: IMU-only, NaN quaternion rows, a single row."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import polars as pl
import pytest

from cmi_core.data.reader import sequences_from_frames
from cmi_core.data.schema import GESTURES, ROT_COLUMNS, THM_COLUMNS, TOF_COLUMNS
from cmi_core.predict.predictor import Predictor
from tests.inference.gateway import gateway_calls


@pytest.fixture(scope="module", params=["tiny_run", "tiny_thm_tof_run"])
def case(request) -> tuple[Predictor, pl.DataFrame, pl.DataFrame]:
    """A predictor (IMU-only or thm/ToF features) and a test sequence with every sensor."""
    run_dir, data_dir = request.getfixturevalue(request.param)
    return Predictor.from_run(run_dir), *_full_sensor_sequence(data_dir)


def _full_sensor_sequence(data_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    for _, sequence, demographics in gateway_calls(data_dir, "test"):
        if (
            sequence.height >= 20
            and sequence.select(THM_COLUMNS).null_count().sum_horizontal()[0] == 0
        ):
            return sequence, demographics
    raise AssertionError("the synthetic test set has no full-sensor sequence")


def _assert_distribution(probs: np.ndarray) -> None:
    assert probs.shape == (len(GESTURES),)
    assert probs.dtype == np.float32
    assert np.isfinite(probs).all()
    assert abs(float(probs.sum()) - 1.0) < 1e-5


def _imu_only(sequence: pl.DataFrame) -> pl.DataFrame:
    """As in the hidden test set: the thermopile and ToF columns exist but are all null."""
    return sequence.with_columns(
        pl.lit(None, dtype=sequence.schema[c]).alias(c) for c in (*THM_COLUMNS, *TOF_COLUMNS)
    )


def _set_quaternion(sequence: pl.DataFrame, rows: dict[int, float | None]) -> pl.DataFrame:
    """Replace the quaternion of the given rows with ``value`` (NaN or null)."""
    index = pl.int_range(pl.len())
    expr = {c: pl.col(c) for c in ROT_COLUMNS}
    for row, value in rows.items():
        expr = {
            c: pl.when(index == row).then(pl.lit(value, dtype=pl.Float64)).otherwise(e)
            for c, e in expr.items()
        }
    return sequence.with_columns(e.alias(c) for c, e in expr.items())


def _copy_quaternion(sequence: pl.DataFrame, rows: dict[int, int]) -> pl.DataFrame:
    """Give each row in ``rows`` the quaternion of row ``rows[row]``."""
    out = sequence.with_columns(pl.col(c).cast(pl.Float64) for c in ROT_COLUMNS)
    values = out.select(ROT_COLUMNS).to_numpy()
    for row, source in rows.items():
        values[row] = values[source]
    return out.with_columns(pl.Series(c, values[:, i]) for i, c in enumerate(ROT_COLUMNS))


def test_imu_only_sequence_is_predicted(case):
    predictor, sequence, demographics = case
    full = predictor.predict_proba(sequence, demographics)
    imu_only = predictor.predict_proba(_imu_only(sequence), demographics)
    _assert_distribution(imu_only)
    label = predictor.predict(_imu_only(sequence), demographics)
    assert type(label) is str and label in GESTURES
    if predictor.features.thm_tof:  # the model sees the sensors' absence
        assert np.abs(imu_only - full).max() > 1e-6
    else:  # the IMU model never reads thm/ToF
        np.testing.assert_array_equal(imu_only, full)


def test_nan_quaternion_rows_take_the_previous_valid_quaternion(case):
    predictor, sequence, demographics = case
    n = sequence.height  # rows near the end: the model sees the last max_len frames
    broken = _set_quaternion(sequence, {n - 12: float("nan"), n - 5: float("nan"), n - 4: None})
    repaired = _copy_quaternion(sequence, {n - 12: n - 13, n - 5: n - 6, n - 4: n - 6})
    probs = predictor.predict_proba(broken, demographics)
    _assert_distribution(probs)
    np.testing.assert_allclose(probs, predictor.predict_proba(repaired, demographics), atol=1e-6)
    assert np.abs(probs - predictor.predict_proba(sequence, demographics)).max() > 1e-7


def test_sequence_without_any_quaternion_is_predicted(case):
    predictor, sequence, demographics = case
    broken = _set_quaternion(sequence, dict.fromkeys(range(sequence.height), float("nan")))
    _assert_distribution(predictor.predict_proba(broken, demographics))
    assert predictor.predict(broken, demographics) in GESTURES


@pytest.mark.parametrize("imu_only", [False, True])
def test_one_row_sequence_is_predicted(case, imu_only):
    predictor, sequence, demographics = case
    one_row = sequence.tail(1)
    if imu_only:
        one_row = _imu_only(one_row)
    _assert_distribution(predictor.predict_proba(one_row, demographics))
    label = predictor.predict(one_row, demographics)
    assert type(label) is str and label in GESTURES


@pytest.mark.parametrize("imu_only", [False, True])
def test_left_handed_subject_is_mirrored(case, imu_only):
    """Left-handed subjects go through the mirror of the training pipeline, sensors included."""
    predictor, sequence, demographics = case
    if imu_only:
        sequence = _imu_only(sequence)
    right = predictor.predict_proba(sequence, demographics.with_columns(handedness=pl.lit(1)))
    left = predictor.predict_proba(sequence, demographics.with_columns(handedness=pl.lit(0)))
    _assert_distribution(left)
    assert np.abs(left - right).max() > 1e-6


def _mirror_rows(sequence: pl.DataFrame) -> pl.DataFrame:
    """The left-to-right mirror written out on the raw columns (docs/data.md): acc_x, rot_y and
    rot_z change sign, and sensors 3 and 5 (thermopile and ToF) trade places."""
    swapped = {**{f"thm_{a}": f"thm_{b}" for a, b in ((3, 5), (5, 3))}}
    swapped |= {f"tof_{a}_v{p}": f"tof_{b}_v{p}" for a, b in ((3, 5), (5, 3)) for p in range(64)}
    return sequence.with_columns(
        *(-pl.col(c) for c in ("acc_x", "rot_y", "rot_z")),
        *(pl.col(source).alias(target) for target, source in swapped.items()),
    )


@pytest.mark.parametrize("imu_only", [False, True])
def test_left_handed_rows_are_predicted_as_their_mirror_image(case, imu_only):
    """A left-handed subject's rows give what the model gives for the mirrored rows, with the
    same (left-handed) demographics input: the Predictor mirrors as training did."""
    predictor, sequence, demographics = case
    if imu_only:
        sequence = _imu_only(sequence)
    left = demographics.with_columns(handedness=pl.lit(0))
    right = demographics.with_columns(handedness=pl.lit(1))
    features = predictor.features
    mirrored = sequences_from_frames(_mirror_rows(sequence), right, features)
    as_left = attrs.evolve(
        mirrored, demographics=sequences_from_frames(sequence, left, features).demographics
    )
    expected = predictor.predict_batch({features: as_left})[0]
    probs = predictor.predict_proba(sequence, left)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)
    unmirrored = predictor.predict_batch(
        {
            features: sequences_from_frames(
                sequence, left, attrs.evolve(features, mirror_left_handed=False)
            )
        }
    )[0]
    assert np.abs(probs - unmirrored).max() > 1e-4  # the mirror changes what the model sees
