"""Start-up time of the quick commands, against a bare Python start in the same script.

Targets (issue 2): `cmi --help` under 1 s; `cmi plugins` and `cmi check` under 3 s.
Run: .venv/bin/python bench/bench_cli.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CMI = [sys.executable, "-m", "cmi_core.cli"]
COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "cmi --help": [*CMI, "--help"],
    "cmi plugins": [*CMI, "plugins"],
    "cmi check configs/exp025.toml": [*CMI, "check", "configs/exp025.toml"],
    "import torch (reference)": [sys.executable, "-c", "import torch"],
    "import pytorch_lightning (reference)": [sys.executable, "-c", "import pytorch_lightning"],
}


def median_seconds(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    baseline = None
    for label, argv in COMMANDS.items():
        seconds = median_seconds(argv, args.repeat)
        baseline = baseline or seconds
        print(f"{label:<40} {seconds:6.3f} s  ({seconds / baseline:5.1f}x bare python)")


if __name__ == "__main__":
    main()
