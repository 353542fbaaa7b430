"""Classical baselines next to trained runs, on the same folds and the same feature channels.

MiniRocket (aeon; Dempster et al. 2021) with a ridge classifier, MultiRocket-Hydra (aeon's
``MultiRocketHydraClassifier``: MultiRocket and Hydra features, Dempster et al. 2023, with a ridge
classifier; the strongest convolution-kernel classifier on the UCR/UEA archives) and per-channel
statistics (mean, std, min, max) with logistic regression, all fed exactly what the trainer's
backbones see:
the config's feature channels, padded or truncated to its ``data.max_len`` by the trainer's own
``pad_or_truncate``, split by its subject-grouped folds (``cv.n_folds``, ``cv.seed``). Runs
given with ``--runs`` are scored from their ``oof_predictions.csv`` after checking that their
folds are these folds, so every number in the table is out-of-fold on the same subjects.

    .venv/bin/python -m pip install -e '.[bench]'
    .venv/bin/python bench/bench_baselines.py configs/exp025.toml [-o data.dir=...] \
        [--runs runs/a runs/b]

Prints one row per method: out-of-fold cmi_score, binary and macro F1, seconds, the score
difference to MiniRocket and the ratio of its time to MiniRocket's, both measured in the same
script.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from bench_synthetic_baseline import channel_statistics
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cmi_core.config import load_config
from cmi_core.data.dataset import pad_or_truncate
from cmi_core.data.folds import assign_folds
from cmi_core.data.reader import load_train
from cmi_core.data.schema import GESTURE_INDEX
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.source import resolve_data_dir
from cmi_core.metrics import score_indices

Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def padded(data: SequenceSet, max_len: int) -> np.ndarray:
    """(N, C, max_len) float32, exactly as the trainer pads (left padding, the end is kept)."""
    return np.stack(
        [
            pad_or_truncate(x, v, max_len)[0].T
            for x, v in zip(data.features, data.valid, strict=True)
        ]
    ).astype(np.float32)


def minirocket(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    from aeon.transformations.collection.convolution_based import MiniRocket

    transform = MiniRocket(random_state=0)
    features = transform.fit_transform(train)
    model = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    model.fit(features, labels)
    return model.predict(transform.transform(test))


def multirocket_hydra(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    """aeon's MultiRocket-Hydra as shipped (its own scaling and ridge); one job, like the rest."""
    from aeon.classification.convolution_based import MultiRocketHydraClassifier

    model = MultiRocketHydraClassifier(random_state=0, n_jobs=1)
    model.fit(train, labels)
    return model.predict(test)


def statistics(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    model.fit(train, labels)
    return model.predict(test)


def out_of_fold(fit: Fit, x: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    predictions = np.empty(len(labels), dtype=np.int64)
    for k in np.unique(folds):
        val = folds == k
        predictions[val] = fit(x[~val], labels[~val], x[val])
    return predictions


def run_predictions(run_dir: Path, data: SequenceSet, folds: np.ndarray) -> np.ndarray:
    """A run's OOF predictions in ``data`` order; its folds must be ``folds``."""
    oof = pl.read_csv(
        run_dir / "oof_predictions.csv", columns=["sequence_id", "fold", "prediction"]
    )
    by_id = {sid: i for i, sid in enumerate(data.sequence_ids)}
    order = np.array([by_id[sid] for sid in oof["sequence_id"]])
    if len(order) != len(data) or not np.array_equal(folds[order], oof["fold"].to_numpy()):
        raise SystemExit(f"{run_dir}: its folds or sequences differ from the config's")
    predictions = np.empty(len(data), dtype=np.int64)
    predictions[order] = [GESTURE_INDEX[g] for g in oof["prediction"]]
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="run directories")
    args = parser.parse_args()
    cfg = load_config(args.config, args.override)
    data = load_train(resolve_data_dir(cfg.data), cfg.data.features, Path(cfg.data.cache_dir))
    folds = assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    print(
        f"{len(data)} sequences, {len(np.unique(data.subjects))} subjects, "
        f"{len(data.feature_names)} channels, max_len {cfg.data.max_len}, {cfg.cv.n_folds} folds"
    )
    rows: list[tuple[str, np.ndarray, float]] = []
    for name, fit, make in (
        ("minirocket", minirocket, lambda: padded(data, cfg.data.max_len)),
        ("multirocket-hydra", multirocket_hydra, lambda: padded(data, cfg.data.max_len)),
        ("channel statistics", statistics, lambda: channel_statistics(data)),
    ):
        started = time.perf_counter()
        predictions = out_of_fold(fit, make(), data.labels, folds)
        rows.append((name, predictions, time.perf_counter() - started))
    rows += [(str(run), run_predictions(run, data, folds), float("nan")) for run in args.runs]
    reference = score_indices(data.labels, rows[0][1])["cmi_score"]
    reference_seconds = rows[0][2]
    print(
        f"{'method':<40} {'cmi_score':>9} {'binary':>7} {'macro':>7} {'seconds':>8} "
        f"{'vs MR':>7} {'time/MR':>7}"
    )
    for name, predictions, seconds in rows:
        s = score_indices(data.labels, predictions)
        print(
            f"{name:<40} {s['cmi_score']:9.4f} {s['binary_f1']:7.4f} {s['macro_f1']:7.4f} "
            f"{seconds:8.1f} {s['cmi_score'] - reference:+7.4f} {seconds / reference_seconds:7.2f}"
        )


if __name__ == "__main__":
    main()
