"""``cmi sweep`` end to end on the tiny config: run directories, sweep.json, a failed trial,
resume, and ``cmi compare`` on the result (one job: trials run in this process)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cmi_core.cli import main
from cmi_core.errors import RunError
from cmi_core.train import fold


def test_sweep_runs_every_point_reports_a_failure_and_resumes(
    tiny_toml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", str(tiny_toml), "-o", "trainer.max_epochs=1", "--jobs", "1"]
    argv += ["--grid", "loss.weighting.strategy=none,uncertainty", "--seed-list", "7"]
    argv += ["--out", str(out)]
    train_fold = fold.train_fold

    def failing(cfg: Any, data: Any, fold_of: Any, k: int, run_dir: Path, **kw: Any) -> Any:
        if cfg.loss.weighting.strategy == "uncertainty" and k == 1:
            raise RunError("fold 1 stopped: injected failure")
        return train_fold(cfg, data, fold_of, k, run_dir, **kw)

    monkeypatch.setattr(fold, "train_fold", failing)
    assert main(argv) == 1  # one trial failed, the other three finished
    err = capsys.readouterr().err
    assert "[3/4 trials, 1 failed] uncertainty-seed7 fold 1: FAILED: fold 1 stopped" in err
    state = json.loads((out / "sweep.json").read_text())
    assert state["grid"] == {"loss.weighting.strategy": ["none", "uncertainty"]}
    by_name = {p["name"]: p for p in state["points"]}
    assert by_name["none-seed7"]["status"] == "done"
    failed = by_name["uncertainty-seed7"]
    assert failed["status"] == "failed" and failed["folds_done"] == [0]
    assert failed["errors"] == {"1": "fold 1 stopped: injected failure"}
    config = tomllib.loads((out / "uncertainty-seed7" / "config.toml").read_text())
    assert config["loss"]["weighting"]["strategy"] == "uncertainty"
    assert config["trainer"]["seed"] == 7

    monkeypatch.setattr(fold, "train_fold", train_fold)
    assert main(argv) == 0  # the same command again: only the failed trial trains
    err = capsys.readouterr().err
    assert err.count("trials") == 1 and "[4/4 trials] uncertainty-seed7 fold 1" in err
    state = json.loads((out / "sweep.json").read_text())
    assert {p["status"] for p in state["points"]} == {"done"}
    summary = json.loads((out / "uncertainty-seed7" / "summary.json").read_text())
    assert summary["complete"] and [f["fold"] for f in summary["folds"]] == [0, 1]

    assert main(["compare", str(out), "--baseline", "none"]) == 0
    table = capsys.readouterr().out
    assert "uncertainty" in table and "(baseline)" in table
    # TensorBoard's hparams view of the sweep: one session per fold, the grid key in each
    for name, strategy in (("none-seed7", "none"), ("uncertainty-seed7", "uncertainty")):
        for k in (0, 1):
            hparams = _session_hparams(out / name / f"fold_{k}")
            assert hparams["loss.weighting.strategy"].string_value == strategy
            assert hparams["trainer.seed"].number_value == 7


def _session_hparams(fold_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(fold_dir))
    events.Reload()
    raw = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(raw).session_start_info.hparams


def test_a_directory_holding_another_sweep_is_refused(
    tiny_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    other = {"overrides": [], "grid": {}, "seeds": [0], "points": []}
    (out / "sweep.json").write_text(json.dumps(other))
    argv = ["sweep", str(tiny_toml), "--grid", "trainer.max_epochs=1", "--out", str(out)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {out} holds a different sweep (its grid, seeds or overrides differ); "
        "choose another --out"
    )
