"""DDP on 2 CPU processes (gloo) with gradient-level strategies: identical parameters, and the
strategy sees the same (gathered) Jacobian on both ranks, so its weights agree too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cmi_core.config import config_to_toml
from tests.run.conftest import tiny_config

SCRIPT = Path(__file__).with_name("ddp_script.py")


@pytest.mark.ddp
@pytest.mark.parametrize(
    ("strategy", "where"),
    [
        ("upgrad", "representation"),
        pytest.param("gradnorm", "parameters", marks=pytest.mark.slow),  # ~50 s
    ],
)
def test_ddp_gradient_level_ranks_agree(
    run_cache: Path, tmp_path: Path, strategy: str, where: str
) -> None:
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        loss={"weighting": {"strategy": strategy, strategy: {"where": where}}},
        trainer={"strategy": "ddp", "devices": 2, "max_epochs": 1, "limit_train_batches": 3},
        logging={"loggers": ["csv"]},
    )
    config = tmp_path / "ddp.toml"
    config.write_text(config_to_toml(cfg))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(config), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    weights = [r["effective_weights"] for r in ranks]
    assert len(weights[0]) == 4 and weights[0] == weights[1]
    assert ranks[0]["weighting"] == ranks[1]["weighting"]
