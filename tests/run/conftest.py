"""A tiny run configuration (4 synthetic subjects, a 1-block encoder, a few steps) and one
finished 2-fold run shared by the run tests."""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pytorch_lightning import Callback, LightningModule, Trainer

from cmi_core.config import Config, config_from_dict

TINY: dict[str, Any] = {
    "name": "tiny",
    "data": {"source": "synthetic", "synthetic": {"subjects": 4, "seed": 1}, "max_len": 32},
    "cv": {"n_folds": 2, "seed": 0},
    "model": {
        "backbone": "squeezeformer",
        "squeezeformer": {
            "d_model": 16,
            "n_layers": 1,
            "n_heads": 2,
            "ff_dim": 32,
            "kernel_size": 5,
        },
    },
    "loss": {"weighting": {"strategy": "uncertainty"}},
    "optimizer": {"lr": 0.003},
    "trainer": {
        "max_epochs": 2,
        "batch_size": 32,
        "accelerator": "cpu",
        "devices": 1,
        "threads": 1,
        "limit_train_batches": 3,
    },
    "logging": {"loggers": ["tensorboard", "csv"], "log_every_n_steps": 1},
}


def tiny_config(cache_dir: Path, **tables: dict[str, Any]) -> Config:
    """The tiny config with its data under ``cache_dir``; ``tables`` update top-level tables."""
    raw = {key: dict(value) if isinstance(value, dict) else value for key, value in TINY.items()}
    for key, table in tables.items():
        raw[key] = {**raw.get(key, {}), **table}
    raw["data"]["cache_dir"] = str(cache_dir)
    return config_from_dict(raw, "<tiny>")


@pytest.fixture(scope="session")
def run_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for all run tests: the synthetic set is generated once."""
    return tmp_path_factory.mktemp("run_cache")


@pytest.fixture(scope="session")
def finished_run(run_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-fold, 2-epoch run directory (treat as read-only)."""
    from cmi_core.runs.run import run_experiment

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    run_experiment(tiny_config(run_cache), run_dir, progress=False)
    return run_dir


def with_callbacks(monkeypatch: pytest.MonkeyPatch, make: Callable[[int], Sequence[Any]]) -> None:
    """Give fold ``k``'s trainer the extra callbacks ``make(k)`` (fault injection)."""
    from cmi_core.runs import run

    original = run.train_fold

    @functools.wraps(original)
    def train_fold(cfg: Config, data: Any, fold_of: Any, k: int, out_dir: Path, **kwargs: Any):
        return original(cfg, data, fold_of, k, out_dir, extra_callbacks=make(k), **kwargs)

    monkeypatch.setattr(run, "train_fold", train_fold)


class SendSignal(Callback):
    """Sends this process a real ``signum`` once, in the second epoch (the first is
    checkpointed)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum
        self.sent = False

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        if trainer.current_epoch == 1 and i == 0 and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)
