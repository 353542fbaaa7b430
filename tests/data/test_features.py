"""Feature functions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from cmi_core.config import FeatureConfig
from cmi_core.data import features as feat

S45 = np.sqrt(0.5)
ACC, ROT, LIN, MAG, JERK, ANG, DIST = (
    slice(0, 3), slice(3, 7), slice(7, 10), 10, 11, slice(12, 15), 15
)  # fmt: skip


def one_sequence(acc: np.ndarray, quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feat.imu_features(np.asarray(acc, float), np.asarray(quat, float), np.array([0]))


def rotation_about(axis: int, angles: np.ndarray) -> np.ndarray:
    rotvec = np.zeros((len(angles), 3))
    rotvec[:, axis] = angles
    return feat.quat_from_rotvec(rotvec)


def test_feature_names_and_order() -> None:
    assert feat.feature_names(FeatureConfig()) == feat.IMU_FEATURES
    assert len(feat.IMU_FEATURES) == 16
    assert feat.IMU_FEATURES[7:12] == (
        "linear_acc_x", "linear_acc_y", "linear_acc_z", "linear_acc_mag", "linear_acc_mag_jerk"
    )  # fmt: skip
    names = feat.feature_names(FeatureConfig(thm_tof=True))
    assert len(names) == 32
    assert names[16] == "thm_1"
    assert names[-1] == "thm_tof_present"


def test_gravity_of_a_quarter_turn_about_x_is_sensor_y() -> None:
    q = np.array([S45, S45, 0.0, 0.0])
    np.testing.assert_allclose(feat.gravity_in_sensor(q), [0.0, 1.0, 0.0], atol=1e-12)


def test_gravity_only_gives_zero_linear_acceleration() -> None:
    x, valid = one_sequence([[0.0, 9.81, 0.0], [0.0, 0.0, 9.81]], [[S45, S45, 0, 0], [1, 0, 0, 0]])
    assert valid.all()
    np.testing.assert_allclose(x[:, ACC], [[0, 1, 0], [0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(x[:, LIN], 0.0, atol=1e-6)
    np.testing.assert_allclose(x[:, MAG], 0.0, atol=1e-6)


def test_pure_rotation_with_gravity_only_gives_zero_linear_acceleration() -> None:
    q = feat.quat_multiply(
        rotation_about(0, np.linspace(0, 2.5, 30)), rotation_about(2, np.full(30, 0.7))
    )
    acc = feat.GRAVITY * feat.gravity_in_sensor(q)
    x, _ = one_sequence(acc, q)
    np.testing.assert_allclose(x[:, LIN], 0.0, atol=1e-6)
    assert np.abs(x[:-1, ANG]).max() > 0.5  # it did rotate


def test_linear_acceleration_in_g() -> None:
    x, _ = one_sequence([[0.0, 0.0, 1.5 * 9.81], [0.0, 0.0, 9.81]], [[1, 0, 0, 0]] * 2)
    np.testing.assert_allclose(x[:, LIN], [[0, 0, 0.5], [0, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(x[:, MAG], [0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(x[:, JERK], [0.0, -0.5], atol=1e-6)  # first row of a sequence: 0


def test_constant_quaternion_gives_zero_angular_velocity() -> None:
    q = np.tile([0.5, 0.5, -0.5, 0.5], (5, 1))
    x, _ = one_sequence(np.tile([0.0, 0.0, 9.81], (5, 1)), q)
    np.testing.assert_allclose(x[:, ANG], 0.0, atol=1e-7)
    np.testing.assert_allclose(x[:, DIST], 0.0, atol=1e-7)


def test_steady_rotation_rate() -> None:
    q = rotation_about(2, 0.1 * np.arange(6))
    x, _ = one_sequence(np.zeros((6, 3)), q)
    np.testing.assert_allclose(x[:-1, ANG], [[0, 0, 0.1 * feat.ANGULAR_VEL_SCALE]] * 5, atol=1e-6)
    np.testing.assert_allclose(x[:-1, DIST], 0.1, atol=1e-6)
    np.testing.assert_array_equal(x[-1, ANG], 0.0)  # last row has no successor


def test_q_and_minus_q_give_the_same_features() -> None:
    rng = np.random.default_rng(0)
    q = feat.quat_from_rotvec(np.cumsum(rng.normal(0, 0.2, (40, 3)), axis=0))
    acc = rng.normal(0, 5, (40, 3))
    flipped = q * np.where(rng.random(40) < 0.5, -1.0, 1.0)[:, None]
    a, _ = one_sequence(acc, q)
    b, _ = one_sequence(acc, flipped)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert (a[:, 3] >= 0).all()  # rot channels follow the positive-w convention


def test_sequences_do_not_leak_into_each_other() -> None:
    q = np.concatenate([rotation_about(0, np.zeros(3)), rotation_about(0, np.full(3, 1.0))])
    acc = np.tile([0.0, 0.0, 9.81], (6, 1))
    x, _ = feat.imu_features(acc, q, np.array([0, 3]))
    np.testing.assert_allclose(x[:, ANG], 0.0, atol=1e-7)  # no jump across the boundary
    np.testing.assert_array_equal(x[3, JERK], 0.0)


def test_nan_quaternion_rows_take_the_nearest_valid_one() -> None:
    q = np.array([[np.nan] * 4, [S45, S45, 0, 0], [np.nan] * 4, [S45, S45, 0, 0]])
    acc = np.tile([0.0, 9.81, 0.0], (4, 1))
    x, valid = one_sequence(acc, q)
    assert valid.all()
    np.testing.assert_allclose(x[:, ROT], [[S45, S45, 0, 0]] * 4, atol=1e-6)
    np.testing.assert_allclose(x[:, LIN], 0.0, atol=1e-6)


def test_sequence_without_quaternions_uses_mean_acc_as_gravity() -> None:
    acc = np.array([[0.0, 0.0, 9.81 + 0.981], [0.0, 0.0, 9.81 - 0.981]])
    x, valid = one_sequence(acc, np.full((2, 4), np.nan))
    assert valid.all()
    np.testing.assert_allclose(x[:, ROT], 0.0)
    np.testing.assert_allclose(x[:, LIN], [[0, 0, 0.1], [0, 0, -0.1]], atol=1e-6)


def test_all_nan_imu_gives_zeros_and_invalid_frames() -> None:
    x, valid = one_sequence(np.full((4, 3), np.nan), np.full((4, 4), np.nan))
    assert not valid.any()
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, 0.0)


def test_absurd_values_stay_finite() -> None:
    x, valid = one_sequence([[1e30, 0, 0], [np.inf, 0, 0], [1.0, 2.0, 3.0]], [[1, 0, 0, 0]] * 3)
    assert np.isfinite(x).all()
    assert np.abs(x).max() <= feat.FEATURE_CLIP
    np.testing.assert_array_equal(valid, [True, False, True])


def test_mirrored_left_hand_twin_matches_right_hand() -> None:
    rng = np.random.default_rng(1)
    q = feat.quat_from_rotvec(np.cumsum(rng.normal(0, 0.2, (30, 3)), axis=0))
    acc = feat.GRAVITY * feat.gravity_in_sensor(q) + rng.normal(0, 2, (30, 3))
    right, _ = one_sequence(acc, q)
    left_acc, left_q = acc * [-1, 1, 1], q * [1, 1, -1, -1]  # the left-hand recording
    unmirrored, _ = one_sequence(left_acc, left_q)
    assert not np.allclose(unmirrored, right, atol=1e-3)
    rows = np.ones(30, dtype=bool)
    feat.mirror_raw(rows, left_acc, left_q)
    mirrored, _ = one_sequence(left_acc, left_q)
    np.testing.assert_allclose(mirrored, right, atol=1e-5)
    np.testing.assert_allclose(
        feat.mirror_features(right, feat.IMU_FEATURES), unmirrored, atol=1e-5
    )


def test_mirror_swaps_sensors_3_and_5() -> None:
    thm = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    tof = np.arange(5 * 64, dtype=np.int16).reshape(1, 5, 64)
    feat.mirror_raw(np.array([True]), np.zeros((1, 3)), np.zeros((1, 4)), thm, tof)
    np.testing.assert_array_equal(thm, [[1.0, 2.0, 5.0, 4.0, 3.0]])
    np.testing.assert_array_equal(tof[0, :, 0], [0, 64, 256, 192, 128])


def test_tof_summary() -> None:
    n = np.nan
    block = np.array([[-1] * 32 + [51] * 32, [n] * 64, [0] * 64, [n] * 63 + [-1]])
    mean, in_range = feat.tof_summary(block)
    np.testing.assert_allclose(mean, [(255 + 51) / 2 / 255, np.nan, 0.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(in_range, [0.5, np.nan, 1.0, 0.0])


def test_thm_tof_features() -> None:
    thm = np.array([[33.0, np.nan, 28, 28, 28], [np.nan] * 5, [np.nan] * 5])
    tof_mean = np.full((3, 5), np.nan, dtype=np.float32)
    tof_mean[2, 0] = 0.5
    tof_in_range = np.where(np.isfinite(tof_mean), 0.25, np.nan)
    out = feat.thm_tof_features(thm, tof_mean, tof_in_range, np.array([0, 1, 2]))
    col = {name: out[:, i] for i, name in enumerate(feat.THM_TOF_FEATURES)}
    np.testing.assert_allclose(col["thm_1"], [1.0, 0.0, 0.0])  # (33 - 28) / 5; NaN -> 0
    np.testing.assert_allclose(col["thm_2"], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(col["tof_1_mean"], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(col["tof_1_in_range"], [0.0, 0.0, 0.25])
    np.testing.assert_allclose(col["thm_tof_present"], [1.0, 0.0, 1.0])
    assert np.isfinite(out).all() and out.dtype == np.float32
    one_sequence = feat.thm_tof_features(thm, tof_mean, tof_in_range, np.array([0]))
    np.testing.assert_allclose(one_sequence[:, -1], 1.0)  # the flag is per sequence


@pytest.mark.parametrize(
    ("column", "raw", "scaled"),
    [("age", 34.0, 0.5), ("height_cm", 162.5, 0.5), ("age", 80.0, 1.0), ("age", np.nan, 14 / 52)],
)
def test_demographic_scaling(column: str, raw: float, scaled: float) -> None:
    values = np.array([[feat.DEMOGRAPHIC_DEFAULTS[n] for n in feat.DEMOGRAPHIC_RANGES]])
    index = list(feat.DEMOGRAPHIC_RANGES).index(column)
    values[0, index] = raw
    assert feat.demographic_features(values)[0, index] == pytest.approx(scaled)


def test_feature_mirror_swaps_sensors_3_and_5_and_keeps_the_others() -> None:
    names = feat.IMU_FEATURES + feat.THM_TOF_FEATURES
    x = np.arange(4 * len(names), dtype=np.float32).reshape(4, len(names))
    out = feat.mirror_features(x, names)
    col = {name: i for i, name in enumerate(names)}
    for a, b in feat.MIRROR_SWAPPED:
        np.testing.assert_array_equal(out[:, col[a]], x[:, col[b]])
        np.testing.assert_array_equal(out[:, col[b]], x[:, col[a]])
    for name in ("thm_1", "thm_4", "tof_2_mean", "thm_tof_present", "acc_y"):
        np.testing.assert_array_equal(out[:, col[name]], x[:, col[name]])
    np.testing.assert_array_equal(out[:, col["acc_x"]], -x[:, col["acc_x"]])
