"""A synthetic data set in the exact Kaggle format, so everything runs without the real data.

Physical model (per frame, nominal 10 Hz): the device orientation is
``q = body(orientation) * exp(pose(t)) * exp(motion(t)) * mount(subject)``; the wrist reaches
from a rest pose to the gesture's body location (Transition: move, then pause), then performs
the gesture's motion program (Gesture phase, always at the end). The accelerometer reads
gravity in the sensor frame plus the second derivative of the hand's displacement, plus noise.
Left-handed subjects are the x-axis mirror image (docs/data.md). Thermopiles warm up and ToF
distances shrink as the hand approaches skin.

The class information is mostly in the temporal shape of the gesture phase: the 8 targets
and three look-alike non-targets (knee scratch, knee pinch, glasses) are all made of the same
four sub-movements (tug, twist, stroke, press; equal peak rates), each gesture in an order of
its own. Per-channel summary statistics see the same mixture for all of them and only the
body location (pose, blurred by subject and sequence jitter) helps them; a sequence model
can read the order. Hard pairs share a location: neck scratch / neck pinch sit next to knee
scratch / knee pinch. Subjects differ in arm length (amplitude), speed, pose and how the
device sits on the wrist, and in how faithfully they keep the order (``_sloppy``).

Determinism: one RNG for the plan (ids, demographics, sequence list) and one per subject for
the signals, all derived from ``seed``; the output is identical for a seed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from cmi_core.data.features import (
    GRAVITY,
    gravity_in_sensor,
    mirror_raw,
    quat_from_rotvec,
    quat_multiply,
)
from cmi_core.data.schema import (
    GESTURE_BEHAVIOR,
    MOVE_BEHAVIORS,
    ORIENTATION_GESTURES,
    PAUSE_BEHAVIOR,
    TARGET_GESTURES,
    TEST_COLUMNS,
    THM_COLUMNS,
    TOF_COLUMNS,
    TOF_PIXELS,
    TOF_SENSORS,
    TRAIN_COLUMNS,
)
from cmi_core.errors import DataError

FPS = 10.0
FIDGET_P, SWAP_P = 0.3, 0.15
GENERATOR_VERSION = "2"

# -- the motion vocabulary --------------------------------------------------------------------


@attrs.frozen
class Motion:
    """One component of a sub-movement on one axis, given by its peak RATE.

    ``rot``: rad per frame; ``pos``: m/s^2. The displacement amplitude follows from the
    rate and the period, so two gestures with equal rates but different rhythm have the
    same per-channel spread of angular velocity and acceleration: only the temporal shape
    (frequency, order, phase between axes) tells them apart.
    """

    kind: str  # "rot" | "pos"
    axis: int
    shape: str  # "osc" (sine cycles) | "pulses" (out-and-back cycles) | "ramp" (to a new level)
    rate: float
    cycles: int = 1


@attrs.frozen
class Segment:
    frames: float  # nominal length at speed 1
    motions: tuple[Motion, ...] = ()


@attrs.frozen
class GestureModel:
    location: str
    proximity: float  # how close to skin/objects the hand gets (thm/ToF), 0..1
    segments: tuple[Segment, ...]


X, Y, Z = 0, 1, 2
HOLD = Segment(5)
# The four sub-movements the body-focused gestures (and their look-alikes) are built from.
SUB_MOVEMENTS: dict[str, Segment] = {
    "T": Segment(8, (Motion("pos", Z, "pulses", 2.5), Motion("rot", X, "pulses", 0.06))),  # tug
    "W": Segment(6, (Motion("rot", Z, "osc", 0.12),)),  # twist
    "S": Segment(8, (Motion("rot", Y, "osc", 0.12, 2), Motion("pos", X, "osc", 1.5, 2))),  # stroke
    "P": Segment(6, (Motion("pos", Y, "pulses", 2.0), Motion("rot", X, "osc", 0.06))),  # press
}


def sub_movements(order: str) -> tuple[Segment, ...]:
    """Segments for a string of sub-movement letters, e.g. ``"TWPS"``."""
    return tuple(SUB_MOVEMENTS[letter] for letter in order)


def scribble(acc: float) -> Segment:
    return Segment(
        30,
        (
            Motion("pos", X, "osc", acc, 3),
            Motion("pos", Y, "osc", acc, 5),
            Motion("rot", Z, "osc", 0.03, 3),
        ),
    )


GESTURE_MODELS: dict[str, GestureModel] = {
    # every target and three look-alike non-targets: the same four sub-movements, in an order
    # of their own (any two orders differ in at least 3 adjacent pairs)
    "Above ear - pull hair": GestureModel("head_side", 0.85, sub_movements("TWPS")),
    "Cheek - pinch skin": GestureModel("cheek", 0.95, sub_movements("PSWT")),
    "Eyebrow - pull hair": GestureModel("forehead", 0.9, sub_movements("TPSW")),
    "Eyelash - pull hair": GestureModel("eye", 0.9, sub_movements("WSTP")),
    "Forehead - pull hairline": GestureModel("forehead", 0.9, sub_movements("STWP")),
    "Forehead - scratch": GestureModel("forehead", 0.95, sub_movements("SPTW")),
    "Neck - pinch skin": GestureModel("neck", 0.95, sub_movements("PTWS")),
    "Neck - scratch": GestureModel("neck", 0.95, sub_movements("SWPT")),
    "Scratch knee/leg skin": GestureModel("knee", 0.8, sub_movements("STPW")),
    "Pinch knee/leg skin": GestureModel("knee", 0.8, sub_movements("PTSW")),
    "Glasses on/off": GestureModel("eye", 0.9, sub_movements("WSPT")),
    # the other non-targets have movements of their own
    "Write name on leg": GestureModel("knee", 0.8, (scribble(1.0),)),
    "Write name in air": GestureModel("air_front", 0.05, (scribble(2.5),)),
    "Wave hello": GestureModel(
        "air_high", 0.05, (Segment(18, (Motion("rot", Z, "osc", 0.3, 3),)),)
    ),
    "Text on phone": GestureModel(
        "front", 0.4, (Segment(24, (Motion("rot", Y, "osc", 0.03, 8),)),)
    ),
    "Feel around in tray and pull out an object": GestureModel(
        "tray",
        0.3,
        (
            Segment(
                15,
                (
                    Motion("rot", X, "osc", 0.06, 2),
                    Motion("rot", Z, "osc", 0.06, 3),
                    Motion("pos", X, "osc", 1.0, 2),
                ),
            ),
            Segment(8, (Motion("pos", Z, "pulses", 2.0),)),
        ),
    ),
    "Pull air toward your face": GestureModel(
        "air_front",
        0.3,
        (Segment(20, (Motion("pos", Z, "pulses", -3.0, 2), Motion("rot", Y, "pulses", 0.05, 2))),),
    ),
    "Drink from bottle/cup": GestureModel(
        "mouth",
        0.7,
        (
            Segment(8, (Motion("rot", Y, "ramp", 0.15),)),
            HOLD,
            Segment(8, (Motion("rot", Y, "ramp", -0.15),)),
        ),
    ),
}

# Wrist poses relative to the body (rotation vectors, rad). "knee" sits deliberately close to
# "neck" so the hard pairs must be told apart by motion, not by where the hand is.
LOCATIONS: dict[str, tuple[float, float, float]] = {
    "head_side": (-1.75, 0.3, 0.45),
    "forehead": (-1.7, -0.1, 0.35),
    "eye": (-1.55, -0.05, 0.25),
    "cheek": (-1.45, 0.2, 0.3),
    "neck": (-1.35, 0.35, 0.25),
    "knee": (-1.3, 0.45, 0.3),
    "mouth": (-1.45, 0.05, 0.15),
    "front": (-0.4, 0.0, 0.0),
    "tray": (0.2, 0.1, 0.0),
    "air_high": (-1.6, 0.0, -0.6),
    "air_front": (-1.0, -0.3, 0.0),
}
LOCATION_NAMES = tuple(LOCATIONS)
REST_POSES = {MOVE_BEHAVIORS[0]: (0.3, 0.0, 0.0), MOVE_BEHAVIORS[1]: (1.2, 0.2, 0.0)}
BODY_POSES: dict[str, tuple[float, float, float]] = {
    "Seated Straight": (0.05, 0.0, 0.0),
    "Lie on Back": (-np.pi / 2, 0.0, 0.0),
    "Lie on Side - Non Dominant": (0.0, -np.pi / 2, 0.0),
    "Seated Lean Non Dom - FACE DOWN": (0.9, -0.4, 0.0),
}


# -- the plan: subjects, demographics, sequences ----------------------------------------------


@attrs.frozen
class SequencePlan:
    sequence_id: str
    orientation: str
    gesture: str
    move_behavior: str


def _demographics(rng: np.random.Generator, ids: list[str]) -> pl.DataFrame:
    n = len(ids)
    adult = rng.random(n) < 0.52
    age = np.where(adult, np.minimum(18 + rng.gamma(2.0, 5.0, n), 53), rng.integers(10, 18, n))
    sex = rng.random(n) < 0.62
    handed = np.ones(n, dtype=np.int64)
    if n >= 4:
        handed[rng.choice(n, max(1, round(0.125 * n)), replace=False)] = 0
    grown = np.where(adult, 1.0, np.clip((age - 10) / 8, 0, 1))
    height = np.where(sex, 176.0, 163.0) - (1 - grown) * 30 + rng.normal(0, 6, n)
    height = np.round(np.clip(height, 135.0, 190.5) * 2) / 2
    return pl.DataFrame(
        {
            "subject": ids,
            "adult_child": adult.astype(np.int64),
            "age": np.round(age).astype(np.int64),
            "sex": sex.astype(np.int64),
            "handedness": handed,
            "height_cm": height,
            "shoulder_to_wrist_cm": np.clip(
                np.round(height * 0.307 + rng.normal(0, 2, n)), 41, 71
            ).astype(np.int64),
            "elbow_to_wrist_cm": np.clip(
                np.round(height * 0.152 + rng.normal(0, 1.5, n), 1), 18.0, 44.0
            ),
        }
    )


def _sequence_list(rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """(orientation, gesture, move behaviour) for one subject: each valid pair about twice."""
    items = [
        (orientation, gesture, behavior)
        for gesture, orientations in ORIENTATION_GESTURES.items()
        for orientation in orientations
        for behavior in MOVE_BEHAVIORS
        if rng.random() > 0.013
    ]
    return [items[i] for i in rng.permutation(len(items))]


def _plans(
    rng: np.random.Generator, n_subjects: int, ids: Iterable[int]
) -> list[list[SequencePlan]]:
    lists = [_sequence_list(rng) for _ in range(n_subjects)]
    ids = iter(ids)
    return [[SequencePlan(f"SEQ_{next(ids):06d}", *item) for item in items] for items in lists]


# -- signals ----------------------------------------------------------------------------------


@attrs.frozen
class SubjectStyle:
    amplitude: float
    speed: float
    pose_offset: np.ndarray
    mount: np.ndarray  # quaternion: how the device sits on this wrist
    ambient: float
    left_handed: bool


def _style(rng: np.random.Generator, demo: dict) -> SubjectStyle:
    return SubjectStyle(
        amplitude=demo["shoulder_to_wrist_cm"] / 52.0 * rng.uniform(0.8, 1.2),
        speed=rng.uniform(0.85, 1.18),
        pose_offset=rng.normal(0, 0.25, 3),
        mount=quat_from_rotvec(rng.normal(0, 0.1, 3)),
        ambient=rng.uniform(23.0, 27.0),
        left_handed=demo["handedness"] == 0,
    )


def _waveform(shape: str, u: np.ndarray, cycles: int) -> np.ndarray:
    if shape == "pulses":
        return (1 - np.cos(2 * np.pi * cycles * u)) / 2
    if shape == "osc":
        return np.sin(2 * np.pi * cycles * u)
    return 3 * u**2 - 2 * u**3  # ramp (smoothstep)


def _amplitude(motion: Motion, frames: float) -> float:
    """Displacement amplitude (rad or m) whose sampled peak rate is ``motion.rate``."""
    if motion.shape == "ramp":
        return motion.rate * frames / 1.5  # smoothstep's peak slope is 1.5 / frames
    step = 2 * np.sin(np.pi * motion.cycles / frames)  # sampled derivative of a sine
    if motion.kind == "rot":
        return motion.rate / step * (2 if motion.shape == "pulses" else 1)
    return motion.rate / (step * FPS) ** 2 * (2 if motion.shape == "pulses" else 1)


def _gesture_motion(
    segments: tuple[Segment, ...], n: int, scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (rad) and displacement (m) of the wrist over an ``n``-frame gesture phase."""
    nominal = np.array([s.frames for s in segments])
    nominal = nominal * rng.uniform(0.75, 1.25, len(nominal))
    edges = np.round(np.concatenate([[0], np.cumsum(nominal)]) / nominal.sum() * n).astype(int)
    out = {"rot": np.zeros((n, 3)), "pos": np.zeros((n, 3))}
    level = {"rot": np.zeros(3), "pos": np.zeros(3)}
    for segment, frames, start, stop in zip(segments, nominal, edges[:-1], edges[1:], strict=True):
        out["rot"][start:stop] += level["rot"]
        out["pos"][start:stop] += level["pos"]
        u = (np.arange(stop - start) + 1.0) / max(stop - start, 1)
        for m in segment.motions:
            amp = _amplitude(m, frames) * scale * rng.uniform(0.7, 1.3)
            out[m.kind][start:stop, m.axis] += amp * _waveform(m.shape, u, m.cycles)
            if m.shape == "ramp":
                level[m.kind][m.axis] += amp
    return out["rot"], out["pos"]


