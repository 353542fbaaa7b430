"""Classical baselines next to trained runs, on the same folds and the same feature channels.

MiniRocket (aeon; Dempster et al. 2021) with a ridge classifier, MultiRocket-Hydra (aeon's
``MultiRocketHydraClassifier``: MultiRocket and Hydra features, Dempster et al. 2023, with a ridge
classifier; the strongest convolution-kernel classifier on the UCR/UEA archives) and per-channel
statistics (mean, std, min, max) with logistic regression, all fed exactly what the trainer's
backbones see:
the config's feature channels, padded or truncated to its ``data.max_len`` by the trainer's own
``pad_or_truncate``, split by its subject-grouped folds (``cv.n_folds``, ``cv.seed``). Runs
given with ``--runs`` (run or sweep directories) are scored from their ``oof_predictions.csv``
after checking that their folds are these folds, so every number in the table is out-of-fold
on the same subjects.

    .venv/bin/python -m pip install -e '.[bench]'
    .venv/bin/python bench/bench_baselines.py configs/exp025.toml [-o data.dir=...] \
        [--methods minirocket,multirocket-hydra] [--runs runs/a runs/sweep ...] \
        [--baseline multirocket-hydra] [--baseline-seeds] [--ensemble 'A + B' [--fit-weights]]

Prints one row per method and run: out-of-fold cmi_score, binary and macro F1, seconds, the
score difference to the first method and the ratio of its time to the first's, measured in the
same script. With ``--runs`` it then prints ``cmi compare``'s table with the ``--baseline``
method as the baseline: the runs grouped by config over seeds, each (fold, seed) pair against
the method's score on that fold (its draw at that seed, below), with the paired interval, the
test and the subject and pair counts; ``--ensemble`` adds an ensemble of the runs' configs,
mixed seed by seed as ``cmi compare --ensemble`` mixes them. The kernel methods draw random
kernels: by default every seed's runs are paired with the draw ``random_state = 0``; with
``--baseline-seeds`` the baseline is drawn again at each run seed (``random_state = seed``)
and each seed's runs are paired with their own draw, so the baseline's luck of the draw
averages out as the runs' does. A method's predictions are cached (``--cache-dir``) under a
digest of the parsed data, channels, folds, ``max_len``, library versions and seed; a cached
row says so and shows the seconds it took when it was computed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from bench_synthetic_baseline import channel_statistics
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cmi_core.analysis.compare import (
    CompareError,
    Run,
    compare_groups,
    format_table,
    read_groups,
)
from cmi_core.analysis.seed_ensembles import add_ensembles
from cmi_core.cli import add_ensemble_arguments
from cmi_core.common.atomic import atomic_path
from cmi_core.config import load_config
from cmi_core.data.dataset import pad_or_truncate
from cmi_core.data.fingerprint import DataFingerprint
from cmi_core.data.folds import assign_folds
from cmi_core.data.reader import load_train
from cmi_core.data.schema import GESTURE_INDEX, GESTURES
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.source import resolve_data_dir
from cmi_core.metrics import score_indices

Fit = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def padded(data: SequenceSet, max_len: int) -> np.ndarray:
    """(N, C, max_len) float32, exactly as the trainer pads (left padding, the end is kept)."""
    return np.stack(
        [
            pad_or_truncate(x, v, max_len)[0].T
            for x, v in zip(data.features, data.valid, strict=True)
        ]
    ).astype(np.float32)


def minirocket(train: np.ndarray, labels: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    from aeon.transformations.collection.convolution_based import MiniRocket

    transform = MiniRocket(random_state=seed)
    features = transform.fit_transform(train)
    model = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    model.fit(features, labels)
    return model.predict(transform.transform(test))


def multirocket_hydra(
    train: np.ndarray, labels: np.ndarray, test: np.ndarray, seed: int
) -> np.ndarray:
    """aeon's MultiRocket-Hydra as shipped (its own scaling and ridge); one job, like the rest."""
    from aeon.classification.convolution_based import MultiRocketHydraClassifier

    model = MultiRocketHydraClassifier(random_state=seed, n_jobs=1)
    model.fit(train, labels)
    return model.predict(test)


