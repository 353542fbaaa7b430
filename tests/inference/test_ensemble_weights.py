"""Ensemble weights chosen on OOF predictions, nested within the folds (``cmi ensemble
--fit-weights``): the grid, a fold's weights never see that fold's labels, and the CLI."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from cmi_core.analysis.ensemble import EnsembleInputs, oof_score
from cmi_core.analysis.ensemble_weights import nested_weights, simplex_grid
from cmi_core.cli import main
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from tests.inference.test_ensemble import disagreeing_run


@pytest.mark.parametrize(("n_runs", "steps"), [(2, 10), (3, 10), (4, 8), (3, 3)])
def test_the_grid_is_every_weighting_in_steps_with_equal_first(n_runs: int, steps: int) -> None:
    grid = simplex_grid(n_runs, steps)
    assert len(grid) == math.comb(steps - 1, n_runs - 1)
    assert len({tuple(np.round(w * steps).astype(int)) for w in grid}) == len(grid)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert grid.min() >= 1 / steps - 1e-12
    distance = np.abs(grid - 1 / n_runs).sum(axis=1)
    assert distance[0] == distance.min()


def test_a_grid_too_fine_or_too_coarse_is_refused() -> None:
    with pytest.raises(RunError, match="at least one step per run"):
        simplex_grid(3, 2)
    with pytest.raises(RunError, match="lower it"):
        simplex_grid(6, 100)


def one_hot(rows: list[int]) -> np.ndarray:
    probs = np.full((len(rows), len(GESTURES)), 0.01)
    probs[np.arange(len(rows)), rows] = 0.8
    return probs


def test_each_folds_weights_are_chosen_without_its_labels() -> None:
    # 3 folds of 6 sequences. Run a is right on folds 1 and 2, wrong on fold 0; run b the
    # reverse. Weights chosen with fold 0's labels would favour b on fold 0.
    truth = [i % len(GESTURES) for i in range(18)]
    folds = np.repeat([0, 1, 2], 6)
    wrong = [(t + 1) % len(GESTURES) for t in truth]
    a = one_hot([w if f == 0 else t for t, w, f in zip(truth, wrong, folds, strict=True)])
    b = one_hot([t if f == 0 else w for t, w, f in zip(truth, wrong, folds, strict=True)])
    frame = pl.DataFrame({"gesture": [GESTURES[t] for t in truth], "fold": folds})
    inputs = EnsembleInputs(["a", "b"], np.array([0.5, 0.5]), frame, [a, b])
    result = nested_weights(inputs, steps=4)
    assert result.per_fold[0] == [0.75, 0.25]  # chosen on folds 1, 2: a is right there
    # fold 0 is scored with a's favour and gets every sequence wrong; folds 1, 2 mix a and b
    expected = np.zeros_like(a)
    for k, weights in result.per_fold.items():
        rows = folds == k
        expected[rows] = weights[0] * a[rows] + weights[1] * b[rows]
    assert result.nested == pytest.approx(oof_score(frame["gesture"].to_list(), expected))
    assert result.nested < oof_score(frame["gesture"].to_list(), 0.25 * a + 0.75 * b)


def test_cmi_ensemble_fits_weights_and_prints_them_for_predict(tiny_run, tmp_path, capsys):
    other = disagreeing_run(tiny_run[0], tmp_path / "other")
    assert main(["ensemble", str(tiny_run[0]), str(other), "--fit-weights"]) == 0
    out = capsys.readouterr().out
    assert "nested OOF cmi_score" in out
    weights = out.strip().splitlines()[-1].split("--weights ")[1]
    values = [float(w) for w in weights.split(",")]
    assert len(values) == 2 and sum(values) == pytest.approx(1.0)


def test_fit_weights_with_given_weights_is_refused(tiny_run, tmp_path, capsys):
    other = disagreeing_run(tiny_run[0], tmp_path / "other")
    args = ["ensemble", str(tiny_run[0]), str(other), "--fit-weights", "--weights", "1,2"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--fit-weights chooses the weights" in err and err.count("\n") == 1


def test_fit_weights_needs_two_runs(tiny_run, capsys):
    assert main(["ensemble", str(tiny_run[0]), "--fit-weights"]) == 2
    assert "at least two runs" in capsys.readouterr().err
