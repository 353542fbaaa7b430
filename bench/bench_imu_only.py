"""What a run trained on thermopile/ToF features scores when they are missing.

About half of the Kaggle test sequences come from IMU-only devices (every ``thm_*`` and
``tof_*`` value empty), while nearly every training sequence has them, so a run's OOF score
says little about that half. Here each fold model predicts its own validation subjects twice,
through the trainer's own loading and feature code: from the rows as they are, and from the
same rows with every ``thm_*`` / ``tof_*`` value emptied. The first must reproduce the run's
``oof_predictions.csv`` score (checked); the second is the IMU-only score; a seeded half/half
draw of the two gives the score to expect on a test set like Kaggle's. With ``--imu-run``
(an IMU-only run of the same folds) the hidden half is also given that run's OOF predictions
instead: the estimate for ``cmi predict RUN IMU_RUN --by-sensors``.

    .venv/bin/python bench/bench_imu_only.py RUN [RUN ...] [--imu-run IMU_RUN]

Prints per run: the OOF cmi_score with all sensors, IMU-only, half/half (and routed), and
the differences to the first, all measured in this script.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from cmi_core.data.reader import load_train
from cmi_core.data.schema import GESTURE_INDEX, GESTURES
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.source import resolve_data_dir
from cmi_core.metrics import score_indices
from cmi_core.predict.fold_models import run_config
from cmi_core.predict.predictor import Predictor
from cmi_core.rundir.reader import RunDir


def imu_only_copy(data_dir: Path, out_dir: Path) -> Path:
    """``train.csv`` with every thermopile/ToF value emptied, next to the same demographics."""
    rows = pl.read_csv(data_dir / "train.csv", infer_schema_length=10_000)
    sensors = [c for c in rows.columns if c.startswith(("thm_", "tof_"))]
    rows.with_columns(pl.lit(None, dtype=rows.schema[c]).alias(c) for c in sensors).write_csv(
        out_dir / "train.csv"
    )
    shutil.copy(data_dir / "train_demographics.csv", out_dir / "train_demographics.csv")
    return out_dir


def fold_predictions(run_dir: Path, data: SequenceSet, folds: np.ndarray) -> np.ndarray:
    """Each sequence's predicted gesture index from the model of the fold that held it out."""
    probs = np.empty((len(data), len(GESTURES)), dtype=np.float32)
    for k in np.unique(folds):
        held_out = np.flatnonzero(folds == k)
        predictor = Predictor.from_run(run_dir, folds=[int(k)])
        probs[held_out] = predictor.predict_batch({predictor.features: data.subset(held_out)})
    return probs.argmax(axis=1)


def evaluate(run_dir: Path, seed: int, imu_run: Path | None = None) -> dict[str, float]:
    """OOF cmi_score of the run's finished folds: all sensors, IMU-only and half/half, and
    routed (the IMU-only half predicted by ``imu_run``) when it is given."""
    cfg = run_config(run_dir)
    data_dir = resolve_data_dir(cfg.data)
    full = load_train(data_dir, cfg.data.features)
    with tempfile.TemporaryDirectory() as tmp:
        imu = load_train(imu_only_copy(data_dir, Path(tmp)), cfg.data.features)
    oof = RunDir(run_dir).oof()
    position = {sequence: i for i, sequence in enumerate(full.sequence_ids)}
    rows = np.array([position[sequence] for sequence in oof["sequence_id"]])
    folds, truth = oof["fold"].to_numpy(), full.labels[rows]
    predictions = {
        name: fold_predictions(run_dir, data.subset(rows), folds)
        for name, data in (("all sensors", full), ("IMU-only", imu))
    }
    recorded = np.array([GESTURE_INDEX[g] for g in oof["prediction"]])
    agreement = float(np.mean(predictions["all sensors"] == recorded))
    if agreement < 0.99:  # batches differ from validation's, so a near tie may flip; no more
        raise SystemExit(f"{run_dir}: only {agreement:.1%} of its OOF predictions reproduced")
    hidden = np.random.default_rng(seed).random(len(rows)) < 0.5
    predictions["half/half"] = np.where(hidden, predictions["IMU-only"], predictions["all sensors"])
    if imu_run is not None:
        imu_oof = recorded_oof(imu_run, oof)
        predictions["routed"] = np.where(hidden, imu_oof, predictions["all sensors"])
    return {name: score_indices(truth, p)["cmi_score"] for name, p in predictions.items()}


def recorded_oof(run_dir: Path, reference: pl.DataFrame) -> np.ndarray:
    """The run's recorded OOF predictions in ``reference``'s order; its folds must be the same."""
    oof = RunDir(run_dir).oof().select("sequence_id", "fold", "prediction")
    aligned = reference.select("sequence_id", "fold").join(oof, on="sequence_id", how="left")
    if not aligned["fold"].equals(aligned["fold_right"], null_equal=False):
        raise SystemExit(f"{run_dir}: its sequences or folds differ from the run's")
    return np.array([GESTURE_INDEX[g] for g in aligned["prediction"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="complete run directories")
    parser.add_argument("--seed", type=int, default=0, help="seed of the half/half draw")
    parser.add_argument("--imu-run", type=Path, help="an IMU-only run of the same folds")
    args = parser.parse_args()
    columns = ["IMU-only", "half/half", *(["routed"] if args.imu_run else [])]
    print(f"{'run':<40} {'all sensors':>11} " + " ".join(f"{c:>16}" for c in columns))
    for run_dir in args.runs:
        s = evaluate(run_dir, args.seed, args.imu_run)
        full = s["all sensors"]
        cells = " ".join(f"{s[c]:7.4f} ({s[c] - full:+.4f})" for c in columns)
        print(f"{run_dir!s:<40} {full:11.4f} {cells}")


if __name__ == "__main__":
    main()
