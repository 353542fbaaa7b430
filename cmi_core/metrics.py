"""The official competition score of the Kaggle evaluation, exactly.

``0.5 * binary F1 (target vs non-target) + 0.5 * macro F1 over the 8 targets + non_target``,
where the macro average runs over the labels present in truth or prediction (scikit-learn's
default when ``labels`` is not given) with ``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmi_core.data.schema import GESTURES, TARGET_GESTURES

_TARGETS = frozenset(TARGET_GESTURES)
_KNOWN = frozenset(GESTURES)


def _f1(tp: int, fp: int, fn: int) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def competition_score(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """Score gesture-name predictions; returns ``cmi_score``, ``binary_f1`` and ``macro_f1``.

    Raises ``ValueError`` for a name that is not one of the 18 gestures, as Kaggle does.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    unknown = (set(y_true) | set(y_pred)) - _KNOWN
    if unknown:
        raise ValueError(f"not one of the 18 gestures: {sorted(unknown)}")
    true = np.array([g if g in _TARGETS else "non_target" for g in y_true], dtype=object)
    pred = np.array([g if g in _TARGETS else "non_target" for g in y_pred], dtype=object)

    true_target, pred_target = true != "non_target", pred != "non_target"
    binary = _f1(
        int(np.sum(true_target & pred_target)),
        int(np.sum(~true_target & pred_target)),
        int(np.sum(true_target & ~pred_target)),
    )
    labels = sorted(set(true) | set(pred))
    per_class = [
        _f1(
            int(np.sum((true == c) & (pred == c))),
            int(np.sum((true != c) & (pred == c))),
            int(np.sum((true == c) & (pred != c))),
        )
        for c in labels
    ]
    macro = float(np.mean(per_class)) if per_class else 0.0
    return {"cmi_score": 0.5 * binary + 0.5 * macro, "binary_f1": binary, "macro_f1": macro}


def score_indices(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """:func:`competition_score` for class indices into ``GESTURES``."""
    return competition_score([GESTURES[i] for i in y_true], [GESTURES[i] for i in y_pred])
