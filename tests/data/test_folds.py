"""Subject-grouped stratified folds."""

from __future__ import annotations

import numpy as np
import pytest

from cmi_core.data.folds import assign_folds
from cmi_core.errors import DataError


def toy(n_subjects: int = 10, per_subject: int = 36) -> tuple[np.ndarray, np.ndarray]:
    subjects = np.repeat([f"SUBJ_{i:06d}" for i in range(n_subjects)], per_subject)
    labels = np.tile(np.arange(18), n_subjects * per_subject // 18)
    return subjects, labels


def test_no_subject_in_two_folds() -> None:
    subjects, labels = toy()
    folds = assign_folds(subjects, labels, 5, seed=42)
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]
    for subject in np.unique(subjects):
        assert len(set(folds[subjects == subject].tolist())) == 1
    for fold in range(5):
        assert len(np.unique(subjects[folds == fold])) == 2
        assert len(np.unique(labels[folds == fold])) == 18  # stratified: every gesture


def test_deterministic_for_a_seed() -> None:
    subjects, labels = toy()
    first = assign_folds(subjects, labels, 5, seed=1)
    np.testing.assert_array_equal(first, assign_folds(subjects, labels, 5, seed=1))
    others = [assign_folds(subjects, labels, 5, seed=s) for s in range(2, 6)]
    assert any(not np.array_equal(first, other) for other in others)


def test_too_many_folds_for_the_subjects() -> None:
    subjects, labels = toy(n_subjects=3)
    with pytest.raises(DataError, match="only 3 subjects") as info:
        assign_folds(subjects, labels, 5, seed=0)
    assert "\n" not in str(info.value)
