"""The schema constants against the Kaggle files and the gesture list (docs/data.md)."""

from __future__ import annotations

import numpy as np

from cmi_core.data import schema


def test_column_counts_and_order() -> None:
    assert len(schema.TRAIN_COLUMNS) == 341
    assert len(schema.TEST_COLUMNS) == 336
    assert len(schema.DEMOGRAPHICS_COLUMNS) == 8
    assert schema.TRAIN_COLUMNS[:9] == (
        "row_id",
        "sequence_type",
        "sequence_id",
        "sequence_counter",
        "subject",
        "orientation",
        "behavior",
        "phase",
        "gesture",
    )
    assert schema.TRAIN_COLUMNS[9:21] == (
        "acc_x", "acc_y", "acc_z", "rot_w", "rot_x", "rot_y", "rot_z",
        "thm_1", "thm_2", "thm_3", "thm_4", "thm_5",
    )  # fmt: skip
    assert schema.TRAIN_COLUMNS[21] == "tof_1_v0"
    assert schema.TRAIN_COLUMNS[84] == "tof_1_v63"
    assert schema.TRAIN_COLUMNS[85] == "tof_2_v0"
    assert schema.TRAIN_COLUMNS[-1] == "tof_5_v63"
    assert schema.TEST_COLUMNS[:4] == ("row_id", "sequence_id", "sequence_counter", "subject")
    assert schema.TEST_COLUMNS[4:] == schema.TRAIN_COLUMNS[9:]
    assert schema.DEMOGRAPHICS_COLUMNS == (
        "subject", "adult_child", "age", "sex", "handedness",
        "height_cm", "shoulder_to_wrist_cm", "elbow_to_wrist_cm",
    )  # fmt: skip


def test_the_18_gestures_by_name() -> None:
    assert len(schema.GESTURES) == 18
    assert list(schema.GESTURES) == sorted(schema.GESTURES)
    assert schema.GESTURES[0] == "Above ear - pull hair"
    assert schema.GESTURES[2] == "Drink from bottle/cup"
    assert schema.GESTURES[17] == "Write name on leg"
    assert "Neck - scratch" in schema.TARGET_GESTURES
    assert "Scratch knee/leg skin" in schema.NON_TARGET_GESTURES
    assert schema.TARGET_GESTURES[0] == "Above ear - pull hair"
    assert schema.TARGET_GESTURES[-1] == "Neck - scratch"
    assert set(schema.TARGET_GESTURES).isdisjoint(schema.NON_TARGET_GESTURES)


def test_targets_are_not_the_first_sorted_indices() -> None:
    target_indices = [schema.GESTURES.index(g) for g in schema.TARGET_GESTURES]
    assert target_indices == [0, 1, 3, 4, 6, 7, 9, 10]
    assert list(schema.GESTURES[:8]) != list(schema.TARGET_GESTURES)


def test_maps_are_built_by_name() -> None:
    assert schema.GESTURE_TO_NINE.dtype == np.int64
    assert schema.GESTURE_IS_TARGET.dtype == bool
    assert schema.NINE_CLASSES[-1] == "non_target"
    for i, gesture in enumerate(schema.GESTURES):
        nine = schema.NINE_CLASSES[schema.GESTURE_TO_NINE[i]]
        if gesture in schema.TARGET_GESTURES:
            assert nine == gesture
            assert schema.GESTURE_IS_TARGET[i]
        else:
            assert nine == "non_target"
            assert not schema.GESTURE_IS_TARGET[i]
    assert sorted(set(schema.GESTURE_TO_NINE.tolist())) == list(range(9))
    assert schema.GESTURE_TO_NINE[schema.GESTURES.index("Cheek - pinch skin")] == 1
    assert schema.GESTURE_TO_NINE[schema.GESTURES.index("Neck - scratch")] == 7


def test_orientation_gesture_pairs() -> None:
    assert sum(len(o) for o in schema.ORIENTATION_GESTURES.values()) == 51
    assert set(schema.ORIENTATION_GESTURES) == set(schema.GESTURES)
    assert schema.ORIENTATION_GESTURES["Scratch knee/leg skin"] == (
        "Seated Lean Non Dom - FACE DOWN",
    )
    assert len(schema.ORIENTATIONS) == 4
    assert schema.PHASES == ("Transition", "Gesture")
