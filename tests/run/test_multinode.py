"""Two "nodes" of one process each on 127.0.0.1 (gloo), launched with torchrun or as SLURM's
srun would start them, end with the weights of one process trained on the same global batches.

With ``trainer.num_nodes = 2`` and a per-node batch of B, every step averages the gradients of
the two halves of a 2B batch drawn from one shuffled order (Lightning's DistributedSampler); one
process with the ``ddp`` strategy, a batch of 2B and the same seed draws the same 2B sequences.
The test backbone has no batch statistics and nothing is random after the shuffle (no dropout,
augmentation or mixup), so the two runs do the same arithmetic up to float rounding.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from cmi_core.config import Config, config_to_toml
from tests.run.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ddp_script.py")
BATCH = 16  # per node; the single process gets 2 * BATCH
Launch = Callable[[int, int, Path], subprocess.Popen]
NO_AUGMENT = {"noise_p": 0.0, "stretch_p": 0.0, "mask_p": 0.0, "mixup_alpha": 0.0}


def flat_config(run_cache: Path, **trainer: Any) -> Config:
    return tiny_config(
        run_cache,
        data={"augment": NO_AUGMENT},
        cv={"folds": [0]},
        model={"backbone": "flat", "head_dropout": 0.0},
        trainer={"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 1, **trainer},
        logging={"loggers": ["csv"]},
        plugins={"modules": ["tests.run.flat_backbone"]},
    )


def write_config(cfg: Config, directory: Path) -> Path:
    directory.mkdir()
    path = directory / "config.toml"
    path.write_text(config_to_toml(cfg))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """The test backbone importable from the script, gloo on the loopback interface, and no
    launcher variables from the calling process."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    inherited = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    return {**inherited, "PYTHONPATH": path, "GLOO_SOCKET_IFNAME": "lo", **extra}


LAUNCHER_VARIABLES = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "MASTER_PORT"}
LAUNCHER_VARIABLES |= {k for k in os.environ if k.startswith("SLURM_")}


def start(argv: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=child_env(**env),
    )


def torchrun(node_rank: int, port: int, config: Path) -> subprocess.Popen:
    """One node of two: its own torchrun agent with one worker process."""
    return start(
        [
            *(sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"),
            *(f"--node-rank={node_rank}", "--master-addr=127.0.0.1", f"--master-port={port}"),
            *(str(SCRIPT), str(config), str(config.parent / "run")),
        ]
    )


def slurm_task(rank: int, port: int, config: Path) -> subprocess.Popen:
    """Task ``rank`` of ``srun`` on 2 nodes with 1 task each: the variables srun sets."""
    variables = {
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_NNODES": "2",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": str(rank),
        "SLURM_JOB_NAME": "cmi",
        "SLURM_JOB_ID": "1234",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    return start(
        [sys.executable, str(SCRIPT), str(config), str(config.parent / "run")], **variables
    )


def finish(process: subprocess.Popen, timeout: float = 150) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, output[-6000:]
    assert "Traceback" not in output, output[-6000:]
    return output


@pytest.fixture(scope="module")
def one_process(run_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: one process (the ddp strategy on 1 device), a batch of 2 * BATCH."""
    cfg = flat_config(run_cache, strategy="ddp", devices=1, batch_size=2 * BATCH)
    config = write_config(cfg, tmp_path_factory.mktemp("multinode") / "one")
    finish(start([sys.executable, str(SCRIPT), str(config), str(config.parent / "run")]))
    return config.parent


def two_nodes(run_cache: Path, directory: Path, launch: Launch) -> Path:
    """Train on 2 nodes of 1 process each, a batch of BATCH per node; the dumps' directory."""
    cfg = flat_config(run_cache, strategy="ddp", devices=1, num_nodes=2, batch_size=BATCH)
    config = write_config(cfg, directory)
    port = free_port()
    for process in [launch(0, port, config), launch(1, port, config)]:
        finish(process)
    return directory


def assert_same_training(one: Path, two: Path) -> None:
    """Both nodes hold the same weights, those of the one process up to float rounding, and
    training moved every weight far more than that."""
    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    start = torch.load(one / "rank0_start.pt", weights_only=True)
    alone = torch.load(one / "rank0.pt", weights_only=True)
    split = [torch.load(two / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert split[0].keys() == alone.keys()
    for name, value in alone.items():
        moved = (value - start[name]).abs().max()
        assert moved > 1e-4, f"{name} did not train"
        assert torch.equal(split[0][name], split[1][name]), f"{name}: the nodes disagree"
        difference = (split[0][name] - value).abs().max()
        assert difference < 1e-6, f"{name}: off by {difference:.2e} (moved {moved:.2e})"
    summary = json.loads((two / "run" / "summary.json").read_text())
    assert summary["complete"] is True and [f["fold"] for f in summary["folds"]] == [0]


@pytest.mark.ddp
def test_two_torchrun_nodes_match_one_process_with_the_same_global_batch(
    run_cache: Path, one_process: Path, tmp_path: Path
) -> None:
    assert_same_training(one_process, two_nodes(run_cache, tmp_path / "two", torchrun))


@pytest.mark.ddp
def test_two_slurm_nodes_match_one_process_with_the_same_global_batch(
    run_cache: Path, one_process: Path, tmp_path: Path
) -> None:
    assert_same_training(one_process, two_nodes(run_cache, tmp_path / "two", slurm_task))
