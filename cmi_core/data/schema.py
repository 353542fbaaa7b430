"""The Kaggle CMI schema and label maps, defined once and by name.

Every other module takes column lists, gesture names and the 18 -> 9 / 18 -> binary maps from
here. The maps are built by looking names up, never by position: in ``sorted()`` order the 8
targets are indices 0, 1, 3, 4, 6, 7, 9, 10, and assuming "the first 8" is the bug that broke
the original exp024/exp025 KL term.
"""

from __future__ import annotations

import numpy as np

# -- labels ----------------------------------------------------------------------------------

TARGET_GESTURES: tuple[str, ...] = (
    "Above ear - pull hair",
    "Cheek - pinch skin",
    "Eyebrow - pull hair",
    "Eyelash - pull hair",
    "Forehead - pull hairline",
    "Forehead - scratch",
    "Neck - pinch skin",
    "Neck - scratch",
)
NON_TARGET_GESTURES: tuple[str, ...] = (
    "Write name on leg",
    "Wave hello",
    "Glasses on/off",
    "Text on phone",
    "Write name in air",
    "Feel around in tray and pull out an object",
    "Scratch knee/leg skin",
    "Pull air toward your face",
    "Drink from bottle/cup",
    "Pinch knee/leg skin",
)
GESTURES: tuple[str, ...] = tuple(sorted(TARGET_GESTURES + NON_TARGET_GESTURES))
NINE_CLASSES: tuple[str, ...] = (*TARGET_GESTURES, "non_target")
GESTURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(GESTURES)}

GESTURE_IS_TARGET: np.ndarray = np.array([g in TARGET_GESTURES for g in GESTURES], dtype=bool)
GESTURE_TO_NINE: np.ndarray = np.array(
    [
        TARGET_GESTURES.index(g) if g in TARGET_GESTURES else NINE_CLASSES.index("non_target")
        for g in GESTURES
    ],
    dtype=np.int64,
)

# -- categorical values ----------------------------------------------------------------------

ORIENTATIONS: tuple[str, ...] = (
    "Seated Straight",
    "Lie on Back",
    "Lie on Side - Non Dominant",
    "Seated Lean Non Dom - FACE DOWN",
)
MOVE_BEHAVIORS: tuple[str, ...] = (
    "Moves hand to target location",
    "Relaxes and moves hand to target location",
)
PAUSE_BEHAVIOR = "Hand at target location"
GESTURE_BEHAVIOR = "Performs gesture"
BEHAVIORS: tuple[str, ...] = (*MOVE_BEHAVIORS, PAUSE_BEHAVIOR, GESTURE_BEHAVIOR)
PHASES: tuple[str, ...] = ("Transition", "Gesture")
SEQUENCE_TYPES: tuple[str, ...] = ("Target", "Non-Target")
FRAME_LABELS: dict[str, tuple[str, ...]] = {"phase": PHASES, "behavior": BEHAVIORS}
"""The per-frame label columns of train.csv and their classes (index = class id)."""

COMPOSITE_CLASSES: tuple[tuple[str, str, str], ...] = tuple(
    (orientation, gesture, behavior)
    for orientation in ORIENTATIONS
    for gesture in GESTURES
    for behavior in MOVE_BEHAVIORS
)
"""The composite target (orientation, gesture, initial behaviour), one fixed layout for every
run and fold (so fold models average): 4 x 18 x 2 = 144 classes, of which the training data
holds about 102 (the others never are a target)."""
COMPOSITE_INDEX: dict[tuple[str, str, str], int] = {c: i for i, c in enumerate(COMPOSITE_CLASSES)}

_SEATED_ONLY = ("Seated Straight",)
_LEAN_ONLY = ("Seated Lean Non Dom - FACE DOWN",)
_NOT_LEAN = ORIENTATIONS[:3]
ORIENTATION_GESTURES: dict[str, tuple[str, ...]] = {
    **{g: ORIENTATIONS for g in TARGET_GESTURES},
    "Drink from bottle/cup": _SEATED_ONLY,
    "Feel around in tray and pull out an object": _SEATED_ONLY,
    "Glasses on/off": _SEATED_ONLY,
    "Pinch knee/leg skin": _LEAN_ONLY,
    "Scratch knee/leg skin": _LEAN_ONLY,
    "Write name on leg": _LEAN_ONLY,
    "Pull air toward your face": _NOT_LEAN,
    "Wave hello": _NOT_LEAN,
    "Write name in air": _NOT_LEAN,
    "Text on phone": ORIENTATIONS,
}
"""Orientations each gesture is recorded in (51 valid pairs, docs/data.md)."""

# -- columns ---------------------------------------------------------------------------------

ACC_COLUMNS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z")
ROT_COLUMNS: tuple[str, ...] = ("rot_w", "rot_x", "rot_y", "rot_z")
IMU_COLUMNS: tuple[str, ...] = ACC_COLUMNS + ROT_COLUMNS
THM_COLUMNS: tuple[str, ...] = tuple(f"thm_{i}" for i in range(1, 6))
TOF_SENSORS = 5
TOF_PIXELS = 64
TOF_COLUMNS: tuple[str, ...] = tuple(
    f"tof_{s}_v{p}" for s in range(1, TOF_SENSORS + 1) for p in range(TOF_PIXELS)
)
SENSOR_COLUMNS: tuple[str, ...] = IMU_COLUMNS + THM_COLUMNS + TOF_COLUMNS

TRAIN_ONLY_COLUMNS: tuple[str, ...] = (
    "sequence_type",
    "orientation",
    "behavior",
    "phase",
    "gesture",
)
TRAIN_COLUMNS: tuple[str, ...] = (
    "row_id",
    "sequence_type",
    "sequence_id",
    "sequence_counter",
    "subject",
    "orientation",
    "behavior",
    "phase",
    "gesture",
    *SENSOR_COLUMNS,
)
TEST_COLUMNS: tuple[str, ...] = tuple(c for c in TRAIN_COLUMNS if c not in TRAIN_ONLY_COLUMNS)

DEMOGRAPHIC_FEATURES: tuple[str, ...] = (
    "adult_child",
    "age",
    "sex",
    "handedness",
    "height_cm",
    "shoulder_to_wrist_cm",
    "elbow_to_wrist_cm",
)
DEMOGRAPHICS_COLUMNS: tuple[str, ...] = ("subject", *DEMOGRAPHIC_FEATURES)
