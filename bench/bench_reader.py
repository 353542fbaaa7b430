"""Reader speed and memory on a full-size train.csv, against pandas.read_csv in the same script.

Targets (issue 3): CSV -> model-ready arrays (features included) in at most 1.0x the time
``pandas.read_csv`` needs just to parse the file, with peak memory at most 1.5 GB; a cached
second load in at most 0.25x that time; full-size synthetic generation under 60 s.

Every measurement runs in a fresh child process, so its peak RSS (``ru_maxrss``: the whole
process, interpreter and libraries included) is its own; times are taken inside the child
after imports; the CSV sits in the OS page cache alike for every case (one untimed read
first). Reported: medians over ``--repeat`` runs taking turns, and the largest peak.

    .venv/bin/python bench/bench_reader.py [--dir /tmp/cmi-bench/full] [--repeat 3] [--cases ...]
                                           [--time-generation]

The data set (81 subjects, ~580k rows, ~0.8 GB) is generated (and timed) into ``--dir`` when
missing or with ``--time-generation``; never commit it.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = (
    "pandas",
    "imu",
    "imu_unchecked",
    "imu_cached",
    "full",
    "full_unchecked",
    "full_cached",
    "one_sequence",
)


def child(case: str, data_dir: Path, cache_dir: Path) -> dict[str, float]:
    """Run one measurement in this process and return seconds and peak RSS (MB)."""
    import polars as pl

    from cmi_core.config import FeatureConfig
    from cmi_core.data import reader as io
    from cmi_core.data.reader import load_train, sequences_from_frames

    if case.endswith("unchecked"):  # the baseline of the row check: everything else the same
        io.check_rows = lambda path: None
    features = FeatureConfig(thm_tof=case.startswith("full"))
    cache = cache_dir if case.endswith("cached") else None
    if case == "pandas":
        import pandas as pd

        start = time.perf_counter()
        pd.read_csv(data_dir / "train.csv")
    elif case == "one_sequence":
        frame = pl.read_csv(data_dir / "test.csv", n_rows=2000)
        seq = frame.filter(pl.col("sequence_id") == frame["sequence_id"][0])
        demo = pl.read_csv(data_dir / "test_demographics.csv")
        demo = demo.filter(pl.col("subject") == seq["subject"][0])
        full = FeatureConfig(thm_tof=True)
        sequences_from_frames(seq, demo, full)  # warm-up
        batches = []  # median of 15 batches of 20 calls: robust to a neighbour's spikes
        for _ in range(15):
            start = time.perf_counter()
            for _ in range(20):
                sequences_from_frames(seq, demo, full)
            batches.append((time.perf_counter() - start) / 20)
        return {"seconds": statistics.median(batches), "peak_mb": _peak_mb()}
    else:
        start = time.perf_counter()
        load_train(data_dir, features, cache_dir=cache)
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb()}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(case: str, data_dir: Path, cache_dir: Path) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", case, "--dir", str(data_dir)]
    argv += ["--cache-dir", str(cache_dir)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def warm_page_cache(data_dir: Path) -> int:
    """Read every CSV file once, untimed, so that the first case does not pay the disk reads
    the others are spared; returns the bytes read."""
    read = 0
    for path in sorted(data_dir.glob("*.csv")):
        with path.open("rb") as file:
            while chunk := file.read(1 << 24):
                read += len(chunk)
    return read


def generation_seconds(data_dir: Path) -> float:
    from cmi_core.data.synthetic import generate

    start = time.perf_counter()
    generate(data_dir, subjects=81, seed=0, overwrite=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "cmi-bench/full")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--time-generation", action="store_true", help="regenerate, timed")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES, help="a subset")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cache_dir = args.cache_dir or args.dir / "parsed-cache"
    if args.child:
        print(json.dumps(child(args.child, args.dir, cache_dir)))
        return

    if args.time_generation or not (args.dir / "train.csv").is_file():
        seconds = generation_seconds(args.dir)
        print(f"generated the full-size synthetic set in {seconds:.1f} s (target < 60 s)")
    size = (args.dir / "train.csv").stat().st_size / 1e6
    warmed = warm_page_cache(args.dir) / 1e6
    print(
        f"train.csv: {size:.0f} MB; medians of {args.repeat} runs, each in a fresh process; "
        f"page cache warmed with an untimed read of {warmed:.0f} MB"
    )
    for case in ("imu", "full"):  # populate the caches (not timed)
        if f"{case}_cached" in args.cases:
            run_child(f"{case}_cached", args.dir, cache_dir)
    results: dict[str, list[dict[str, float]]] = {case: [] for case in args.cases}
    for _ in range(args.repeat):
        for case in args.cases:
            results[case].append(run_child(case, args.dir, cache_dir))
    seconds = {c: statistics.median(r["seconds"] for r in rs) for c, rs in results.items()}
    peak = {c: max(r["peak_mb"] for r in rs) for c, rs in results.items()}
    base = seconds.get("pandas", float("nan"))
    labels = {
        "pandas": "pandas.read_csv (parse only, baseline)",
        "imu": "load_train, 16 IMU features",
        "imu_unchecked": "  the same without the CSV row check",
        "imu_cached": "load_train, 16 IMU features, cached",
        "full": "load_train, 32 IMU+thm/ToF features",
        "full_unchecked": "  the same without the CSV row check",
        "full_cached": "load_train, 32 IMU+thm/ToF features, cached",
    }
    for case, label in labels.items():
        if case not in seconds:
            continue
        print(
            f"{label:48s} {seconds[case]:6.2f} s  {seconds[case] / base:5.2f}x pandas  "
            f"peak RSS {peak[case]:6.0f} MB"
        )
    for case in ("imu", "full"):
        if {case, f"{case}_unchecked"} <= set(seconds):
            ratio = seconds[case] / seconds[f"{case}_unchecked"]
            print(f"{case}: with / without the CSV row check: {ratio:.3f}")
    if "one_sequence" in seconds:
        one = seconds["one_sequence"] * 1e3
        print(f"sequences_from_frames, one test sequence (32 features): {one:.2f} ms (< 5 ms)")


if __name__ == "__main__":
    main()
