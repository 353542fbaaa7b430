"""One fold at 2 threads against two folds at 1 thread each, through ``cmi run`` (issue 22).

Three commands, each timed whole (start-up, data loading from the cache, worker start-up):

- ``1x1``: one fold, one thread (``--folds 0 --jobs 1 -o trainer.threads=1``);
- ``1x2``: one fold, two threads (``--folds 0 --jobs 1 -o trainer.threads=2``);
- ``2x1``: two folds at once, one thread each (``--folds 0,1 --jobs 2 -o trainer.threads=1``).

The rounds interleave the three (a busy neighbour slows all of them alike) and the script
prints the medians and what they predict for the config's ``cv.n_folds`` folds on two cores:
``--jobs 2`` at one thread (rounds of two, the last one alone when the count is odd), one
fold at a time on two threads, and one fold at a time on one thread. A fold's numbers depend
on its thread count (the summation order of the reductions), never on ``--jobs``: the 1x1 and
2x1 fold 0 scores must be equal, which the script checks.

    .venv/bin/python bench/bench_jobs.py [--config configs/exp025.toml] [--repeat 1]
        [--epochs N] [-o KEY=VALUE ...] [--setups 1x1,2x1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CMI = [sys.executable, "-m", "cmi_core.cli"]
SETUPS = {
    "1x1": ["--folds", "0", "--jobs", "1", "-o", "trainer.threads=1"],
    "1x2": ["--folds", "0", "--jobs", "1", "-o", "trainer.threads=2"],
    "2x1": ["--folds", "0,1", "--jobs", "2", "-o", "trainer.threads=1"],
}


def timed_run(
    config: str, extra: list[str], setup: str, out: Path
) -> tuple[float, list[float], list[float]]:
    """Wall seconds of one ``cmi run``, its per-fold scores and per-fold training times (the
    fold's own clock: without the start-up of ``cmi`` and its workers)."""
    argv = [*CMI, "run", config, "--out", str(out), *SETUPS[setup], *extra]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench_jobs: {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    folds = summary["folds"]
    return seconds, [f["cmi_score"] for f in folds], [f["wall_time_s"] for f in folds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/exp025.toml")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=0, help="trainer.max_epochs (0: config's)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--setups", default=",".join(SETUPS), help="a subset, e.g. 1x1,2x1")
    args = parser.parse_args()
    setups = [name for name in args.setups.split(",") if name]
    unknown = sorted(set(setups) - set(SETUPS))
    if unknown:
        parser.error(f"unknown setups {unknown}; choose from {', '.join(SETUPS)}")
    overrides = [*args.override] + ([f"trainer.max_epochs={args.epochs}"] if args.epochs else [])
    extra = [item for o in overrides for item in ("-o", o)]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; {args.config}, overrides: {' '.join(overrides) or 'none'}"
    )
    times: dict[str, list[float]] = {name: [] for name in setups}
    scores: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        for i in range(args.repeat):
            order = setups if i % 2 == 0 else list(reversed(setups))
            for name in order:
                seconds, fold_scores, trained = timed_run(
                    args.config, extra, name, Path(tmp) / f"{name}-{i}"
                )
                times[name].append(seconds)
                scores[name] = fold_scores
                fold_times = ", ".join(f"{t:.1f}" for t in trained)
                print(
                    f"  {name}: {seconds:.1f} s, fold scores {fold_scores}, "
                    f"training time per fold {fold_times} s",
                    flush=True,
                )
    if set(setups) == set(SETUPS):
        report(times, scores, folds_of(args.config, overrides))


def folds_of(config: str, overrides: list[str]) -> int:
    from cmi_core.config import load_config

    return load_config(Path(ROOT / config), overrides).cv.n_folds


def report(times: dict[str, list[float]], scores: dict[str, list[float]], n: int) -> None:
    t = {name: statistics.median(values) for name, values in times.items()}
    print(f"medians: 1x1 {t['1x1']:.1f} s, 1x2 {t['1x2']:.1f} s, 2x1 {t['2x1']:.1f} s")
    print(f"  two threads on one fold: {t['1x1'] / t['1x2']:.2f}x the speed of one thread")
    print(f"  two folds at once: {2 * t['1x1'] / t['2x1']:.2f}x the throughput of one at a time")
    rounds, alone = divmod(n, 2)
    predicted = {
        "--jobs 2, 1 thread": rounds * t["2x1"] + alone * t["1x1"],
        "--jobs 1, 2 threads": n * t["1x2"],
        "--jobs 1, 1 thread": n * t["1x1"],
    }
    for name, seconds in predicted.items():
        print(f"  {n} folds, {name}: {seconds:.0f} s predicted")
    same = scores["1x1"][0] == scores["2x1"][0]
    print(
        f"fold 0 at 1 thread, alone vs beside another fold: "
        f"{'identical' if same else 'DIFFERENT'} ({scores['1x1'][0]} / {scores['2x1'][0]})"
    )


if __name__ == "__main__":
    main()
