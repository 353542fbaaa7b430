"""exp024 and exp025 train exactly what they trained before tasks became plugins (issue 20):
the same per-fold scores and every tensor of every fold's ``best.pt``, against a worktree of
the commit before the change, trained in the same process tree on this machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench_tasks_equivalence as bench  # noqa: E402

pytestmark = pytest.mark.slow


def _has_commit(commit: str) -> bool:
    probe = ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_commit(bench.REFERENCE), reason="no git history of the reference")
def test_exp024_and_exp025_train_what_they_trained_before(tmp_path: Path) -> None:
    configs = [Path("configs/exp024.toml"), Path("configs/exp025.toml")]
    assert bench.compare(bench.REFERENCE, configs, tmp_path)
