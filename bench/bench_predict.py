"""Inference speed: one-sequence ``predict`` latency of a run and of a run ensemble, load time,
batched throughput.

Targets, on a 2-core CPU: a 5-fold ensemble of the ``configs/exp025.toml`` model at median
``predict`` latency <= 25 ms (issue 6); a 3-run ensemble (15 models) at <= 40 ms (issue 11);
``Predictor.from_runs`` < 10 s; batched ``cmi predict`` (``predict_file``) >= 10x the
throughput of calling ``predict`` once per sequence (the baseline, measured in the same script
on the same sequences).

Without ``--run`` the script writes ``--runs`` run directories (default 3) with the exp025 model
(``-o KEY=VALUE`` overrides the config of all of them; ``--mixed`` gives the second run the
thermopile/ToF features, as a real ensemble may) and untrained weights (speed does not depend
on the weight values) in the checkpoint format of ``run.py``, each with the ``summary.json`` of
a complete run. The synthetic test set of the config's data cache is repeated under new ids to
``--sequences`` (3,500, the hidden test size); ``predict`` gets one polars frame per sequence,
as from the Kaggle gateway. ``--threads`` sets ``torch.set_num_threads`` (0 keeps torch's
default), ``--predict-threads`` the threads of the per-sequence calls only (the notebook in
docs/kaggle.md uses 1). The one-run predictor (the first run) is timed on the same sequences,
interleaved, as the baseline of the ensemble's latency.

Run: .venv/bin/python bench/bench_predict.py [--run RUN_DIR ...] [--runs 3] [--mixed]
     [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_untrained_run(config: Path, overrides: list[str], run_dir: Path, seed: int) -> Path:
    """A complete run directory with ``config``'s model in every fold, as ``run.py`` writes it."""
    import torch

    from cmi_core.config import config_to_dict, config_to_toml, load_config
    from cmi_core.data.features import feature_names
    from cmi_core.rundir.layout import BEST_FILE, CONFIG_FILE, SUMMARY_FILE
    from cmi_core.train.assemble import build_model

    cfg = load_config(config, overrides)
    names = feature_names(cfg.data.features)
    run_dir.mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(config_to_toml(cfg))
    folds = list(range(cfg.cv.n_folds))
    for k in folds:
        torch.manual_seed(seed * 100 + k)
        model = build_model(cfg, len(names))
        (run_dir / f"fold_{k}").mkdir()
        meta = {"config": config_to_dict(cfg), "feature_names": list(names)}
        payload = {**meta, "in_channels": len(names), "fold": k, "epoch": 0, "cmi_score": 0.0}
        torch.save({**payload, "state_dict": model.state_dict()}, run_dir / f"fold_{k}" / BEST_FILE)
    records = [{"fold": k, "cmi_score": 0.0} for k in folds]
    summary = {"cmi_score": 0.0, "complete": True, "folds_requested": folds, "folds": records}
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary))
    return run_dir