def _sloppy(segments: tuple[Segment, ...], rng: np.random.Generator) -> tuple[Segment, ...]:
    """People are not metronomes: sometimes (``SWAP_P``) two neighbouring sub-movements
    trade places, sometimes (``FIDGET_P``) an extra random one slips in. This keeps the best
    achievable score below 1 without touching what tells the gestures apart on average."""
    segments = list(segments)
    if len(segments) > 1 and rng.random() < SWAP_P:
        i = int(rng.integers(len(segments) - 1))
        segments[i], segments[i + 1] = segments[i + 1], segments[i]
    if rng.random() < FIDGET_P:
        segments.insert(
            int(rng.integers(len(segments) + 1)), SUB_MOVEMENTS["TWSP"[rng.integers(4)]]
        )
    return tuple(segments)


def _lengths(rng: np.random.Generator, gesture_frames: float) -> tuple[int, int, int]:
    """(move, pause, gesture) frame counts: total 29..700, median near 60, long tail."""
    gesture = max(10, round(gesture_frames * rng.uniform(0.9, 1.1)))
    if rng.random() < 0.04:
        transition = round(np.exp(rng.uniform(np.log(80), np.log(650))))
    else:
        transition = round(np.exp(rng.normal(np.log(33), 0.3)))
    transition = int(np.clip(transition, 29 - gesture, 700 - gesture))
    transition = max(transition, 8)
    move = max(3, round(transition * rng.uniform(0.45, 0.7)))
    return move, transition - move, gesture


