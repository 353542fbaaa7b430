"""Inference speed: one-sequence ``predict`` latency, ``from_run`` time, batched throughput.

Targets (issue 6), 5-fold ensemble of the ``configs/exp025.toml`` model on a 2-core CPU:
median ``predict`` latency <= 25 ms; ``Predictor.from_run`` < 10 s; batched ``cmi predict``
(``predict_file``) >= 10x the throughput of calling ``predict`` once per sequence (the
baseline, measured in the same script on the same sequences).

Without ``--run`` the script writes a run directory with the exp025 model (``-o KEY=VALUE``
overrides the config, e.g. ``-o data.features.thm_tof=true``) and untrained weights (speed
does not depend on the weight values) in the checkpoint format of ``run.py``. The synthetic
test set of the config's data cache is repeated under new ids to ``--sequences`` (3,500, the
hidden test size); ``predict`` gets one polars frame per sequence, as from the Kaggle gateway.
``--threads`` sets ``torch.set_num_threads`` (0 keeps torch's default), ``--predict-threads``
the threads of the per-sequence calls only (the notebook in docs/kaggle.md uses 1).

Run: .venv/bin/python bench/bench_predict.py [--run RUN_DIR] [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_untrained_run(config: Path, overrides: list[str], run_dir: Path) -> Path:
    """A run directory with ``config``'s model in every fold, as ``run.py`` writes it."""
    import torch

    from cmi_core.assemble import build_model
    from cmi_core.config import config_to_dict, config_to_toml, load_config
    from cmi_core.data.features import feature_names
    from cmi_core.rundir import BEST_FILE, CONFIG_FILE

    cfg = load_config(config, overrides)
    names = feature_names(cfg.data.features)
    run_dir.mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(config_to_toml(cfg))
    for k in range(cfg.cv.n_folds):
        torch.manual_seed(k)
        model = build_model(cfg, len(names))
        (run_dir / f"fold_{k}").mkdir()
        meta = {"config": config_to_dict(cfg), "feature_names": list(names)}
        payload = {**meta, "in_channels": len(names), "fold": k, "epoch": 0, "cmi_score": 0.0}
        torch.save({**payload, "state_dict": model.state_dict()}, run_dir / f"fold_{k}" / BEST_FILE)
    return run_dir


def hidden_test_size(data_dir: Path, out_dir: Path, n_sequences: int) -> Path:
    """The synthetic test files with their sequences repeated (new ids) to ``n_sequences``."""
    import polars as pl

    test = pl.read_csv(data_dir / "test.csv", infer_schema_length=None)
    copies = -(-n_sequences // test["sequence_id"].n_unique())
    repeated = pl.concat(test.with_columns(pl.col("sequence_id") + f"_{c}") for c in range(copies))
    keep = repeated["sequence_id"].unique(maintain_order=True).head(n_sequences).to_list()
    out_dir.mkdir(parents=True)
    repeated.filter(pl.col("sequence_id").is_in(keep)).write_csv(out_dir / "test.csv")
    demographics = (data_dir / "test_demographics.csv").read_bytes()
    (out_dir / "test_demographics.csv").write_bytes(demographics)
    return out_dir


def gateway_frames(data_dir: Path, limit: int) -> list[tuple]:
    """``(sequence frame, one-row demographics frame)`` per test sequence, as the gateway."""
    import polars as pl

    test = pl.read_csv(data_dir / "test.csv")
    demographics = pl.read_csv(data_dir / "test_demographics.csv")
    return [
        (sequence, demographics.filter(pl.col("subject") == sequence["subject"][0]))
        for sequence in test.partition_by("sequence_id", maintain_order=True)[:limit]
    ]


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="a run directory (default: untrained exp025)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "exp025.toml")
    parser.add_argument("-o", "--override", action="append", default=[], help="config KEY=VALUE")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--predict-threads", type=int, default=0, help="torch threads of predict (0: --threads)"
    )
    parser.add_argument("--sequences", type=int, default=3500, help="test size (hidden: ~3,500)")
    parser.add_argument("--calls", type=int, default=100, help="predict calls per block")
    parser.add_argument("--batch-size", type=int, default=256, help="cmi predict --batch-size")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    import torch

    from cmi_core.config import load_config
    from cmi_core.data.io import load_test, resolve_data_dir
    from cmi_core.inference import Predictor, predict_file

    import_s = time.perf_counter() - start
    batch_threads = args.threads or torch.get_num_threads()
    predict_threads = args.predict_threads or batch_threads
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or write_untrained_run(args.config, args.override, Path(tmp) / "run")
        synthetic = resolve_data_dir(load_config(run_dir / "config.toml").data)
        data_dir = hidden_test_size(synthetic, Path(tmp) / "data", args.sequences)
        frames = gateway_frames(data_dir, args.calls)
        out = Path(tmp) / "submission.csv"

        torch.set_num_threads(batch_threads)
        load_s = min(timed(Predictor.from_run, run_dir) for _ in range(args.rounds))
        predictor = Predictor.from_run(run_dir)
        parsed = load_test(data_dir, predictor.features)
        for sequence, demographics in frames[:5]:  # warm-up
            predictor.predict(sequence, demographics)

        def per_sequence() -> list[float]:
            torch.set_num_threads(predict_threads)
            times = [timed(predictor.predict, *frame) for frame in frames]
            torch.set_num_threads(batch_threads)
            return times

        # Rounds of [predict per sequence, cmi predict, model alone, predict per sequence]:
        # each batched rate is divided by the per-sequence rate measured around it, so a busy
        # neighbour on the shared machine slows both sides of a ratio alike.
        latencies, file_ratios, model_ratios, model_ms = [], [], [], []
        for _ in range(args.rounds):
            before = per_sequence()
            file_rate = args.sequences / timed(
                predict_file, run_dir, data_dir, out, batch_size=args.batch_size
            )
            model_rate = args.sequences / timed(predictor.predict_batch, parsed, args.batch_size)
            after = per_sequence()
            baseline = 2 * len(frames) / (sum(before) + sum(after))
            latencies += before + after
            file_ratios.append(file_rate / baseline)
            model_ratios.append(model_rate / baseline)
            model_ms.append(1e3 / model_rate)

    folds = len(predictor.ensembles[0].models)
    median_ms = statistics.median(latencies) * 1e3
    p90_ms = statistics.quantiles(latencies, n=10)[-1] * 1e3
    source = run_dir if args.run else f"untrained {args.config.name} {' '.join(args.override)}"
    print(
        f"torch {torch.__version__}, {folds} folds, {source}; torch threads: "
        f"{predict_threads} in predict, {batch_threads} in cmi predict"
    )
    print(f"import cmi_core.inference         {import_s:7.2f} s")
    print(f"Predictor.from_run                {load_s:7.2f} s  (import + load: target < 10 s)")
    print(
        f"predict, one sequence: median     {median_ms:7.2f} ms (target <= 25 ms), p90 {p90_ms:.2f}"
    )
    print(
        f"cmi predict / per-sequence rate   {statistics.median(file_ratios):7.2f} x  (target >= 10;"
        f" rounds {', '.join(f'{r:.2f}' for r in file_ratios)}; {args.sequences} sequences,"
        " loading the run and parsing test.csv included)"
    )
    print(
        f"model alone / per-sequence rate   {statistics.median(model_ratios):7.2f} x  "
        f"(predict_batch on parsed sequences, {statistics.median(model_ms):.2f} ms per sequence:"
        " what batching can reach at most)"
    )


if __name__ == "__main__":
    sys.exit(main())
