"""Cross-validation folds: stratified by gesture, grouped by subject.

Grouping by subject is what makes a CV score predict the hidden test set, whose subjects are
all new; stratifying keeps every gesture in every fold.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from cmi_core.errors import DataError


def assign_folds(subjects: np.ndarray, labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The validation fold (0 .. n_folds-1) of each sequence; deterministic for ``seed``."""
    n_subjects = len(np.unique(subjects))
    if n_folds < 2:
        raise DataError(f"cv.n_folds = {n_folds}: cross-validation needs at least 2 folds")
    if n_folds > n_subjects:
        raise DataError(
            f"cv.n_folds = {n_folds} but the data has only {n_subjects} subjects "
            "(folds are grouped by subject)"
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(subjects), -1, dtype=np.int64)
    for fold, (_, val) in enumerate(splitter.split(np.zeros(len(labels)), labels, subjects)):
        folds[val] = fold
    return folds
