"""Paired statistics for comparing configs: the competition score from confusion counts, a
paired bootstrap over validation subjects, a Wilcoxon signed-rank test and wins/ties/losses.

The bootstrap resamples *subjects* (folds are grouped by subject, so subjects, not sequences,
are the independent units) and applies the same resample to both configs of a pair: that is
what makes it paired. Per-subject confusion counts make each replicate one matrix product, so
thousands of replicates over 15 (fold, seed) pairs take well under a second.

The bootstrap is trusted only with enough subjects in every fold: resampling ``m`` subjects
gives a variance ``(m - 1) / m`` of the true one and a percentile interval that is too narrow
(8 subjects in 5 folds: 54 % coverage of a nominal 95 % interval in tests/sweep/test_stats.py).
With fewer than :data:`MIN_SUBJECTS_PER_FOLD` subjects in a fold the interval is instead a
Student-t interval over the folds' mean paired differences (folds hold disjoint subjects, so
they are the independent units); docs/experiments.md cites the rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np

from cmi_core.data.schema import GESTURE_INDEX, GESTURE_TO_NINE, NINE_CLASSES

_NON_TARGET = NINE_CLASSES.index("non_target")
TIE = 1e-12
"""Paired differences this close to zero count as ties."""
LEVEL = 0.95
"""The interval's nominal coverage, and ``1 - LEVEL`` the test's significance threshold."""
MIN_SUBJECTS_PER_FOLD = 10
"""Fewest validation subjects per fold for the subject bootstrap: its variance is then at least
0.9 of the true one (Efron & Tibshirani 1993, ch. 5 and 13; Davison & Hinkley 1997, 3.2)."""
BOOTSTRAP, T_FOLDS = "bootstrap", "t-folds"
"""The two intervals: the paired subject bootstrap, and a t-interval over fold differences."""


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
    """A config against the baseline over ``n`` (fold, seed) pairs, ``n_subjects`` validation
    subjects in ``n_folds`` folds; ``interval`` names how ``ci_low``/``ci_high`` were made."""

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    ties: int
    losses: int
    n_subjects: int
    n_folds: int
    interval: str

    @property
    def flags(self) -> tuple[str, ...]:
        """Why not to read this row at face value: ``few-subjects`` (the bootstrap was not
        trusted, the interval is the t-interval over folds), ``disagree`` (the interval
        excludes 0 and the test is not significant, or the reverse)."""
        flags = []
        if self.interval != BOOTSTRAP:
            flags.append("few-subjects")
        excludes_zero = self.ci_low > 0 or self.ci_high < 0
        has_interval = not math.isnan(self.ci_low)
        if has_interval and excludes_zero != (self.p_value < 1 - LEVEL):
            flags.append("disagree")
        return tuple(flags)


def paired_bootstrap_ci(
    confusions: np.ndarray,
    baseline: np.ndarray,
    fold_of_subject: np.ndarray,
    *,
    replicates: int = 2000,
    level: float = LEVEL,
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


def fold_t_interval(
    diffs: np.ndarray, pair_folds: np.ndarray, *, level: float = LEVEL
) -> tuple[float, float]:
    """Student-t interval of the mean over folds of each fold's mean paired difference (seeds
    averaged within a fold: they share its subjects). NaN with fewer than two folds."""
    from scipy.stats import t

    folds = np.unique(pair_folds)
    if len(folds) < 2:
        return math.nan, math.nan
    means = np.array([diffs[pair_folds == k].mean() for k in folds])
    half = t.ppf(0.5 + level / 2, len(folds) - 1) * means.std(ddof=1) / math.sqrt(len(folds))
    return float(means.mean() - half), float(means.mean() + half)


def subjects_per_fold(confusions: np.ndarray, fold_of_subject: np.ndarray) -> dict[int, int]:
    """Validation subjects with at least one scored sequence, counted per fold."""
    scored = confusions.sum(axis=(0, 2, 3)) > 0
    folds, counts = np.unique(fold_of_subject[scored], return_counts=True)
    return {int(k): int(c) for k, c in zip(folds, counts, strict=True)}


def compare_paired(
    confusions: np.ndarray,
    baseline: np.ndarray,
    fold_of_subject: np.ndarray,
    pair_folds: np.ndarray,
    *,
    seed: int = 0,
    replicates: int = 2000,
) -> PairedResult:
    """Everything :class:`PairedResult` holds, from per-pair, per-subject confusion counts;
    ``pair_folds[i]`` is pair i's validation fold. The interval is the subject bootstrap when
    every fold has :data:`MIN_SUBJECTS_PER_FOLD` subjects, else :func:`fold_t_interval`."""
    diffs = score_confusion(confusions.sum(axis=1)) - score_confusion(baseline.sum(axis=1))
    per_fold = subjects_per_fold(confusions + baseline, np.asarray(fold_of_subject))
    if min(per_fold.values(), default=0) >= MIN_SUBJECTS_PER_FOLD:
        interval = BOOTSTRAP
        low, high = paired_bootstrap_ci(
            confusions, baseline, fold_of_subject, replicates=replicates, seed=seed
        )
    else:
        interval = T_FOLDS
        low, high = fold_t_interval(diffs, np.asarray(pair_folds))
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
        n_subjects=sum(per_fold.values()),
        n_folds=len(np.unique(pair_folds)),
        interval=interval,
    )
