"""Model features from the raw sensor columns: IMU physics, mirroring, thermopile/ToF summaries.

Pure numpy, vectorised over every row of a file at once: sequences are delimited by ``starts``
(the first row of each sequence, sorted, ``starts[0] == 0``), so nothing crosses a boundary.
All scaling uses fixed constants (no statistics fitted on data, so nothing to save next to a
model, and folds cannot leak into each other). The channel order is ``feature_names(cfg)`` and
is documented in ``docs/data.md``.

Conventions: quaternions are (w, x, y, z) and rotate sensor -> world; the accelerometer reads
``R^T (a_world + g e_z)``, so gravity in the sensor frame is the third row of ``R``.
"""

from __future__ import annotations

import numpy as np

from cmi_core.config import FeatureConfig
from cmi_core.data.schema import DEMOGRAPHIC_FEATURES, THM_COLUMNS, TOF_PIXELS, TOF_SENSORS

GRAVITY = 9.81
"""m/s^2 per g: accelerations are given to the model in g."""
ANGULAR_VEL_SCALE = 10.0
"""Angular velocity = rotation per frame (rad) x 10, i.e. rad/s at 10 Hz: O(1) for wrist motion."""
THM_CENTER, THM_SCALE = 28.0, 5.0
"""Thermopile feature = (deg C - 28) / 5: about -1.5 (room air) .. +1.8 (skin)."""
TOF_FAR = 255.0
"""ToF ``-1`` ("no return") counts as this raw distance; features divide by it."""
FEATURE_CLIP = 50.0
"""Guard against absurd raw values: every feature is clipped to +-50 (real ones are < 35)."""

IMU_FEATURES: tuple[str, ...] = (
    "acc_x",
    "acc_y",
    "acc_z",
    "rot_w",
    "rot_x",
    "rot_y",
    "rot_z",
    "linear_acc_x",
    "linear_acc_y",
    "linear_acc_z",
    "linear_acc_mag",
    "linear_acc_mag_jerk",
    "angular_vel_x",
    "angular_vel_y",
    "angular_vel_z",
    "angular_distance",
)
THM_TOF_FEATURES: tuple[str, ...] = (
    *THM_COLUMNS,
    *(f"tof_{s}_mean" for s in range(1, TOF_SENSORS + 1)),
    *(f"tof_{s}_in_range" for s in range(1, TOF_SENSORS + 1)),
    "thm_tof_present",
)
TOF_SIDE = 8
"""Each ToF sensor is an 8 x 8 image, its 64 pixels read row-major from the top left."""
TOF_IMAGE_FEATURES: tuple[str, ...] = tuple(
    f"tof_{s}_px{p}" for s in range(1, TOF_SENSORS + 1) for p in range(TOF_PIXELS)
)
"""Per frame, every ToF pixel as a proximity (``1 - distance / 255``; 0 for "no return" and
for a missing sensor), sensor by sensor; the image branch reads them as five 8 x 8 images."""
MIRROR_NEGATED = frozenset(
    {"acc_x", "rot_y", "rot_z", "linear_acc_x", "angular_vel_y", "angular_vel_z"}
)
"""Channels whose sign flips under the x-axis mirror (docs/data.md, Features)."""
MIRROR_SWAPPED = (
    ("thm_3", "thm_5"),
    ("tof_3_mean", "tof_5_mean"),
    ("tof_3_in_range", "tof_5_in_range"),
)
"""Sensor pairs that trade places under the mirror (3 and 5 sit on opposite sides)."""


def feature_names(cfg: FeatureConfig) -> tuple[str, ...]:
    """The channel order of the feature matrix for a feature configuration."""
    return (
        IMU_FEATURES
        + (THM_TOF_FEATURES if cfg.thm_tof else ())
        + (TOF_IMAGE_FEATURES if cfg.tof_images else ())
    )


# -- quaternion algebra (also used by the synthetic generator) --------------------------------


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) arrays."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) of rotation vectors (..., 3) (axis x angle, radians)."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    half = 0.5 * angle
    scale = np.where(angle > 1e-12, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(half), rotvec * scale], axis=-1)