def statistics(train: np.ndarray, labels: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic: ``seed`` is not used."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    model.fit(train, labels)
    return model.predict(test)


def out_of_fold(
    fit: Fit, x: np.ndarray, labels: np.ndarray, folds: np.ndarray, seed: int
) -> np.ndarray:
    predictions = np.empty(len(labels), dtype=np.int64)
    for k in np.unique(folds):
        val = folds == k
        predictions[val] = fit(x[~val], labels[~val], x[val], seed)
    return predictions


METHODS: dict[str, Fit] = {
    "minirocket": minirocket,
    "multirocket-hydra": multirocket_hydra,
    "channel statistics": statistics,
}
SEEDED = frozenset({"minirocket", "multirocket-hydra"})
"""The methods that draw random kernels: their ``random_state`` is a seed like a run's."""


def method_inputs(name: str, data: SequenceSet, max_len: int) -> np.ndarray:
    return channel_statistics(data) if name == "channel statistics" else padded(data, max_len)


def cache_key(name: str, data: SequenceSet, folds: np.ndarray, max_len: int, seed: int) -> str:
    """What a method's out-of-fold predictions depend on: the parsed data, the channels, the
    folds, the length, the library version and the seed (left out at 0, the only seed before
    there was a choice, so those predictions stay cached)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "absent"

    parts = {
        "method": name,
        "data": DataFingerprint.of(data).to_dict(),
        "channels": list(data.feature_names),
        "folds": hashlib.sha256(folds.astype(np.int64).tobytes()).hexdigest(),
        "max_len": max_len,
        "aeon": installed("aeon"),
        "sklearn": installed("scikit-learn"),
        **({"seed": seed} if seed else {}),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def baseline_predictions(
    name: str, data: SequenceSet, folds: np.ndarray, max_len: int, cache_dir: Path, seed: int = 0
) -> tuple[np.ndarray, float, bool]:
    """A method's OOF predictions with ``seed``, its seconds, and whether they came from
    ``cache_dir`` (MultiRocket-Hydra costs minutes; the same inputs give the same predictions)."""
    key = cache_key(name, data, folds, max_len, seed if name in SEEDED else 0)
    path = cache_dir / f"{name.replace(' ', '_')}-{key}.npz"
    if path.is_file():
        cached = np.load(path)
        return cached["predictions"], float(cached["seconds"]), True
    started = time.perf_counter()
    x = method_inputs(name, data, max_len)
    predictions = out_of_fold(METHODS[name], x, data.labels, folds, seed)
    seconds = time.perf_counter() - started
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, predictions=predictions, seconds=seconds)
    return predictions, seconds, False


def check_folds(run: Run, data: SequenceSet, folds: np.ndarray) -> np.ndarray:
    """A run's OOF predictions in ``data`` order; its folds must be ``folds``."""
    by_id = {sid: i for i, sid in enumerate(data.sequence_ids)}
    order = np.array([by_id[sid] for sid in run.oof["sequence_id"]])
    if len(order) != len(data) or not np.array_equal(folds[order], run.oof["fold"].to_numpy()):
        raise SystemExit(f"{run.path}: its folds or sequences differ from the config's")
    predictions = np.empty(len(data), dtype=np.int64)
    predictions[order] = [GESTURE_INDEX[g] for g in run.oof["prediction"]]
    return predictions


def as_runs(
    name: str, by_seed: dict[int, np.ndarray], data: SequenceSet, folds: np.ndarray
) -> list[Run]:
    """A method's predictions as one run per seed of the trained runs (the same predictions at
    every seed for a deterministic method, or the method's own draw at that seed), so that
    every (fold, seed) pair of a trained config has its baseline partner."""
    frame = pl.DataFrame(
        {
            "sequence_id": data.sequence_ids,
            "subject": data.subjects,
            "fold": folds.astype(np.int64),
            "gesture": [GESTURES[i] for i in data.labels],
        }
    )
    return [
        Run(
            Path(name),
            name,
            seed,
            {},
            frame.with_columns(prediction=pl.Series([GESTURES[i] for i in predictions])),
            True,
        )
        for seed, predictions in by_seed.items()
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="run or sweep directories")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated, from: {', '.join(METHODS)} (default: all)",
    )
    parser.add_argument(
        "--baseline",
        default="multirocket-hydra",
        help="the method the runs are paired against (default multirocket-hydra)",
    )
    parser.add_argument(
        "--baseline-seeds",
        action="store_true",
        help="draw the baseline's random kernels with each run's seed (random_state = seed) "
        "and pair seed by seed; default: random_state 0 for every seed",
    )
    add_ensemble_arguments(parser)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="where methods' OOF predictions are kept (default: <data.cache_dir>/baselines)",
    )
    args = parser.parse_args()
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in [*args.methods, args.baseline] if m not in METHODS]
    if unknown:
        parser.error(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if args.ensemble and not args.runs:
        parser.error("--ensemble mixes configs of --runs; give the runs")
    if args.runs and args.baseline not in args.methods:
        parser.error(f"--baseline {args.baseline} is not among --methods")
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.override)
    data = load_train(resolve_data_dir(cfg.data), cfg.data.features, Path(cfg.data.cache_dir))
    folds = assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    cache_dir = args.cache_dir or Path(cfg.data.cache_dir) / "baselines"
    print(
        f"{len(data)} sequences, {len(np.unique(data.subjects))} subjects, "
        f"{len(data.feature_names)} channels, max_len {cfg.data.max_len}, {cfg.cv.n_folds} folds"
    )
    rows: list[tuple[str, np.ndarray, float]] = []

    def predict(name: str, seed: int = 0, label: str = "") -> np.ndarray:
        predictions, seconds, cached = baseline_predictions(
            name, data, folds, cfg.data.max_len, cache_dir, seed
        )
        rows.append((name + label + (" (cached)" if cached else ""), predictions, seconds))
        return predictions

    methods = {name: predict(name) for name in args.methods}
    groups = run_groups(args.runs or [], args.ensemble, fit=args.fit_weights)
    runs = [run for members in groups.values() for run in members]
    seeds = sorted({run.seed for run in runs})
    by_seed = {seed: methods.get(args.baseline) for seed in seeds}
    if args.baseline_seeds and args.baseline in SEEDED:
        by_seed = {seed: predict(args.baseline, seed, f" seed {seed}") for seed in seeds}
    rows += [(str(run.path), check_folds(run, data, folds), float("nan")) for run in runs]
    print_scores(data, rows)
    if runs:
        groups = {args.baseline: as_runs(args.baseline, by_seed, data, folds), **groups}
        print()
        print(format_table(compare_groups(groups, args.baseline)))


