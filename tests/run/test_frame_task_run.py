"""A run with the per-frame tasks, as ``cmi run`` trains it: under a loss-level and a
gradient-level strategy, each task's weight curve and per-frame accuracy reach the logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cmi_core.analysis.report import read_scalars
from cmi_core.rundir.layout import fold_dirs
from cmi_core.runs.run import run_experiment
from tests.run.conftest import tiny_config

NAMES = ("multiclass", "binary", "orientation", "phase", "behavior")


@pytest.mark.parametrize("strategy", ["uncertainty", "upgrad"])
def test_frame_tasks_train_and_log_their_weights(
    run_cache: Path, tmp_path: Path, strategy: str
) -> None:
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        loss={"tasks": {"names": list(NAMES)}, "weighting": {"strategy": strategy}},
        trainer={"max_epochs": 1, "limit_train_batches": 3},
    )
    summary = run_experiment(cfg, tmp_path / "run", progress=False)
    assert summary["complete"] is True
    scalars = read_scalars(fold_dirs(tmp_path / "run")[0])
    for task in NAMES:
        steps, values = scalars[f"weights/{task}"]
        assert len(steps) == 3 and np.isfinite(values).all(), task
    for task in ("phase", "behavior"):
        _, accuracy = scalars[f"val/task/{task}/accuracy"]
        assert len(accuracy) == 1 and 0.0 <= accuracy[0] <= 1.0, task
