"""A run with a schedule-free optimizer validates (and so picks ``best.pt``) with averaged weights.

Schedule-free optimizers train one weight sequence (``y``) and average another (``x``); only
``optimizer.eval()`` puts ``x`` into the model. Validation that forgot the switch would score
``y`` and pick ``best.pt`` with it, with nothing failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from cmi_core.train.optim import is_schedule_free

from .conftest import tiny_config, with_callbacks


class AveragedWeightsProbe(pl.Callback):
    """At each validation batch: are the model's weights the optimizer's averaged ``x``?

    ``optimizer.eval()`` is a no-op in eval mode and moves the weights to ``x`` otherwise, so
    the weights before and after it tell which sequence validation is scoring.
    """

    def __init__(self) -> None:
        self.averaged: list[bool] = []

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if trainer.sanity_checking:
            return
        seen = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        for optimizer in trainer.optimizers:
            optimizer.eval()
        self.averaged.append(all(torch.equal(seen[k], v) for k, v in pl_module.named_parameters()))


def test_validation_scores_the_averaged_weights(
    run_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cmi_core.runs.run import run_experiment

    probe = AveragedWeightsProbe()
    with_callbacks(monkeypatch, lambda k: [probe])
    cfg = tiny_config(
        run_cache, optimizer={"name": "schedulefree_adamw", "lr": 0.01}, cv={"folds": [0]}
    )
    run_experiment(cfg, tmp_path / "run", progress=False)

    assert len(probe.averaged) >= 2, "validation did not run after each epoch"
    assert all(probe.averaged), f"validation batches scored the training weights: {probe.averaged}"


def test_the_shipped_schedule_free_config_uses_a_schedule_free_optimizer() -> None:
    from cmi_core.config import load_config
    from cmi_core.train.optim import build_optimizer

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs/exp025_schedulefree.toml")
    optimizer, scheduler = build_optimizer(torch.nn.Linear(2, 2), cfg.optimizer, [], 0.1, 10)
    assert is_schedule_free(optimizer) and scheduler is None
