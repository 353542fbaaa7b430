"""The competition metric against hand-worked cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from cmi_core.data.schema import GESTURES, TARGET_GESTURES
from cmi_core.metrics import competition_score, score_indices


def test_worked_cases_from_the_metric_docstring():
    truth = ["Eyebrow - pull hair"] * 4
    assert competition_score(truth, ["Forehead - pull hairline"] * 4)["cmi_score"] == 0.5
    assert competition_score(truth, ["Text on phone"] * 4)["cmi_score"] == 0.0
    assert competition_score(truth, truth)["cmi_score"] == 1.0


def test_confusing_two_non_targets_costs_nothing():
    truth = ["Text on phone", "Wave hello", "Neck - scratch"]
    pred = ["Wave hello", "Drink from bottle/cup", "Neck - scratch"]
    assert competition_score(truth, pred)["cmi_score"] == 1.0


def test_hand_computed_mixed_case():
    # truth: T1 T1 T2 N ; pred: T1 T2 T2 T1   (T1 = Cheek, T2 = Neck - scratch, N = Wave hello)
    truth = ["Cheek - pinch skin", "Cheek - pinch skin", "Neck - scratch", "Wave hello"]
    pred = ["Cheek - pinch skin", "Neck - scratch", "Neck - scratch", "Cheek - pinch skin"]
    # binary: tp 3, fp 1, fn 0 -> 6/7
    # macro over {T1, T2, non_target}: T1 tp1 fp1 fn1 -> 1/2; T2 tp1 fp1 fn0 -> 2/3; N -> 0
    result = competition_score(truth, pred)
    assert result["binary_f1"] == pytest.approx(6 / 7)
    assert result["macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert result["cmi_score"] == pytest.approx(0.5 * 6 / 7 + 0.5 * (7 / 6) / 3)


def test_unknown_gesture_is_rejected():
    with pytest.raises(ValueError, match="not one of the 18 gestures"):
        competition_score(["Wave hello"], ["wave hello"])


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 18, 200)
    pred = np.where(rng.random(200) < 0.5, truth, rng.integers(0, 18, 200))
    names_true = [GESTURES[i] for i in truth]
    names_pred = [GESTURES[i] for i in pred]
    is_target = set(TARGET_GESTURES)
    binary = f1_score(
        [g in is_target for g in names_true],
        [g in is_target for g in names_pred],
        average="binary",
        pos_label=True,
        zero_division=0,
    )
    collapse = [g if g in is_target else "non_target" for g in names_true]
    collapse_pred = [g if g in is_target else "non_target" for g in names_pred]
    macro = f1_score(collapse, collapse_pred, average="macro", zero_division=0)
    result = score_indices(truth, pred)
    assert result["binary_f1"] == pytest.approx(binary, abs=1e-12)
    assert result["macro_f1"] == pytest.approx(macro, abs=1e-12)
    assert result["cmi_score"] == pytest.approx(0.5 * binary + 0.5 * macro, abs=1e-12)


def test_no_target_anywhere_gives_a_binary_f1_of_zero():
    # no true and no predicted target: the binary F1 is 0/0, which is 0 (zero_division=0)
    truth = ["Text on phone", "Wave hello"]
    result = competition_score(truth, truth)
    assert result["binary_f1"] == f1_score([False, False], [False, False], zero_division=0) == 0
    assert result["macro_f1"] == 1.0  # non_target alone, all right
    assert result["cmi_score"] == 0.5


def test_a_length_mismatch_is_rejected_with_both_lengths():
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        competition_score(["Wave hello", "Text on phone"], ["Wave hello"])
