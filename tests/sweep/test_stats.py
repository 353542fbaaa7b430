"""The comparison statistics against hand-computed cases and the official metric."""

from __future__ import annotations

import numpy as np
import pytest

from cmi_core.analysis.stats import (
    compare_paired,
    paired_bootstrap_ci,
    score_confusion,
    subject_confusions,
    wilcoxon_p,
    wins_ties_losses,
)
from cmi_core.data.schema import GESTURES, NON_TARGET_GESTURES, TARGET_GESTURES
from cmi_core.metrics import competition_score

T1, T2 = TARGET_GESTURES[:2]
N1 = NON_TARGET_GESTURES[0]


def _score(truth: list[str], pred: list[str]) -> float:
    confusion = subject_confusions(["s"] * len(truth), truth, pred, ["s"])
    return float(score_confusion(confusion.sum(axis=0)))


def test_score_from_confusion_by_hand() -> None:
    # binary: tp 1, fp 0, fn 1 -> 2/3; macro over {T1, non_target}: T1 2/3, non_target 2/3
    assert _score([T1, T1, N1], [T1, N1, N1]) == pytest.approx(2 / 3)
    # every target predicted as another target: binary F1 1, macro F1 0
    assert _score([T1, T1], [T2, T2]) == pytest.approx(0.5)


def test_score_from_confusion_matches_the_competition_metric() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        truth = list(rng.choice(GESTURES, size=40))
        pred = [t if rng.random() < 0.5 else rng.choice(GESTURES) for t in truth]
        assert _score(truth, pred) == pytest.approx(competition_score(truth, pred)["cmi_score"])


def test_wins_ties_losses_by_hand() -> None:
    assert wins_ties_losses([0.1, 0.0, -0.2, 0.3]) == (2, 1, 1)


def test_wilcoxon_by_hand() -> None:
    # five positive differences: the exact two-sided p is 2 * (1/2)^5 = 0.0625
    assert wilcoxon_p([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx(0.0625)
    # ranks 1..4 with signs + - + +: W- = 2, P(W <= 2) = 3/16 -> two-sided 0.375
    assert wilcoxon_p([0.1, -0.2, 0.3, 0.4]) == pytest.approx(0.375)
    assert wilcoxon_p([0.0, 0.0, 0.0]) == 1.0


def _pairs(truth: list[str], preds: list[list[str]], subjects: list[str]) -> np.ndarray:
    order = sorted(set(subjects))
    return np.stack([subject_confusions(subjects, truth, p, order) for p in preds])


def test_bootstrap_of_a_constant_difference_is_that_difference() -> None:
    subjects = ["a", "a", "b", "b"]
    truth = [T1] * 4
    perfect = _pairs(truth, [truth], subjects)
    wrong = _pairs(truth, [[N1] * 4], subjects)  # binary 0, macro 0
    folds = np.array([0, 0])
    assert paired_bootstrap_ci(perfect, wrong, folds, replicates=200) == (1.0, 1.0)
    assert paired_bootstrap_ci(perfect, perfect, folds, replicates=200) == (0.0, 0.0)


def test_bootstrap_interval_is_paired_and_covers_the_mean() -> None:
    subjects = [s for s in "abcdef" for _ in range(4)]
    truth = [T1, T2, N1, T1] * 6
    rng = np.random.default_rng(0)
    noisy = [t if rng.random() < 0.7 else N1 for t in truth]
    base = _pairs(truth, [noisy], subjects)
    better = _pairs(truth, [[t if i % 5 else N1 for i, t in enumerate(noisy)]], subjects)
    folds = np.array([0, 0, 0, 1, 1, 1])
    result = compare_paired(base, base, folds)
    assert (result.mean_diff, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    assert (result.wins, result.ties, result.losses, result.p_value) == (0, 1, 0, 1.0)
    result = compare_paired(better, base, folds)
    assert result.ci_low <= result.mean_diff <= result.ci_high
    assert result.ci_low < result.ci_high


def test_paired_mean_difference_and_counts_by_hand() -> None:
    subjects = ["a", "b"]
    truth = [T1, T1]
    # pair 1: config perfect (1.0) vs baseline wrong (0.0); pair 2: both perfect (tie)
    mine = _pairs(truth, [truth, truth], subjects)
    base = _pairs(truth, [[N1, N1], truth], subjects)
    result = compare_paired(mine, base, np.array([0, 1]))
    assert result.mean_diff == pytest.approx(0.5)
    assert (result.n, result.wins, result.ties, result.losses) == (2, 1, 1, 0)
