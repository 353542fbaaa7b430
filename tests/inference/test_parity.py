"""Train/inference parity: ``predict`` on raw CSV rows reproduces the run's OOF predictions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from cmi_core.data.schema import GESTURES
from cmi_core.predict.predictor import Predictor
from tests.inference.gateway import gateway_calls


def _oof(run_dir, fold: int) -> pl.DataFrame:
    return pl.read_csv(run_dir / "oof_predictions.csv").filter(pl.col("fold") == fold)


@pytest.mark.parametrize(
    ("run", "fold"),
    [("tiny_run", 0), ("tiny_run", 1), ("tiny_thm_tof_run", 0), ("tiny_downsampled_run", 0)],
)
def test_single_fold_predictor_reproduces_the_oof_rows_of_its_fold(request, run, fold):
    """IMU-only, thermopile/ToF and downsampled features alike: raw rows through ``predict``
    give the probabilities the run recorded for its validation sequences."""
    run_dir, data_dir = request.getfixturevalue(run)
    oof = _oof(run_dir, fold)
    assert len(oof) > 50  # a real validation fold, not a handful of rows
    predictor = Predictor.from_run(run_dir, folds=[fold])

    calls = {
        sid: (seq, demo)
        for sid, seq, demo in gateway_calls(data_dir, "train", only=set(oof["sequence_id"]))
    }
    ids = oof["sequence_id"].to_list()
    probs = np.stack([predictor.predict_proba(*calls[sid]) for sid in ids])
    labels = [predictor.predict(*calls[sid]) for sid in ids]

    np.testing.assert_allclose(probs, oof.select(GESTURES).to_numpy(), rtol=0, atol=1e-5)
    assert labels == oof["prediction"].to_list()


def test_the_other_folds_model_does_not_reproduce_a_fold(tiny_run):
    """The parity above is about the right checkpoint, not about any model of the run."""
    run_dir, data_dir = tiny_run
    oof = _oof(run_dir, 0).head(20)
    other = Predictor.from_run(run_dir, folds=[1])
    calls = gateway_calls(data_dir, "train", only=set(oof["sequence_id"]))
    probs = {sid: other.predict_proba(seq, demo) for sid, seq, demo in calls}
    stacked = np.stack([probs[sid] for sid in oof["sequence_id"]])
    assert np.abs(stacked - oof.select(GESTURES).to_numpy()).max() > 1e-3


def test_the_full_predictor_averages_the_fold_probabilities(tiny_run):
    run_dir, data_dir = tiny_run
    _, sequence, demographics = next(gateway_calls(data_dir, "test"))
    per_fold = [
        Predictor.from_run(run_dir, folds=[k]).predict_proba(sequence, demographics) for k in (0, 1)
    ]
    both = Predictor.from_run(run_dir)
    assert [e.folds for e in both.ensembles] == [(0, 1)]
    np.testing.assert_allclose(
        both.predict_proba(sequence, demographics), (per_fold[0] + per_fold[1]) / 2, atol=1e-6
    )