def _min_jerk(s: np.ndarray) -> np.ndarray:
    return 10 * s**3 - 15 * s**4 + 6 * s**5


@attrs.frozen
class Signals:
    acc: np.ndarray  # (N, 3) m/s^2
    quat: np.ndarray  # (N, 4)
    proximity: np.ndarray  # (N,) 0..1
    location: np.ndarray  # (N,) index into LOCATION_NAMES
    phase: np.ndarray  # (N,) 0 move, 1 pause, 2 gesture
    lengths: np.ndarray  # per sequence


def _subject_signals(
    plans: list[SequencePlan], style: SubjectStyle, rng: np.random.Generator
) -> Signals:
    parts = [_sequence_signals(p, style, rng) for p in plans]
    cat = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    lengths = np.array([len(part["phase"]) for part in parts])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    # acceleration = second difference of the displacement, within each sequence
    pos = cat["pos"]
    acc_lin = np.zeros_like(pos)
    acc_lin[1:-1] = (pos[2:] - 2 * pos[1:-1] + pos[:-2]) * FPS**2
    edges = np.concatenate([starts, starts + lengths - 1])
    acc_lin[edges] = 0.0

    q = quat_multiply(
        quat_multiply(
            quat_multiply(cat["body"], quat_from_rotvec(cat["pose"])), quat_from_rotvec(cat["rot"])
        ),
        style.mount,
    )
    mount_rot = _rotation_matrix(style.mount)
    acc = GRAVITY * gravity_in_sensor(q) + acc_lin @ mount_rot + rng.normal(0, 0.5, acc_lin.shape)
    if style.left_handed:
        mirror_raw(np.ones(len(q), dtype=bool), acc, q)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)  # the device reports rot_w >= 0
    return Signals(acc, q, cat["proximity"], cat["location"], cat["phase"], lengths)


