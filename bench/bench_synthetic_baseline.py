"""How hard is the synthetic data? A per-channel-statistics + logistic-regression baseline.

Features: mean, std, min and max of each of the 16 default IMU channels over a sequence's
valid frames (64 numbers); scikit-learn logistic regression on standardised features;
subject-grouped stratified 5-fold CV (``assign_folds``); out-of-fold competition score.
The generator is calibrated so that this scores 0.50-0.75 on the default set (24 subjects,
seed 0) while a small sequence model reaches >= 0.85 (docs/data.md).

    .venv/bin/python bench/bench_synthetic_baseline.py [--subjects 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cmi_core.config import DataConfig, FeatureConfig, SyntheticConfig
from cmi_core.data.folds import assign_folds
from cmi_core.data.reader import load_train
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.source import resolve_data_dir
from cmi_core.metrics import score_indices


def channel_statistics(data: SequenceSet) -> np.ndarray:
    """(N, 4C): mean, std, min, max of every channel over each sequence's valid frames."""
    rows = []
    for x, valid in zip(data.features, data.valid, strict=True):
        frames = x[valid] if valid.any() else np.zeros((1, x.shape[1]), np.float32)
        rows.append(np.concatenate([frames.mean(0), frames.std(0), frames.min(0), frames.max(0)]))
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "cmi-bench")
    args = parser.parse_args()

    cfg = DataConfig(
        cache_dir=str(args.cache_dir), synthetic=SyntheticConfig(args.subjects, args.seed)
    )
    data = load_train(resolve_data_dir(cfg), FeatureConfig())
    started = time.perf_counter()
    x = channel_statistics(data)
    folds = assign_folds(data.subjects, data.labels, args.folds, seed=42)
    predictions = np.empty(len(data), dtype=np.int64)
    for fold in range(args.folds):
        train, val = folds != fold, folds == fold
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        model.fit(x[train], data.labels[train])
        predictions[val] = model.predict(x[val])
        fold_score = score_indices(data.labels[val], predictions[val])["cmi_score"]
        print(f"fold {fold}: cmi_score {fold_score:.4f}")
    score = score_indices(data.labels, predictions)
    print(
        f"synthetic subjects={args.subjects} seed={args.seed} sequences={len(data)}: "
        f"out-of-fold cmi_score {score['cmi_score']:.4f} "
        f"(binary_f1 {score['binary_f1']:.4f}, macro_f1 {score['macro_f1']:.4f}) "
        f"in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
