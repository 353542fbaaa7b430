"""``cmi ensemble --fit-weights``: weights chosen on OOF rows, nested within the folds."""

from __future__ import annotations

import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomli_w

from cmi_core.analysis.fit_weights import (
    GRID_STEPS,
    choose_weights,
    fit_weights_report,
    nested_fit,
    simplex_grid,
)
from cmi_core.cli import main
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.metrics import competition_score
from cmi_core.predict.predictor import Predictor
from tests.inference.gateway import gateway_calls
from tests.inference.test_ensemble import _with_max_len, cli_without_torch, disagreeing_run
from tests.inference.test_errors import one_line_error

N = len(GESTURES)


@pytest.mark.parametrize("n_members", [1, 2, 3, 4])
def test_the_grid_is_every_positive_split_of_ten(n_members):
    grid = simplex_grid(n_members)
    assert (grid.sum(axis=1) == GRID_STEPS).all() and (grid >= 1).all()
    assert len({tuple(p) for p in grid}) == len(grid) == math.comb(GRID_STEPS - 1, n_members - 1)


def _two_runs(right_for_a: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """One row of each gesture per fold. Where ``right_for_a``, run A gives the truth 0.55 and
    the gesture before it 0.45 while B gives them 0.2 and 0.8; elsewhere A and B swap. Only a
    weight of 0.9 on the run that is right gets a row right."""
    truth = np.tile(np.arange(N), len(right_for_a) // N)
    wrong = (truth - 1) % N
    rows = np.arange(len(truth))
    good, bad = np.zeros((len(truth), N)), np.zeros((len(truth), N))
    good[rows, truth], good[rows, wrong] = 0.55, 0.45
    bad[rows, truth], bad[rows, wrong] = 0.2, 0.8
    a = np.where(right_for_a[:, None], good, bad)
    b = np.where(right_for_a[:, None], bad, good)
    return a, b, [GESTURES[i] for i in truth], [GESTURES[i] for i in wrong]


def test_each_folds_weights_never_see_its_labels():
    """Folds 0 and 1 are A's, folds 2 and 3 B's: a fold's own labels would pick its run, the
    other folds pick the other run, so every nested prediction is wrong."""
    folds = np.repeat(np.arange(4), N)
    a, b, gestures, wrong = _two_runs(folds < 2)
    fit = nested_fit([a, b], gestures, folds)
    assert fit.folds == [0, 1, 2, 3]
    assert [list(w) for w in fit.fold_weights] == [[0.1, 0.9]] * 2 + [[0.9, 0.1]] * 2
    for k in range(4):  # on its own rows alone, each fold would pick its own run
        own = folds == k
        expected = [0.9, 0.1] if k < 2 else [0.1, 0.9]
        picked = choose_weights([a[own], b[own]], list(np.array(gestures)[own]))
        assert list(picked) == expected
    predicted = [GESTURES[i] for i in fit.mixed.argmax(axis=1)]
    assert predicted == wrong
    score = competition_score(gestures, predicted)["cmi_score"]
    assert score < competition_score(gestures, gestures)["cmi_score"] == 1.0


def test_a_hand_computed_case():
    """Three folds: A is right on fold 0, B on folds 1 and 2. Fold 0 gets B's weights (0.1,
    0.9: its rows wrong); fold 1's come from folds 0 and 2, a tie between A's and B's run
    broken toward the first grid point, B's; fold 2's from folds 0 and 1, the same."""
    folds = np.repeat(np.arange(3), N)
    a, b, gestures, wrong = _two_runs(folds == 0)
    fit = nested_fit([a, b], gestures, folds)
    assert [list(w) for w in fit.fold_weights] == [[0.1, 0.9]] * 3
    np.testing.assert_allclose(fit.mixed, 0.1 * a + 0.9 * b)
    assert [GESTURES[i] for i in fit.mixed.argmax(axis=1)] == wrong[:N] + gestures[N:]


def test_ties_go_to_equal_weights():
    folds = np.repeat(np.arange(2), N)
    a, _, gestures, _ = _two_runs(np.ones(2 * N, dtype=bool))
    assert list(choose_weights([a, a.copy()], gestures)) == [0.5, 0.5]
    assert list(nested_fit([a, a, a], gestures, folds).fold_weights[0]) == pytest.approx(
        [0.3, 0.3, 0.4]  # 10 steps do not split in 3: the nearest to equal, first in order
    )


def test_one_fold_is_refused():
    a, b, gestures, _ = _two_runs(np.ones(N, dtype=bool))
    with one_line_error(RunError, r"needs OOF rows of at least 2 folds, got folds \[0\]"):
        nested_fit([a, b], gestures, np.zeros(N, dtype=int))


# -- run directories ---------------------------------------------------------------------------


def _new_oof(run_dir: Path, seed: int) -> Path:
    """Replace the run's OOF probabilities with others (a run that disagrees)."""
    oof = pl.read_csv(run_dir / "oof_predictions.csv")
    probs = np.random.default_rng(seed).dirichlet(np.ones(N), size=len(oof)).astype(np.float32)
    oof = oof.with_columns(pl.Series(g, probs[:, i]) for i, g in enumerate(GESTURES))
    oof.with_columns(prediction=pl.Series([GESTURES[i] for i in probs.argmax(1)])).write_csv(
        run_dir / "oof_predictions.csv"
    )
    return run_dir


def _with_seed(run_dir: Path, seed: int, out: Path) -> Path:
    """The run's config at another ``trainer.seed``, with other OOF probabilities."""
    shutil.copytree(run_dir, out)
    raw = tomllib.loads((out / "config.toml").read_text())
    raw["trainer"]["seed"] = seed
    (out / "config.toml").write_text(tomli_w.dumps(raw))
    return _new_oof(out, seed + 100)


@pytest.fixture
def other_family(tiny_run, tmp_path) -> Path:
    """Another config (``data.max_len`` 12) that predicts, with its own OOF probabilities."""
    return _new_oof(_with_max_len(tiny_run[0], 12, tmp_path / "short"), 1)


def test_cli_fits_saves_and_predict_uses_the_weights(tiny_run, other_family, tmp_path, capsys):
    run_dir, data_dir = tiny_run
    saved = tmp_path / "weights.txt"
    runs = [str(run_dir), str(other_family)]
    assert main(["ensemble", *runs, "--fit-weights", "--save-weights", str(saved)]) == 0
    out = capsys.readouterr().out.splitlines()
    report = fit_weights_report([run_dir, other_family])
    assert out[1].split() == [str(run_dir), f"{report.scores[0]:.4f}"]
    assert out[3].split() == ["equal", "weights", f"{report.equal:.4f}"]
    assert out[4].split() == ["nested", "fitted", "weights", f"{report.nested_score:.4f}"]
    assert [line.split()[1] for line in out[7:9]] == ["0:", "1:"]
    assert out[-2] == f"cmi predict ... --weights {report.weights_option}"
    assert saved.read_text() == report.weights_option + "\n"

    submission = tmp_path / "submission.csv"
    args = ["predict", *runs, "--data", str(data_dir), "--out", str(submission)]
    assert main([*args, "--weights", saved.read_text().strip()]) == 0
    predictor = Predictor.from_runs([run_dir, other_family], weights=report.run_weights)
    expected = {
        sid: predictor.predict(frame, demographics)
        for sid, frame, demographics in gateway_calls(data_dir, "test")
    }
    assert dict(pl.read_csv(submission).iter_rows()) == expected


def test_seeds_of_one_config_are_one_member(tiny_run, other_family, tmp_path):
    run_dir = tiny_run[0]
    seed_1 = _with_seed(run_dir, 1, tmp_path / "seed1")
    report = fit_weights_report([run_dir, other_family, seed_1])
    assert report.members == [[str(run_dir), str(seed_1)], [str(other_family)]]
    assert report.run_weights[0] == report.run_weights[2] == pytest.approx(report.weights[0] / 2)
    assert report.run_weights[1] == pytest.approx(report.weights[1])
    with one_line_error(RunError, "needs runs of at least 2 configs"):
        fit_weights_report([run_dir, seed_1])
    copy = disagreeing_run(run_dir, tmp_path / "copy")
    with one_line_error(RunError, r"the same config at the same seed \(trainer.seed = "):
        fit_weights_report([run_dir, copy, other_family])


def test_fit_weights_does_not_import_torch(tiny_run, other_family):
    lines = cli_without_torch(["ensemble", str(tiny_run[0]), str(other_family), "--fit-weights"])
    assert any("nested fitted weights" in line for line in lines)


def test_runs_of_other_folds_are_refused(tiny_run, other_family, tmp_path, capsys):
    swapped = tmp_path / "swapped"
    shutil.copytree(other_family, swapped)
    oof = pl.read_csv(swapped / "oof_predictions.csv")
    oof.with_columns(fold=1 - pl.col("fold")).write_csv(swapped / "oof_predictions.csv")
    assert main(["ensemble", str(tiny_run[0]), str(swapped), "--fit-weights"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the same sequences in different folds" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--save-weights", "w.txt"], "error: --save-weights writes the weights --fit-weights"),
        (["--fit-weights", "--weights", "1,2"], "error: --fit-weights chooses the weights"),
        (["--fit-weights", "--postprocess", "subject_prior"], "error: --fit-weights chooses"),
    ],
)
def test_cli_fit_weights_errors(tiny_run, other_family, tmp_path, capsys, extra, message):
    runs = [str(tiny_run[0]), str(other_family)]
    assert main(["ensemble", *runs, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "w.txt").exists()