def _rotation_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _sequence_signals(
    plan: SequencePlan, style: SubjectStyle, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    model = GESTURE_MODELS[plan.gesture]
    segments = _sloppy(model.segments, rng)
    nominal = sum(s.frames for s in segments) * style.speed
    n_move, n_pause, n_gesture = _lengths(rng, nominal)
    n = n_move + n_pause + n_gesture
    reach = np.ones(n)
    reach[:n_move] = _min_jerk((np.arange(n_move) + 1.0) / n_move)

    rest = np.array(REST_POSES[plan.move_behavior]) + rng.normal(0, 0.1, 3)
    target = np.array(LOCATIONS[model.location]) + style.pose_offset + rng.normal(0, 0.12, 3)
    pose = rest + reach[:, None] * (target - rest)
    reach_dir = rng.normal(0, 0.3, 3) + np.array([0.0, 0.0, 1.0])
    pos = reach[:, None] * (0.35 * style.amplitude * reach_dir)

    rot = rng.normal(0, 0.015, (n, 3))  # tremor and sensor noise
    scale = style.amplitude * rng.uniform(0.85, 1.15)
    g_rot, g_pos = _gesture_motion(segments, n_gesture, scale, rng)
    rot[-n_gesture:] += g_rot
    pos[-n_gesture:] += g_pos

    body = quat_from_rotvec(np.array(BODY_POSES[plan.orientation]) + rng.normal(0, 0.1, 3))
    closeness = np.exp(-np.linalg.norm(g_pos, axis=1) / 0.06)
    proximity = reach * model.proximity * rng.uniform(0.85, 1.0)
    proximity[-n_gesture:] *= closeness
    phase = np.repeat([0, 1, 2], [n_move, n_pause, n_gesture])
    return {
        "pose": pose,
        "rot": rot,
        "pos": pos,
        "body": np.broadcast_to(body, (n, 4)),
        "proximity": proximity,
        "location": np.full(n, LOCATION_NAMES.index(model.location)),
        "phase": phase,
    }


# -- thermopiles and time-of-flight -----------------------------------------------------------

_PHYSICS = np.random.default_rng(20250529)  # fixed sensor geometry, the same for every seed
THM_GAIN = _PHYSICS.uniform(3.0, 9.0, (len(LOCATIONS), TOF_SENSORS))  # deg C at full proximity
TOF_COVER = _PHYSICS.uniform(0.2, 1.0, (len(LOCATIONS), TOF_SENSORS))
TOF_NEAR = _PHYSICS.uniform(20.0, 140.0, (len(LOCATIONS), TOF_SENSORS, TOF_PIXELS))
TOF_BACKGROUND = _PHYSICS.uniform(150.0, 420.0, (TOF_SENSORS, TOF_PIXELS)).astype(np.float32)
TOF_SPAN = (TOF_NEAR - TOF_BACKGROUND).astype(np.float32)


def _thm_tof(
    signals: Signals, style: SubjectStyle, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Thermopile deg C (N, 5) and ToF readings (N, 320) as float32 with -1 = no return."""
    p = signals.proximity[:, None]
    loc = signals.location
    thm = style.ambient + p * THM_GAIN[loc] + rng.normal(0, 0.15, (len(loc), TOF_SENSORS))
    cover = (p * TOF_COVER[loc]).astype(np.float32)[:, :, None]
    tof = TOF_SPAN[loc]  # (N, 5, 64): background -> near, by how much a sensor is covered
    tof *= cover
    tof += TOF_BACKGROUND
    noise = rng.standard_normal(tof.shape, dtype=np.float32)
    noise *= 4.0
    tof += noise
    np.rint(np.maximum(tof, 0.0, out=tof), out=tof)
    tof[tof >= 255] = -1
    tof = tof.reshape(len(loc), -1)
    if style.left_handed:  # the mirror image: sensors 3 <-> 5 and every 8x8 image flipped
        n = len(tof)
        sensors = tof.reshape(n, TOF_SENSORS, 8, 8)[..., ::-1].reshape(n, TOF_SENSORS, TOF_PIXELS)
        mirror_raw(np.ones(n, dtype=bool), np.zeros((n, 3)), np.zeros((n, 4)), thm, sensors)
        return thm, sensors.reshape(n, -1)
    return thm, tof


# -- missing values ---------------------------------------------------------------------------

THM_MISSING_P = (0.01, 0.01, 0.01, 0.015, 0.05)  # whole sequence, per sensor (thm_5 worst)
TOF_MISSING_P = 0.01
COMM_FAILURE_P = 0.015  # train: thm and ToF both absent for the whole sequence
ROT_GAP_P, ROT_ABSENT_P = 0.03, 0.003


def _inject_missing(
    quat: np.ndarray,
    thm: np.ndarray,
    tof: np.ndarray,
    lengths: np.ndarray,
    imu_only_p: float,
    rng: np.random.Generator,
) -> None:
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for start, n in zip(starts, lengths, strict=True):
        rows = slice(start, start + n)
        r = rng.random()
        if r < ROT_ABSENT_P:
            quat[rows] = np.nan
        elif r < ROT_ABSENT_P + ROT_GAP_P:
            gap = int(rng.integers(1, 9))
            first = start + int(rng.integers(0, max(n - gap, 1)))
            quat[first : first + gap] = np.nan
        if rng.random() < max(imu_only_p, COMM_FAILURE_P):
            thm[rows] = np.nan
            tof[rows] = np.nan
            continue
        thm[rows, rng.random(TOF_SENSORS) < THM_MISSING_P] = np.nan
        for sensor in np.flatnonzero(rng.random(TOF_SENSORS) < TOF_MISSING_P):
            tof[rows, sensor * TOF_PIXELS : (sensor + 1) * TOF_PIXELS] = np.nan


# -- frames and files -------------------------------------------------------------------------

BEHAVIOR_BY_PHASE = ("", PAUSE_BEHAVIOR, GESTURE_BEHAVIOR)


def _subject_frame(
    subject: str,
    plans: list[SequencePlan],
    demo: dict,
    rng: np.random.Generator,
    columns: tuple[str, ...],
    imu_only_p: float,
) -> pl.DataFrame:
    style = _style(rng, demo)
    signals = _subject_signals(plans, style, rng)
    thm, tof = _thm_tof(signals, style, rng)
    quat = signals.quat
    _inject_missing(quat, thm, tof, signals.lengths, imu_only_p, rng)

    seq_ids = np.repeat([p.sequence_id for p in plans], signals.lengths)
    counter = np.concatenate([np.arange(n) for n in signals.lengths])
    move = np.repeat([p.move_behavior for p in plans], signals.lengths)
    behavior = np.where(signals.phase == 0, move, np.array(BEHAVIOR_BY_PHASE)[signals.phase])
    gesture = np.repeat([p.gesture for p in plans], signals.lengths)
    meta = pl.DataFrame(
        {
            "sequence_type": np.where(np.isin(gesture, TARGET_GESTURES), "Target", "Non-Target"),
            "sequence_id": seq_ids,
            "sequence_counter": counter.astype(np.int64),
            "subject": np.full(len(seq_ids), subject),
            "orientation": np.repeat([p.orientation for p in plans], signals.lengths),
            "behavior": behavior,
            "phase": np.where(signals.phase == 2, "Gesture", "Transition"),
            "gesture": gesture,
        }
    ).with_columns(
        row_id=pl.col("sequence_id") + "_" + pl.col("sequence_counter").cast(pl.String).str.zfill(6)
    )
    sensors = np.column_stack(
        [np.round(signals.acc, 6), np.round(quat, 6), np.round(thm, 6)]
    ).astype(np.float32)
    floats = pl.from_numpy(
        sensors,
        schema=["acc_x", "acc_y", "acc_z", "rot_w", "rot_x", "rot_y", "rot_z", *THM_COLUMNS],
    )
    tofs = pl.from_numpy(tof, schema=list(TOF_COLUMNS)).select(
        pl.all().fill_nan(None).cast(pl.Int16)
    )
    frame = pl.concat([meta, floats.fill_nan(None), tofs], how="horizontal")
    return frame.select(columns)


FILES = ("train.csv", "train_demographics.csv", "test.csv", "test_demographics.csv")
_PARTIAL = ".partial"


def generate(
    out_dir: Path,
    subjects: int = 24,
    seed: int = 0,
    progress: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``train.csv``, ``train_demographics.csv``, ``test.csv``, ``test_demographics.csv``.

    ``subjects`` train subjects (~102 sequences each) and ``max(2, subjects // 10)`` test
    subjects, about half of whose sequences are IMU-only. Returns ``out_dir``. A non-empty
    ``out_dir`` is refused unless ``overwrite``, which replaces only the four files: each is
    written beside its target and renamed at the end, so an interrupted run loses nothing.
    """
    if subjects < 1:
        raise DataError(f"synthetic data needs at least 1 subject, got {subjects}")
    out_dir = Path(out_dir)
    _refuse_foreign(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_test = max(2, subjects // 10)
    rng = np.random.default_rng([seed, 0])
    subject_ids = [f"SUBJ_{i:06d}" for i in rng.choice(1_000_000, subjects + n_test, replace=False)]
    demographics = pl.concat(
        [_demographics(rng, subject_ids[:subjects]), _demographics(rng, subject_ids[subjects:])]
    )
    plans = _plans(rng, subjects + n_test, rng.permutation(1_000_000))
    splits = (
        ("train", TRAIN_COLUMNS, range(subjects), 0.0),
        ("test", TEST_COLUMNS, range(subjects, subjects + n_test), 0.5),
    )
    try:
        for name, columns, members, imu_only_p in splits:
            demographics[list(members)].write_csv(out_dir / f"{name}_demographics.csv{_PARTIAL}")
            with open(out_dir / f"{name}.csv{_PARTIAL}", "wb") as fh:
                for k in _progress(members, progress, name):
                    demo = demographics.row(k, named=True)
                    subject_rng = np.random.default_rng([seed, 1, k])
                    frame = _subject_frame(
                        subject_ids[k], plans[k], demo, subject_rng, columns, imu_only_p
                    )
                    frame.write_csv(fh, include_header=fh.tell() == 0)
    except BaseException as exc:  # interrupted (Ctrl-C, SIGTERM, full disk): no partial file
        for name in FILES:
            (out_dir / f"{name}{_PARTIAL}").unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk or a target gone read-only: one line
            raise DataError(f"{out_dir}: cannot write the synthetic data ({exc})") from None
        raise
    for name in FILES:
        (out_dir / f"{name}{_PARTIAL}").replace(out_dir / name)
    return out_dir


def _refuse_foreign(out_dir: Path, overwrite: bool) -> None:
    """A data set (or anything else) already in ``out_dir`` is only replaced when asked."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a directory")
    entries = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    if entries and not overwrite:
        raise DataError(
            f"{out_dir}: directory is not empty ({', '.join(entries[:3])}"
            f"{', ...' if len(entries) > 3 else ''}); --overwrite replaces only "
            f"{', '.join(FILES)} and keeps the rest"
        )


def _progress(items: range, enabled: bool, name: str) -> Iterable[int]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"synthetic {name}", unit="subject", file=sys.stderr)
