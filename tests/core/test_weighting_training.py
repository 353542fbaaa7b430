"""The loss-level strategies inside the LightningModule: the trainer drives their state."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from .conftest import ModelFactory, make_batch

TERMS = ("multiclass", "binary", "nine_class", "kl")


def _fit_and_read_log(model: pl.LightningModule, root: Path) -> list[dict[str, str]]:
    """Three training steps (and validation), every step's tags logged; the logged rows."""
    trainer = pl.Trainer(
        max_epochs=1,
        default_root_dir=root,
        logger=pl.loggers.CSVLogger(root, name="log", version=0),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    batches = [make_batch(seed=seed) for seed in range(3)]
    trainer.fit(
        model, DataLoader(batches, batch_size=None), DataLoader(batches[:1], batch_size=None)
    )
    with (root / "log" / "version_0" / "metrics.csv").open() as handle:
        return [row for row in csv.DictReader(handle) if row.get("weights/multiclass")]


@pytest.mark.parametrize("strategy", ["dwa", "rlw", "gls", "famo"])
def test_each_step_logs_finite_weights(
    make_model: ModelFactory, tmp_path: Path, strategy: str
) -> None:
    rows = _fit_and_read_log(make_model(strategy), tmp_path)
    assert len(rows) == 3
    for row in rows:
        assert all(math.isfinite(float(row[f"weights/{t}"])) for t in TERMS)


def test_rlw_draws_new_weights_every_step(make_model: ModelFactory, tmp_path: Path) -> None:
    rows = _fit_and_read_log(make_model("rlw"), tmp_path)
    draws = [tuple(float(row[f"weights/{t}"]) for t in TERMS) for row in rows]
    assert len(set(draws)) == 3
    assert all(sum(draw) == pytest.approx(1.0, abs=1e-6) for draw in draws)


def test_famo_updates_its_logits_between_the_trainer_steps(
    make_model: ModelFactory, tmp_path: Path
) -> None:
    model = make_model("famo")
    rows = _fit_and_read_log(model, tmp_path)
    # three steps: the second and third forward passes apply the first two logit updates;
    # validation neither updates nor records
    assert int(model.weighting.adam_steps) == 2
    balanced = TERMS[:3]  # kl is held at its fixed weight by default
    logits = [[float(row[f"weighting/logit_{t}"]) for t in balanced] for row in rows]
    assert logits[0] == [0.0] * 3 and logits[1] != logits[0] and logits[2] != logits[1]
    assert all(float(row["weights/kl"]) == pytest.approx(0.1) for row in rows)
