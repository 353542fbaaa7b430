"""What an ensemble of runs is worth, from their out-of-fold predictions alone.

The runs are read through :class:`~cmi_core.rundir.reader.RunDir`: the OOF rows of their
finished folds, checked for damage, and their data fingerprints, so runs of other data are
refused and one run given twice (or copied) is not counted twice. Each run's
``oof_predictions.csv`` holds one row per training sequence with the probability of every
gesture; averaging those columns (weighted) across runs and scoring the argmax is the ensemble's
OOF score, no model needed. ``cmi ensemble`` prints it; ``cmi predict`` weights the runs' fold
ensembles the same way (:func:`normalized_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.metrics import competition_score
from cmi_core.predict.weights import normalized_weights
from cmi_core.rundir.reader import OOF_KEYS, RunDir, data_differences


def check_same_rows(frames: Sequence[pl.DataFrame], run_dirs: Sequence[Path]) -> None:
    """Runs ensemble only over the same sequences in the same folds (the same CV split)."""
    first = frames[0].select(OOF_KEYS)
    for frame, run_dir in zip(frames[1:], run_dirs[1:], strict=True):
        keys = frame.select(OOF_KEYS)
        if keys.equals(first):
            continue
        detail = (
            f"{len(keys)} sequences in folds {sorted(set(keys['fold']))} against "
            f"{len(first)} in folds {sorted(set(first['fold']))}"
            if len(keys) != len(first) or not keys["sequence_id"].equals(first["sequence_id"])
            else "the same sequences in different folds"
        )
        raise RunError(
            f"{run_dir}: its OOF predictions do not cover the same sequences and folds as "
            f"{run_dirs[0]} ({detail}); an OOF ensemble needs runs of the same data and CV split"
        )


def _check_given_once(runs: Sequence[RunDir]) -> None:
    """One run named twice would count twice: weight it with ``--weights`` instead."""
    seen: dict[Path, RunDir] = {}
    for run in runs:
        first = seen.setdefault(run.path.resolve(), run)
        if first is not run:
            raise RunError(
                f"{run.path}: given twice (as {first.path}); give each run once and weight it "
                "with --weights"
            )


def _check_same_data(runs: Sequence[RunDir]) -> None:
    """Runs of other data cannot ensemble, however their sequences are named."""
    for run in runs[1:]:
        differing = data_differences(runs[0], run)
        if differing:
            raise RunError(
                f"{runs[0].path} and {run.path} use different data or folds "
                f"({', '.join(differing)} differ); an OOF ensemble needs runs of the same data "
                "and CV split"
            )


def _check_no_copies(frames: Sequence[pl.DataFrame], run_dirs: Sequence[Path]) -> None:
    """Two directories with the very same OOF probabilities are one run copied: refused, or
    the copy would count twice."""
    for j, frame in enumerate(frames):
        for i in range(j):
            if frame.select(GESTURES).equals(frames[i].select(GESTURES)):
                raise RunError(
                    f"{run_dirs[j]}: the same OOF predictions as {run_dirs[i]} (a copy of one "
                    "run); give each run once and weight it with --weights"
                )


def oof_score(gestures: Sequence[str], probs: np.ndarray) -> float:
    """The competition score of the argmax of ``probs`` (columns in ``GESTURES`` order)."""
    predictions = [GESTURES[i] for i in probs.argmax(axis=1)]
    return competition_score(list(gestures), predictions)["cmi_score"]


@attrs.frozen
class EnsembleReport:
    """Each run's OOF score, its weight, and the weighted ensemble's OOF score."""

    runs: list[str]
    weights: list[float]
    scores: list[float]
    ensemble: float
    n_sequences: int

    def table(self) -> str:
        width = max(len("ensemble"), *(len(run) for run in self.runs))
        lines = [f"{'run':<{width}}  weight  oof cmi_score"]
        lines += [
            f"{run:<{width}}  {weight:6.3f}  {score:.4f}"
            for run, weight, score in zip(self.runs, self.weights, self.scores, strict=True)
        ]
        lines.append(f"{'ensemble':<{width}}  {1:6.3f}  {self.ensemble:.4f}")
        lines.append(f"({self.n_sequences} out-of-fold sequences)")
        return "\n".join(lines)


@attrs.frozen(eq=False)
class EnsembleInputs:
    """The checked OOF rows of several runs: the first run's label columns (``frame``, sorted
    by ``sequence_id``), each run's probabilities and their weighted mean, in ``GESTURES``
    order."""

    names: list[str]
    weights: np.ndarray
    frame: pl.DataFrame
    probs: list[np.ndarray]

    @property
    def mixed(self) -> np.ndarray:
        return weighted_mean(self.probs, self.weights)


def weighted_mean(probs: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The ensemble's probabilities: the weighted mean in probability space (weights summing
    to 1), as :class:`~cmi_core.predict.predictor.Predictor` mixes the runs' fold means."""
    return sum(w * p for w, p in zip(weights, probs, strict=True))


def load_ensemble_inputs(
    run_dirs: Sequence[Path], weights: Sequence[float] | None = None
) -> EnsembleInputs:
    """Read and check the runs' OOF rows: same data, same rows, each run once, no copies."""
    w = normalized_weights(weights, len(run_dirs))
    runs = [RunDir(run_dir) for run_dir in run_dirs]
    _check_given_once(runs)
    frames = [run.oof().sort("sequence_id") for run in runs]
    _check_same_data(runs)
    check_same_rows(frames, run_dirs)
    _check_no_copies(frames, run_dirs)
    probs = [frame.select(GESTURES).to_numpy().astype(np.float64) for frame in frames]
    return EnsembleInputs([str(r) for r in run_dirs], w, frames[0], probs)


def ensemble_report(
    run_dirs: Sequence[Path], weights: Sequence[float] | None = None
) -> EnsembleReport:
    """Score every run and the weighted mean of their OOF probabilities."""
    inputs = load_ensemble_inputs(run_dirs, weights)
    gestures = inputs.frame["gesture"].to_list()
    return EnsembleReport(
        runs=inputs.names,
        weights=[float(x) for x in inputs.weights],
        scores=[oof_score(gestures, p) for p in inputs.probs],
        ensemble=oof_score(gestures, inputs.mixed),
        n_sequences=len(gestures),
    )