def untrained_runs(args: argparse.Namespace, root: Path) -> list[Path]:
    """``--runs`` untrained runs; with ``--mixed`` the second one uses thm/ToF features."""
    thm_tof = ["data.features.thm_tof=true"]
    return [
        write_untrained_run(
            args.config,
            [*args.override, *(thm_tof if args.mixed and i == 1 else [])],
            root / f"run_{i}",
            seed=i,
        )
        for i in range(args.runs)
    ]


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
    parser.add_argument("--run", type=Path, action="append", help="a run directory (repeatable)")
    parser.add_argument("--runs", type=int, default=3, help="untrained runs without --run")
    parser.add_argument("--mixed", action="store_true", help="untrained run 2 uses thm/ToF")
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
    from cmi_core.data.source import resolve_data_dir
    from cmi_core.predict.predictor import Predictor, predict_file

    import_s = time.perf_counter() - start
    batch_threads = args.threads or torch.get_num_threads()
    predict_threads = args.predict_threads or batch_threads
    with tempfile.TemporaryDirectory() as tmp:
        run_dirs = args.run or untrained_runs(args, Path(tmp))
        synthetic = resolve_data_dir(load_config(run_dirs[0] / "config.toml").data)
        data_dir = hidden_test_size(synthetic, Path(tmp) / "data", args.sequences)
        frames = gateway_frames(data_dir, args.calls)
        out = Path(tmp) / "submission.csv"

        torch.set_num_threads(batch_threads)
        load_s = min(timed(Predictor.from_runs, run_dirs) for _ in range(args.rounds))
        predictor = Predictor.from_runs(run_dirs)
        single = Predictor.from_run(run_dirs[0])
        parsed = predictor.load_test(data_dir)
        for sequence, demographics in frames[:5]:  # warm-up
            predictor.predict(sequence, demographics)
            single.predict(sequence, demographics)

        def per_sequence() -> tuple[list[float], list[float]]:
            """Ensemble and one-run ``predict`` on each frame in turn: a paired comparison."""
            torch.set_num_threads(predict_threads)
            pairs = [(timed(predictor.predict, *f), timed(single.predict, *f)) for f in frames]
            torch.set_num_threads(batch_threads)
            return [p[0] for p in pairs], [p[1] for p in pairs]

        # Rounds of [per sequence, cmi predict, model alone, per sequence]: each batched rate
        # is divided by the per-sequence rate measured around it, and each ensemble call is
        # paired with a one-run call on the same frame, so a busy neighbour on the shared
        # machine slows both sides of a ratio alike.
        latencies, single_latencies, file_ratios, model_ratios, model_ms = [], [], [], [], []
        for _ in range(args.rounds):
            before, single_before = per_sequence()
            file_rate = args.sequences / timed(
                predict_file, run_dirs, data_dir, out, batch_size=args.batch_size
            )
            model_rate = args.sequences / timed(predictor.predict_batch, parsed, args.batch_size)
            after, single_after = per_sequence()
            baseline = 2 * len(frames) / (sum(before) + sum(after))
            latencies += before + after
            single_latencies += single_before + single_after
            file_ratios.append(file_rate / baseline)
            model_ratios.append(model_rate / baseline)
            model_ms.append(1e3 / model_rate)

    models = sum(len(e.models) for e in predictor.ensembles)
    median_ms = statistics.median(latencies) * 1e3
    single_ms = statistics.median(single_latencies) * 1e3
    p90_ms = statistics.quantiles(latencies, n=10)[-1] * 1e3
    source = (
        " ".join(map(str, args.run))
        if args.run
        else f"untrained {args.config.name} {' '.join(args.override)}"
        + (" (run 2 with thm/ToF)" if args.mixed else "")
    )
    print(
        f"torch {torch.__version__}, {len(run_dirs)} runs, {models} models, {source}; torch "
        f"threads: {predict_threads} in predict, {batch_threads} in cmi predict"
    )
    print(f"import cmi_core.predict.predictor         {import_s:7.2f} s")
    print(f"Predictor.from_runs               {load_s:7.2f} s  (import + load: target < 10 s)")
    print(
        f"predict, one sequence: median     {median_ms:7.2f} ms (target <= 40 ms for 15 models),"
        f" p90 {p90_ms:.2f}"
    )
    paired = statistics.median(e / o for e, o in zip(latencies, single_latencies, strict=True))
    print(
        f"  one run ({len(single.ensembles[0].models)} models), paired calls: median "
        f"{single_ms:.2f} ms; ensemble / one run: median of paired ratios {paired:.2f} x"
    )
    print(
        f"cmi predict / per-sequence rate   {statistics.median(file_ratios):7.2f} x  (target >= 10;"
        f" rounds {', '.join(f'{r:.2f}' for r in file_ratios)}; {args.sequences} sequences,"
        " loading the runs and parsing test.csv included)"
    )
    print(
        f"model alone / per-sequence rate   {statistics.median(model_ratios):7.2f} x  "
        f"(predict_batch on parsed sequences, {statistics.median(model_ms):.2f} ms per sequence:"
        " what batching can reach at most)"
    )


if __name__ == "__main__":
    sys.exit(main())
