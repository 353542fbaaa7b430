"""``dwa``: the contract kit and the paper's formula (Liu, Johns & Davison 2019, eq. 7)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import cmi_core
from cmi_core.testing import WeightingContract

from .conftest import ModelFactory, make_batch

TERMS = ("multiclass", "binary", "nine_class", "kl")
FIXED = {"multiclass": 0.5, "binary": 0.5, "nine_class": 0.2, "kl": 0.1}


class TestDWAWeighting(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "dwa"


class TestDWAStepWindows(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "dwa"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"window": 1, "temperature": 0.5}


def _losses(values: list[float]) -> dict[str, torch.Tensor]:
    return {t: torch.tensor(v) for t, v in zip(TERMS, values, strict=True)}


def _weights(weighting: cmi_core.LossWeighting) -> dict[str, float]:
    return {t: float(w) for t, w in weighting.effective_weights().items()}


def _paper_weights(rates: list[float], temperature: float) -> dict[str, float]:
    """``lambda_k = K exp(w_k / T) / sum_i exp(w_i / T)``, times the fixed weights."""
    exps = [math.exp(r / temperature) for r in rates]
    return {t: FIXED[t] * len(TERMS) * e / sum(exps) for t, e in zip(TERMS, exps, strict=True)}


def test_weights_follow_the_paper_over_two_recorded_epochs() -> None:
    dwa = cmi_core.build_weighting("dwa", TERMS, temperature=2.0)
    epochs = [
        [[2.0, 1.0, 1.5, 0.2], [2.2, 0.9, 1.7, 0.4]],  # epoch means 2.1, 0.95, 1.6, 0.3
        [[2.0, 0.5, 0.8, 0.1], [2.2, 0.3, 1.6, 0.2], [2.1, 0.4, 1.2, 0.15]],
    ]
    for steps in epochs:
        dwa.before_train_epoch()
        for step in steps:
            dwa(_losses(step))
            assert _weights(dwa) == pytest.approx(FIXED)  # w = 1 in the first two epochs
    dwa.before_train_epoch()  # the third epoch starts
    rates = [2.1 / 2.1, 0.4 / 0.95, 1.2 / 1.6, 0.15 / 0.3]
    assert _weights(dwa) == pytest.approx(_paper_weights(rates, 2.0))
    losses = _losses([1.0, 2.0, 3.0, 4.0])
    expected = sum(w * float(losses[t]) for t, w in _paper_weights(rates, 2.0).items())
    assert float(dwa(losses)) == pytest.approx(expected)


def test_step_windows_close_every_window_steps() -> None:
    dwa = cmi_core.build_weighting("dwa", TERMS, temperature=1.0, window=2)
    for step in ([1.0, 1.0, 1.0, 1.0], [3.0, 1.0, 1.0, 1.0], [2.0, 1.0, 0.5, 1.0]):
        dwa(_losses(step))
    assert _weights(dwa) == pytest.approx(FIXED)  # one window closed, the second is open
    dwa.before_train_epoch()  # epochs do not close step windows
    dwa(_losses([2.0, 1.0, 0.5, 1.0]))
    rates = [2.0 / 2.0, 1.0, 0.5, 1.0]
    assert _weights(dwa) == pytest.approx(_paper_weights(rates, 1.0))


def test_validation_and_empty_epochs_do_not_change_the_history() -> None:
    dwa = cmi_core.build_weighting("dwa", TERMS)
    dwa.before_train_epoch()
    dwa(_losses([2.0, 1.0, 1.0, 1.0]))
    dwa.eval()(_losses([9.0, 9.0, 9.0, 9.0]))
    dwa.train()
    for _ in range(3):  # only the first closes a window: nothing was recorded since
        dwa.before_train_epoch()
    dwa(_losses([1.0, 1.0, 1.0, 1.0]))
    dwa.before_train_epoch()
    assert _weights(dwa) == pytest.approx(_paper_weights([0.5, 1.0, 1.0, 1.0], 2.0))


def test_the_trainer_closes_one_window_per_epoch(make_model: ModelFactory, tmp_path: Path) -> None:
    model = make_model("dwa")
    trainer = pl.Trainer(
        max_epochs=3,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    batches = [make_batch(seed=seed) for seed in range(2)]
    trainer.fit(model, DataLoader(batches, batch_size=None))
    # epochs 1 and 2 were closed when epochs 2 and 3 started; epoch 3's steps are recorded
    assert int(model.weighting.windows) == 2
    assert int(model.weighting.window_steps) == 2


def test_bad_options_are_one_line_config_errors() -> None:
    with pytest.raises(cmi_core.ConfigError, match=r"window: must be >= 0, got -1"):
        cmi_core.build_weighting("dwa", TERMS, window=-1)
    with pytest.raises(cmi_core.ConfigError, match=r"temperature: must be > 0, got 0"):
        cmi_core.build_weighting("dwa", TERMS, temperature=0.0)
