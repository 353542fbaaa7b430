"""bench/bench_baselines.py without aeon: a method's predictions are cached under a digest of
what they depend on, and trained runs are paired against a method as ``cmi compare`` pairs
configs (tests/sweep/test_compare.py's hand-made run directories)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from cmi_core.analysis.compare import check_comparable, collect_runs, compare_groups
from cmi_core.data.schema import GESTURE_INDEX
from cmi_core.data.sequences import SequenceSet
from tests.sweep.test_compare import ONE_WRONG, RIGHT, ROWS, T1, write_run

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
baselines = importlib.import_module("bench_baselines")


def sequences(scale: float = 1.0) -> SequenceSet:
    rng = np.random.default_rng(0)
    return SequenceSet(
        sequence_ids=np.array([r[0] for r in ROWS]),
        subjects=np.array([r[1] for r in ROWS]),
        features=[rng.normal(size=(5, 3)).astype(np.float32) * scale for _ in ROWS],
        valid=[np.ones(5, dtype=bool) for _ in ROWS],
        demographics=np.zeros((len(ROWS), 7), dtype=np.float32),
        labels=np.array([GESTURE_INDEX[r[3]] for r in ROWS]),
        orientations=None,
        feature_names=("a", "b", "c"),
    )


def test_a_method_runs_once_per_inputs_and_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def method(train: np.ndarray, labels: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
        calls.append(len(test))
        return np.full(len(test), GESTURE_INDEX[T1])

    monkeypatch.setitem(baselines.METHODS, "minirocket", method)
    folds = np.array([r[2] for r in ROWS])
    first = baselines.baseline_predictions("minirocket", sequences(), folds, 4, tmp_path)
    again = baselines.baseline_predictions("minirocket", sequences(), folds, 4, tmp_path)
    assert (first[2], again[2]) == (False, True)
    np.testing.assert_array_equal(first[0], again[0])
    assert sum(calls) == len(ROWS)  # one call per fold, then none
    for changed in (
        (sequences(2.0), folds, 4),  # other data
        (sequences(), folds[::-1].copy(), 4),  # other folds
        (sequences(), folds, 8),  # other length
    ):
        assert not baselines.baseline_predictions("minirocket", *changed, tmp_path)[2]


def test_a_seeded_method_is_cached_per_seed_a_deterministic_one_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds: list[int] = []

    def method(train: np.ndarray, labels: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
        seeds.append(seed)
        return np.full(len(test), GESTURE_INDEX[T1])

    folds = np.array([r[2] for r in ROWS])  # two folds: two calls a computation
    for name in ("minirocket", "channel statistics"):
        monkeypatch.setitem(baselines.METHODS, name, method)
        for seed in (0, 1, 1):
            baselines.baseline_predictions(name, sequences(), folds, 4, tmp_path, seed)
    assert seeds == [0, 0, 1, 1, 0, 0]  # statistics draws nothing: computed once, at seed 0


def test_runs_over_seeds_pair_with_a_deterministic_method_per_fold(tmp_path: Path) -> None:
    runs = collect_runs(
        [write_run(tmp_path / f"s{seed}", RIGHT, seed=seed, strategy="none") for seed in (0, 1)]
    )
    check_comparable(runs)
    data = sequences()
    folds = np.array([r[2] for r in ROWS])
    method = np.array([GESTURE_INDEX[g] for g in ONE_WRONG])  # wrong once, in fold 0
    for run in runs:
        np.testing.assert_array_equal(
            baselines.check_folds(run, data, folds), [GESTURE_INDEX[T1]] * len(ROWS)
        )
    groups = {
        "minirocket": baselines.as_runs("minirocket", {0: method, 1: method}, data, folds),
        "none": runs,
    }
    result = compare_groups(groups, "minirocket").configs[1].vs_baseline
    assert result is not None
    assert (result.n, result.wins, result.ties, result.losses) == (4, 2, 2, 0)
    assert result.n_subjects == 4 and result.n_folds == 2
    assert result.mean_diff > 0
    # a seeded baseline: each seed's own draw is the partner of that seed's run
    right = np.full(len(ROWS), GESTURE_INDEX[T1])
    groups["minirocket"] = baselines.as_runs("minirocket", {0: method, 1: right}, data, folds)
    result = compare_groups(groups, "minirocket").configs[1].vs_baseline
    assert (result.n, result.wins, result.ties, result.losses) == (4, 1, 3, 0)


def test_a_run_on_other_folds_is_refused(tmp_path: Path) -> None:
    run = collect_runs([write_run(tmp_path / "r", RIGHT, seed=0, strategy="none")])[0]
    folds = 1 - np.array([r[2] for r in ROWS])
    with pytest.raises(SystemExit, match="folds or sequences differ"):
        baselines.check_folds(run, sequences(), folds)


def test_an_unknown_ensemble_member_is_a_one_line_exit(tmp_path: Path) -> None:
    write_run(tmp_path / "r", RIGHT, seed=0, strategy="none")
    with pytest.raises(
        SystemExit,
        match=r"^bench_baselines.py: --ensemble nope: no such config; the configs are: r$",
    ):
        baselines.run_groups([str(tmp_path / "r")], ["nope + r"], fit=False)
