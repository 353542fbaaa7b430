"""Wall time of trials run in parallel against the same trials run one after another.

Three comparisons, each measured in this script through the ``cmi`` command (start-up, data
loading and worker start-up included) and reported as a ratio (targets from issue 10):

1. ``cmi run CONFIG`` with the default jobs (cores // trainer.threads) vs ``--jobs 1``: at most
   0.6x, with identical per-fold scores.
2. ``cmi sweep`` of 4 trials (2 seeds x folds 0 and 1) with ``--jobs 2`` vs ``--jobs 1``: at
   most 0.6x.
3. The same sweep on a Ray runtime on this machine (``--ray local``, bound to 127.0.0.1) vs the
   local executor with 2 jobs: at most 1.15x.

The machine is shared: run the comparisons on a quiet machine, or read the ratios as noisy.
Overrides shrink the work, e.g. ``-o trainer.max_epochs=4`` (shorter runs make worker start-up
weigh more, so their ratios are conservative).

    .venv/bin/python bench/bench_parallel.py [--config configs/exp025.toml] [-o KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cmi_core.rundir.reader import RunDir
from cmi_core.runs.executor import usable_cores

CMI = [sys.executable, "-m", "cmi_core.cli"]


def timed(argv: list[str]) -> float:
    """Wall seconds of one ``cmi`` command (its output is kept for a failure message)."""
    start = time.perf_counter()
    result = subprocess.run(CMI + argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"cmi {' '.join(argv)} failed:\n{result.stderr[-3000:]}")
    return elapsed


def fold_scores(run_dir: Path) -> list[float]:
    return [record.cmi_score for record in RunDir(run_dir).fold_records().values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/exp025.toml")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--skip-run", action="store_true", help="only the sweep comparisons")
    args = parser.parse_args()
    overrides = [item for o in args.override for item in ("-o", o)]
    print(f"{platform.processor() or platform.machine()}, {usable_cores()} cores; {args.config}")
    print(f"overrides: {' '.join(args.override) or 'none'}; load average {os.getloadavg()}")
    print(f"{'what':<44} {'wall':>8} {'ratio':>7}  target", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        out = Path(tmp)
        if not args.skip_run:
            run = ["run", args.config, *overrides]
            serial = timed([*run, "--out", str(out / "jobs1"), "--jobs", "1"])
            report("cmi run --jobs 1 (baseline)", serial, 1.0, "")
            parallel = timed([*run, "--out", str(out / "jobs-default")])
            report("cmi run, default jobs", parallel, parallel / serial, "<= 0.6x")
            same = fold_scores(out / "jobs1") == fold_scores(out / "jobs-default")
            print(f"per-fold scores identical: {same} {fold_scores(out / 'jobs1')}")
        sweep = ["sweep", args.config, *overrides, "-o", "cv.folds=[0,1]"]
        # two points of equal cost (a grid over trainer.seed is refused: the sweep sets it)
        sweep += ["--grid", "optimizer.lr=0.001,0.002"]
        one = timed([*sweep, "--out", str(out / "sweep1"), "--jobs", "1"])
        report("sweep of 4 trials, --jobs 1 (baseline)", one, 1.0, "")
        two = timed([*sweep, "--out", str(out / "sweep2"), "--jobs", "2"])
        report("sweep of 4 trials, --jobs 2", two, two / one, "<= 0.6x")
        ray = timed([*sweep, "--out", str(out / "sweep-ray"), "--ray", "local"])
        report("sweep of 4 trials, --ray local vs --jobs 2", ray, ray / two, "<= 1.15x")


def report(name: str, seconds: float, ratio: float, target: str) -> None:
    """One row, printed as soon as it is measured: a later failure keeps the earlier rows."""
    print(f"{name:<44} {seconds:>7.1f}s {ratio:>6.2f}x  {target}", flush=True)


if __name__ == "__main__":
    main()