def gravity_in_sensor(q: np.ndarray) -> np.ndarray:
    """The world's up axis expressed in the sensor frame (unit quaternions (..., 4) -> (..., 3))."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([2 * (x * z - w * y), 2 * (w * x + y * z), 1 - 2 * (x * x + y * y)], axis=-1)


def relative_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector of ``conj(q[t]) * q[t+1]`` for consecutive rows (N-1, 3).

    ``q[t+1]`` is sign-flipped first when the two are in opposite hemispheres, so q and -q
    (the positive-w convention flips signs) give the same small rotation.
    """
    cur, nxt = q[:-1], q[1:]
    nxt = np.where((cur * nxt).sum(axis=1, keepdims=True) < 0, -nxt, nxt)
    delta = quat_multiply(cur * np.array([1.0, -1.0, -1.0, -1.0]), nxt)  # w >= 0 by the flip
    vec_norm = np.linalg.norm(delta[:, 1:], axis=1)
    angle = 2.0 * np.arctan2(vec_norm, delta[:, 0])
    scale = np.where(vec_norm > 1e-12, angle / np.maximum(vec_norm, 1e-12), 2.0)
    return delta[:, 1:] * scale[:, None]


# -- sequence bookkeeping ---------------------------------------------------------------------


def row_segments(starts: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: its sequence's first row, one-past-last row, and sequence number."""
    lengths = np.diff(np.append(starts, n_rows))
    seq = np.repeat(np.arange(len(starts)), lengths)
    return starts[seq], (starts + lengths)[seq], seq


def fill_source(ok: np.ndarray, first: np.ndarray, end: np.ndarray) -> np.ndarray:
    """For each row, the nearest row of the same sequence where ``ok`` (previous first, else
    next), or -1 when the sequence has none: occasional NaN quaternion rows are filled."""
    rows = np.arange(len(ok))
    prev = np.maximum.accumulate(np.where(ok, rows, -1))
    prev = np.where(prev >= first, prev, -1)
    nxt = np.minimum.accumulate(np.where(ok, rows, len(ok))[::-1])[::-1]
    nxt = np.where(nxt < end, nxt, -1)
    return np.where(prev >= 0, prev, nxt)


def downsample(
    values: np.ndarray, valid: np.ndarray, starts: np.ndarray, factor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each sequence's frames averaged in runs of ``factor``, the runs aligned to its last frame
    (where the gesture is; a shorter first run takes what is left): rows ``[N, C]`` of the
    concatenated sequences -> the pooled rows, their validity, the pooled sequences' starts and,
    per pooled row, the original row that ends its run (per-frame labels are read there).

    The mean is over the run's valid frames (all-invalid runs stay invalid, at 0), a box filter
    before decimation, so a window of ``max_len`` frames sees ``max_len * factor`` recorded
    ones at the cost of ``max_len``: the lever for recordings longer and finer than the gesture
    needs."""
    lengths = np.diff(np.append(starts, len(values)))
    n_runs = -(-lengths // factor)  # ceil
    new_starts = np.concatenate([[0], np.cumsum(n_runs)[:-1]]).astype(np.int64)
    _, end, seq = row_segments(starts, len(values))
    to_end = end - 1 - np.arange(len(values))  # frames after the row in its sequence
    run = new_starts[seq] + n_runs[seq] - 1 - to_end // factor  # nondecreasing over rows
    first_rows = np.flatnonzero(np.diff(run, prepend=-1))
    sums = np.add.reduceat(
        np.where(valid[:, None], values.astype(np.float64), 0.0), first_rows, axis=0
    )
    counts = np.add.reduceat(valid.astype(np.int64), first_rows)
    pooled = (sums / np.maximum(counts, 1.0)[:, None]).astype(values.dtype)
    last_rows = np.flatnonzero(to_end % factor == 0)
    return pooled, counts > 0, new_starts, last_rows


def _per_sequence_mean(values: np.ndarray, ok: np.ndarray, starts: np.ndarray) -> np.ndarray:
    sums = np.add.reduceat(np.where(ok[:, None], values, 0.0), starts, axis=0)
    counts = np.add.reduceat(ok.astype(np.float64), starts)
    return sums / np.maximum(counts, 1.0)[:, None]


# -- IMU features -----------------------------------------------------------------------------


def imu_features(
    acc: np.ndarray, quat: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The 16 IMU channels (``IMU_FEATURES``) and the per-row validity.

    ``acc`` (N, 3) in m/s^2 including gravity, ``quat`` (N, 4) as in the file (may be NaN).
    A row is valid when its three acc values are finite; invalid rows are all zeros.
    NaN/degenerate quaternion rows take the nearest valid quaternion of the same sequence; a
    sequence with none gets zero rotation channels and gravity estimated as its mean acc.
    """
    n = len(acc)
    first, end, seq = row_segments(starts, n)
    acc = acc.astype(np.float64) / GRAVITY
    valid = np.isfinite(acc).all(axis=1)
    acc = np.where(valid[:, None], acc, 0.0)

    norm = np.linalg.norm(quat.astype(np.float64), axis=1, keepdims=True)
    q_ok = np.isfinite(norm[:, 0]) & (norm[:, 0] > 1e-6)
    unit = np.where(q_ok[:, None], quat / np.where(q_ok[:, None], norm, 1.0), 0.0)
    src = fill_source(q_ok, first, end)
    has_q = src >= 0
    q = np.where(has_q[:, None], unit[np.maximum(src, 0)], 0.0)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)  # positive-w convention: q and -q look the same

    gravity = np.where(
        has_q[:, None], gravity_in_sensor(q), _per_sequence_mean(acc, valid, starts)[seq]
    )
    linear = acc - gravity
    linear_mag = np.linalg.norm(linear, axis=1)

    last = np.append(seq[1:] != seq[:-1], True)
    rotvec = np.zeros((n, 3))
    rotvec[:-1] = relative_rotvec(q)
    rotvec[last | ~has_q] = 0.0
    angle = np.linalg.norm(rotvec, axis=1)

    jerk = np.diff(linear_mag, prepend=0.0)
    jerk[(first == np.arange(n)) | ~valid | ~np.roll(valid, 1)] = 0.0

    out = np.concatenate(
        [
            acc,
            q,
            linear,
            linear_mag[:, None],
            jerk[:, None],
            rotvec * ANGULAR_VEL_SCALE,
            angle[:, None],
        ],
        axis=1,
    )
    out[~valid] = 0.0
    return _finite(out), valid


def _finite(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.clip(x, -FEATURE_CLIP, FEATURE_CLIP), nan=0.0).astype(np.float32)


# -- thermopile / ToF summaries ---------------------------------------------------------------


def tof_summary(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sensor: the mean distance over non-null pixels, "no return" counted as far, / 255,
    and the fraction of pixels with something in range; NaN where the sensor is absent.

    ``pixels``: (..., 64) raw readings, NaN = null, -1 = no return; the results have the
    leading shape, e.g. (N, 5) for (N, 5, 64). Row-local (files are summarised in row
    batches) and invariant to flipping the 8x8 image, so mirroring needs no image flip.
    """
    in_range = pixels >= 0
    n_in = in_range.sum(axis=-1)
    n_seen = n_in + (pixels == -1).sum(axis=-1)
    dist = np.where(in_range, pixels, 0).sum(axis=-1, dtype=np.float64)
    dist += TOF_FAR * (n_seen - n_in)
    seen = np.maximum(n_seen, 1)
    mean = np.where(n_seen > 0, dist / seen / TOF_FAR, np.nan).astype(np.float32)
    fraction = np.where(n_seen > 0, n_in / seen, np.nan).astype(np.float32)
    return mean, fraction


def tof_proximity(pixels: np.ndarray) -> np.ndarray:
    """Raw ToF readings (..., 64) -> proximity in [0, 1]: ``1 - d / 255`` where something is
    in range, 0 where nothing is ("no return", ``-1``) or the sensor is missing (NaN), so an
    empty image and an absent one look alike; the presence flag tells them apart."""
    in_range = pixels >= 0
    near = 1.0 - np.clip(np.where(in_range, pixels, TOF_FAR), 0.0, TOF_FAR) / TOF_FAR
    return near.astype(np.float32)


def tof_image_mirror() -> np.ndarray:
    """The permutation of ``TOF_IMAGE_FEATURES`` under the mirror: sensors 3 and 5 trade
    places and every image is flipped left to right (a mirror reverses what each sensor sees
    across the mirror plane); ``mirrored[..., i] = x[..., perm[i]]``."""
    grid = np.arange(TOF_SENSORS * TOF_PIXELS).reshape(TOF_SENSORS, TOF_SIDE, TOF_SIDE)
    grid = grid[[0, 1, 4, 3, 2]][:, :, ::-1]
    return grid.reshape(-1)


def thm_tof_features(
    thm: np.ndarray, tof_mean: np.ndarray, tof_in_range: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """The 16 channels of ``THM_TOF_FEATURES`` (N, 16).

    ``thm`` (N, 5) deg C, ``tof_mean`` / ``tof_in_range`` (N, 5) from ``tof_summary``, NaN
    where missing. Missing values become 0; ``thm_tof_present`` is 1 on every row of a
    sequence that has any thermopile or ToF reading (0 for IMU-only sequences).
    """
    present_row = np.isfinite(thm).any(axis=1) | np.isfinite(tof_mean).any(axis=1)
    present = np.maximum.reduceat(present_row.astype(np.float32), starts)
    seq = row_segments(starts, len(thm))[2]
    thm_scaled = (thm.astype(np.float32) - THM_CENTER) / THM_SCALE
    out = np.column_stack([thm_scaled, tof_mean, tof_in_range, present[seq]])
    return _finite(out)


# -- demographics ----------------------------------------------------------------------------

DEMOGRAPHIC_RANGES: dict[str, tuple[float, float]] = {
    "adult_child": (0.0, 1.0),
    "age": (8.0, 60.0),
    "sex": (0.0, 1.0),
    "handedness": (0.0, 1.0),
    "height_cm": (130.0, 195.0),
    "shoulder_to_wrist_cm": (35.0, 75.0),
    "elbow_to_wrist_cm": (15.0, 50.0),
}
"""Fixed min-max ranges (those of exp024/025, docs/data.md); values are clipped to [0, 1]."""
DEMOGRAPHIC_DEFAULTS: dict[str, float] = {
    "adult_child": 1.0,
    "age": 22.0,
    "sex": 1.0,
    "handedness": 1.0,
    "height_cm": 168.0,
    "shoulder_to_wrist_cm": 52.0,
    "elbow_to_wrist_cm": 25.5,
}
"""Stand-ins for missing values: the typical (mean or majority) train subject."""


def demographic_features(raw: np.ndarray) -> np.ndarray:
    """(S, 7) raw ``DEMOGRAPHIC_FEATURES`` (NaN = missing) -> float32 in [0, 1]."""
    low, high = np.array([DEMOGRAPHIC_RANGES[name] for name in DEMOGRAPHIC_FEATURES]).T
    default = np.array([DEMOGRAPHIC_DEFAULTS[name] for name in DEMOGRAPHIC_FEATURES])
    filled = np.where(np.isfinite(raw), raw, default)
    return np.clip((filled - low) / (high - low), 0.0, 1.0).astype(np.float32)


# -- mirroring --------------------------------------------------------------------------------


def mirror_raw(
    rows: np.ndarray, acc: np.ndarray, quat: np.ndarray, *per_sensor: np.ndarray
) -> None:
    """Mirror the selected rows (bool mask) across the device's x-axis plane, in place.

    Left-handed subjects wear the device on the left wrist; mirroring maps them onto the
    right-handed frame (docs/data.md): acc_x -> -acc_x, (w, x, y, z) -> (w, x, -y, -z), and
    sensors 3 <-> 5 in every ``per_sensor`` array (sensor on axis 1: thermopiles (N, 5),
    ToF summaries (N, 5) or raw ToF (N, 5, 64)).
    """
    acc[rows, 0] *= -1
    quat[rows, 2:] *= -1
    for values in per_sensor:
        values[np.ix_(rows, [2, 4])] = values[np.ix_(rows, [4, 2])]


def mirror_features(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The same mirror applied to a feature matrix (T, C) whose channels are ``names``.

    Used by the mirroring augmentation; equals computing features from mirrored raw data.
    """
    out = x.copy()
    index = {name: i for i, name in enumerate(names)}
    for name in MIRROR_NEGATED & index.keys():
        out[:, index[name]] *= -1
    for a, b in MIRROR_SWAPPED:
        if a in index:
            out[:, [index[a], index[b]]] = x[:, [index[b], index[a]]]
    if TOF_IMAGE_FEATURES[0] in index:
        start = index[TOF_IMAGE_FEATURES[0]]
        images = slice(start, start + len(TOF_IMAGE_FEATURES))
        out[:, images] = x[:, images][:, tof_image_mirror()]
    return out
