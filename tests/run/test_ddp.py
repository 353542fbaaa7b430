"""DDP on 2 CPU processes (gloo): the learnable loss weights stay identical on both ranks."""

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
def test_ddp_trains_on_two_processes_with_identical_learned_weights(
    run_cache: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        trainer={"strategy": "ddp", "devices": 2, "max_epochs": 1, "limit_train_batches": 3},
        logging={"loggers": ["tensorboard"]},
    )
    config = tmp_path / "ddp.toml"
    config.write_text(config_to_toml(cfg))
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(config), str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    assert ranks[0]["listening"], "rank 0 holds the rendezvous socket"
    assert set(ranks[0]["listening"]) == {loopback}, ranks[0]["listening"]
    assert ranks[0]["weighting"] == ranks[1]["weighting"]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    values = list(ranks[0]["weighting"].values())
    assert len(values) == 4 and all(v != 0.0 for v in values), "the weights did not train"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is True and [f["fold"] for f in summary["folds"]] == [0]
