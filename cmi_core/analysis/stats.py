"""Paired statistics for comparing configs: the competition score from confusion counts, a
paired bootstrap over validation subjects, a Wilcoxon signed-rank test and wins/ties/losses.

The bootstrap resamples *subjects* (folds are grouped by subject, so subjects, not sequences,
are the independent units) and applies the same resample to both configs of a pair: that is
what makes it paired. Per-subject confusion counts make each replicate one matrix product, so
thousands of replicates over 15 (fold, seed) pairs take well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from cmi_core.data.schema import GESTURE_INDEX, GESTURE_TO_NINE, NINE_CLASSES

_NON_TARGET = NINE_CLASSES.index("non_target")
TIE = 1e-12
"""Paired differences this close to zero count as ties."""


def class_index(gestures: Sequence[str]) -> np.ndarray:
    """Gesture names -> index into ``NINE_CLASSES`` (the 9 classes the macro F1 runs over)."""
    return GESTURE_TO_NINE[np.array([GESTURE_INDEX[g] for g in gestures], dtype=np.int64)]


def subject_confusions(
    subjects: Sequence[str], truth: Sequence[str], pred: Sequence[str], order: Sequence[str]
) -> np.ndarray:
    """Confusion counts ``[len(order), 9, 9]`` (truth x prediction) of each subject in ``order``."""
    row = {s: i for i, s in enumerate(order)}
    counts = np.zeros((len(order), len(NINE_CLASSES), len(NINE_CLASSES)), dtype=np.float64)
    rows = np.array([row[s] for s in subjects], dtype=np.int64)
    np.add.at(counts, (rows, class_index(truth), class_index(pred)), 1.0)
    return counts


def score_confusion(confusion: np.ndarray) -> np.ndarray:
    """The competition score of confusion matrices ``[..., 9, 9]`` (same as
    :func:`cmi_core.metrics.competition_score`: macro F1 over classes present in truth or
    prediction, binary F1 of target vs non-target)."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    truth, pred = confusion.sum(axis=-1), confusion.sum(axis=-2)
    present = (truth + pred) > 0
    f1 = np.divide(2 * tp, truth + pred, out=np.zeros_like(tp), where=present)
    macro = np.divide(
        (f1 * present).sum(axis=-1),
        present.sum(axis=-1),
        out=np.zeros(f1.shape[:-1]),
        where=present.sum(axis=-1) > 0,
    )
    nt = _NON_TARGET
    bin_tp = confusion[..., :nt, :nt].sum(axis=(-2, -1))
    bin_fp = confusion[..., nt, :nt].sum(axis=-1)
    bin_fn = confusion[..., :nt, nt].sum(axis=-1)
    denominator = 2 * bin_tp + bin_fp + bin_fn
    binary = np.divide(
        2 * bin_tp, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return 0.5 * binary + 0.5 * macro


@attrs.frozen
class PairedResult:
    """A config against the baseline over ``n`` (fold, seed) pairs."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    ties: int
    losses: int


def paired_bootstrap_ci(
    confusions: np.ndarray,
    baseline: np.ndarray,
    fold_of_subject: np.ndarray,
    *,
    replicates: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval of the mean paired fold-score difference, resampling subjects within folds.

    ``confusions`` and ``baseline`` are ``[pairs, subjects, 9, 9]`` (the same pairs and subjects
    in both); ``fold_of_subject[j]`` is subject j's validation fold. Each replicate draws the
    subjects of every fold with replacement and scores both configs on that same draw.
    """
    rng = np.random.default_rng(seed)
    weights = np.zeros((replicates, len(fold_of_subject)))
    for fold in np.unique(fold_of_subject):
        members = np.flatnonzero(fold_of_subject == fold)
        draws = rng.integers(0, len(members), size=(replicates, len(members)))
        np.add.at(weights, (np.arange(replicates)[:, None], members[draws]), 1.0)
    diffs = score_confusion(np.einsum("rs,psij->rpij", weights, confusions)) - score_confusion(
        np.einsum("rs,psij->rpij", weights, baseline)
    )
    means = diffs.mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1.0 when every difference is a tie."""
    from scipy.stats import wilcoxon

    values = np.asarray(diffs, dtype=np.float64)
    if np.all(np.abs(values) <= TIE):
        return 1.0
    return float(wilcoxon(values, zero_method="wilcox").pvalue)


def wins_ties_losses(diffs: Sequence[float]) -> tuple[int, int, int]:
    values = np.asarray(diffs, dtype=np.float64)
    return (
        int(np.sum(values > TIE)),
        int(np.sum(np.abs(values) <= TIE)),
        int(np.sum(values < -TIE)),
    )


def compare_paired(
    confusions: np.ndarray, baseline: np.ndarray, fold_of_subject: np.ndarray, *, seed: int = 0
) -> PairedResult:
    """Everything :class:`PairedResult` holds, from per-pair, per-subject confusion counts."""
    diffs = score_confusion(confusions.sum(axis=1)) - score_confusion(baseline.sum(axis=1))
    low, high = paired_bootstrap_ci(confusions, baseline, fold_of_subject, seed=seed)
    wins, ties, losses = wins_ties_losses(diffs)
    return PairedResult(
        n=len(diffs),
        mean_diff=float(diffs.mean()),
        ci_low=low,
        ci_high=high,
        p_value=wilcoxon_p(diffs),
        wins=wins,
        ties=ties,
        losses=losses,
    )