def run_groups(paths: list[str], ensembles: list[str], fit: bool) -> dict[str, list[Run]]:
    """The runs by config, with the ``--ensemble`` groups; a bad one exits with one line, as
    ``cmi compare`` does."""
    try:
        return add_ensembles(read_groups(paths) if paths else {}, ensembles, fit=fit)
    except CompareError as error:
        raise SystemExit(f"bench_baselines.py: {error}") from None


def print_scores(data: SequenceSet, rows: list[tuple[str, np.ndarray, float]]) -> None:
    """One row per method or run: scores, seconds, difference and time ratio to the first."""
    reference = score_indices(data.labels, rows[0][1])["cmi_score"]
    reference_seconds = rows[0][2]
    print(
        f"{'method':<40} {'cmi_score':>9} {'binary':>7} {'macro':>7} {'seconds':>8} "
        f"{'vs first':>8} {'time/first':>10}"
    )
    for name, predictions, seconds in rows:
        s = score_indices(data.labels, predictions)
        print(
            f"{name:<40} {s['cmi_score']:9.4f} {s['binary_f1']:7.4f} {s['macro_f1']:7.4f} "
            f"{seconds:8.1f} {s['cmi_score'] - reference:+8.4f} "
            f"{seconds / reference_seconds:10.2f}"
        )


if __name__ == "__main__":
    main()
