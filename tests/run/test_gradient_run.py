"""A run with a gradient-level strategy, as ``cmi run`` trains it: weights and gradient
statistics reach TensorBoard, its custom-scalars layout and ``cmi report``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cmi_core.analysis.report import read_scalars, write_report
from cmi_core.cli import main
from cmi_core.config import config_to_toml
from cmi_core.rundir.layout import fold_dirs
from cmi_core.runs.run import run_experiment
from tests.run.conftest import tiny_config

TERMS = ("multiclass", "binary", "nine_class", "kl")


def test_upgrad_run_logs_weights_and_gradient_stats(run_cache: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
        run_cache,
        cv={"folds": [0]},
        loss={"weighting": {"strategy": "upgrad"}},
        trainer={"max_epochs": 1, "limit_train_batches": 3},
    )
    run_dir = tmp_path / "run"
    summary = run_experiment(cfg, run_dir, progress=False)
    assert summary["complete"] is True
    scalars = read_scalars(fold_dirs(run_dir)[0])
    for tag in [f"weights/{t}" for t in TERMS] + [f"grad/norm/{t}" for t in TERMS]:
        steps, values = scalars[tag]
        assert len(steps) == 3 and np.isfinite(values).all(), tag
    cosines = [t for t in scalars if t.startswith("grad/cosine/")]
    assert len(cosines) == 6 and "grad/cosine/multiclass__binary" in cosines
    assert all((np.abs(scalars[t][1]) <= 1.0 + 1e-6).all() for t in cosines)
    assert all((scalars[f"weights/{t}"][1] > 0).all() for t in TERMS)
    written = {p.name for p in write_report(run_dir)}
    assert {"weights.png", "grad_norms.png", "grad_cosines.png"} <= written


def test_the_tensorboard_layout_charts_the_gradient_stats() -> None:
    from cmi_logger_tensorboard.logger import LAYOUT

    charts = {regex for _, (kind, regexes) in LAYOUT["cmi"].items() for regex in regexes}
    assert {r"^grad/norm/", r"^grad/cosine/"} <= charts


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss.weighting.cagrad.where=nowhere", "loss.weighting.cagrad.where"),
        ("loss.weighting.cagrad.c=-1", "loss.weighting.cagrad.c"),
    ],
)
def test_bad_gradient_options_fail_cmi_check_in_one_line(
    run_cache: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    override: str,
    message: str,
) -> None:
    config = tmp_path / "c.toml"
    cfg = tiny_config(run_cache, loss={"weighting": {"strategy": "cagrad"}})
    config.write_text(config_to_toml(cfg))
    assert main(["check", str(config), "-o", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_a_missing_optional_dependency_fails_cmi_check(
    run_cache: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "cvxpy" else find_spec(n, *a)
    )
    config = tmp_path / "c.toml"
    cfg = tiny_config(run_cache, loss={"weighting": {"strategy": "none"}})
    config.write_text(config_to_toml(cfg))
    assert main(["check", str(config), "-o", "loss.weighting.strategy=nash_mtl"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {config}: loss.weighting.nash_mtl: strategy 'nash_mtl' needs cvxpy: "
        "pip install 'cmi-trainer[mtl]'"
    ]
