"""A tiny trained run (synthetic data, 2 folds, a few steps) shared by the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmi_core.config import Config, config_from_dict

TINY = {
    "name": "tiny",
    "data": {
        "source": "synthetic",
        "synthetic": {"subjects": 4, "seed": 3},
        "max_len": 32,
        "features": {"thm_tof": False},
    },
    "cv": {"n_folds": 2, "seed": 0},
    "model": {
        "backbone": "squeezeformer",
        "options": {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32, "kernel_size": 5},
    },
    "loss": {"weighting": {"strategy": "uncertainty"}},
    "trainer": {
        "max_epochs": 1,
        "batch_size": 32,
        "accelerator": "cpu",
        "devices": 1,
        "limit_train_batches": 3,
    },
    "logging": {"loggers": []},
}


def tiny_config(cache_dir: Path, **sections: dict) -> Config:
    """The tiny config with its data cached under ``cache_dir``; ``sections`` replace tables."""
    raw = {**TINY, **sections}
    raw["data"] = {**raw["data"], "cache_dir": str(cache_dir)}
    return config_from_dict(raw, "<tiny>")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the tiny runs: the synthetic set is generated once."""
    return tmp_path_factory.mktemp("tiny_cache")


def _train(cfg: Config, run_dir: Path) -> tuple[Path, Path]:
    from cmi_core.data.io import resolve_data_dir
    from cmi_core.run import run_experiment

    run_experiment(cfg, run_dir, progress=False)
    return run_dir, resolve_data_dir(cfg.data)


@pytest.fixture(scope="session")
def tiny_run(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(run_dir, data_dir)``: a finished 2-fold IMU-only run and its synthetic Kaggle files."""
    return _train(tiny_config(tiny_cache), tmp_path_factory.mktemp("tiny_run") / "run")


@pytest.fixture(scope="session")
def tiny_thm_tof_run(
    tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Like ``tiny_run`` with the thermopile/ToF channels, fold 0 only."""
    cfg = tiny_config(
        tiny_cache,
        data={**TINY["data"], "features": {"thm_tof": True}},
        cv={**TINY["cv"], "folds": [0]},
    )
    return _train(cfg, tmp_path_factory.mktemp("tiny_thm_tof_run") / "run")
