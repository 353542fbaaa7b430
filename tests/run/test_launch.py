"""Runs started by torchrun or srun: ``trainer.num_nodes`` checks, the run directory every rank
must share, and rank 0's verdict on it reaching the other nodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmi_core.cli import main
from cmi_core.config import config_to_toml
from cmi_core.errors import RunError
from cmi_core.runs.launch import external_environment, rank_zero_first
from tests.run.conftest import tiny_config
from tests.run.test_multinode import ROOT, child_env, free_port

CMI = Path(sys.executable).with_name("cmi")


def test_check_refuses_fewer_than_one_node(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "exp.toml"
    config.write_text("[trainer]\nnum_nodes = 0\n")
    assert main(["check", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {config}: trainer.num_nodes: must be >= 1, got 0"
    ]


def test_torchrun_variables_make_an_external_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert external_environment() is None
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert external_environment() is None  # one process: nothing to coordinate
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert external_environment() is not None


def test_the_run_directory_must_be_named_under_torchrun(
    run_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cmi_core.runs.run import default_run_dir

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RunError, match="pass --out"):
        default_run_dir(tiny_config(run_cache))


def test_one_process_runs_the_body_alone() -> None:
    ran = []
    with rank_zero_first("cpu"):
        ran.append(True)
    assert ran == [True]


@pytest.mark.ddp
def test_rank_zero_refusing_the_run_directory_stops_the_other_node(
    run_cache: Path, tmp_path: Path
) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(config_to_toml(tiny_config(run_cache, trainer={"strategy": "ddp"})))
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("not a run\n")
    port = free_port()
    nodes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "torch.distributed.run", "--nnodes=2"),
                *("--nproc-per-node=1", f"--node-rank={rank}", "--master-addr=127.0.0.1"),
                *(f"--master-port={port}", "--no-python", str(CMI), "run", str(config)),
                *("--out", str(out), "-o", "trainer.num_nodes=2"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=120)[0] for node in nodes]
    refused = f"error: {out} is not empty and holds no run; choose another --out"
    assert [node.returncode for node in nodes] == [1, 1], outputs[1][-3000:]
    assert refused in outputs[0].splitlines(), outputs[0][-3000:]
    relayed = f"error: rank 0 stopped the run: {refused.removeprefix('error: ')}"
    assert relayed in outputs[1].splitlines(), outputs[1][-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
