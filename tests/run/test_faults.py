"""Faults get a one-line error and leave the run directory in a usable state."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from cmi_core.errors import ConfigError, DataError, RunError
from cmi_core.runs.run import run_experiment
from tests.run.conftest import tiny_config, with_callbacks


class PoisonWeights(Callback):
    """Puts a NaN into the 18-class head at the second step of the second epoch."""

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch == 1 and batch_idx == 1:
            with torch.no_grad():
                pl_module.heads["multiclass"][-1].weight[0, 0] = math.nan


def test_a_nan_loss_stops_the_fold_naming_step_and_terms_and_keeps_the_last_checkpoint(
    run_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_callbacks(monkeypatch, lambda k: [PoisonWeights()])
    run_dir = tmp_path / "run"
    with pytest.raises(RunError) as caught:
        run_experiment(tiny_config(run_cache, cv={"folds": [0]}), run_dir, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("fold 0 stopped: non-finite loss at step 4: multiclass=nan, ")
    assert "binary=" in message and "nine_class=" in message and "kl=" in message
    kept = f"its last good checkpoint {run_dir / 'fold_0' / 'last.ckpt'} is kept. "
    assert kept + "Resuming would repeat the same steps: start a new run with a lower " in message
    last = torch.load(run_dir / "fold_0" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 3
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    assert torch.load(run_dir / "fold_0" / "best.pt", weights_only=True)["epoch"] == 0
    assert not (run_dir / "summary.json").exists()  # no fold finished


class BlowUpGradient(Callback):
    """An infinite gradient at the last step of epoch 1, as a too-high learning rate gives."""

    def on_after_backward(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch == 1 and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            pl_module.heads["multiclass"][-1].weight.grad[0, 0] = math.inf


def _finite(tree: Any) -> bool:
    if isinstance(tree, torch.Tensor):
        return not tree.is_floating_point() or bool(torch.isfinite(tree).all())
    values = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else []
    return all(_finite(value) for value in values)


def test_a_blow_up_stops_before_any_checkpoint_holds_it_and_resume_will_not_repeat_it(
    run_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_callbacks(monkeypatch, lambda k: [BlowUpGradient()])
    cfg, run_dir = tiny_config(run_cache, cv={"folds": [0]}, trainer={"max_epochs": 3}), tmp_path
    with pytest.raises(RunError, match=r"^fold 0 stopped: non-finite gradient of heads\."):
        run_experiment(cfg, run_dir, progress=False)
    last = torch.load(run_dir / "fold_0" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0, "last.ckpt must be the last good epoch"
    assert _finite(last["state_dict"]) and _finite(last["optimizer_states"])
    assert _finite(torch.load(run_dir / "fold_0" / "best.pt", weights_only=True)["state_dict"])
    with pytest.raises(RunError, match=r"fold 0 stopped earlier on a non-finite value .*delete"):
        run_experiment(cfg, run_dir, resume=True, progress=False)


class PoisonOptimizerState(Callback):
    """A NaN in the optimizer's moments before epoch 1's validation (the weights stay finite)."""

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch == 1:
            state = next(iter(trainer.optimizers[0].state.values()))
            state["exp_avg"].view(-1)[0] = math.nan


def test_last_ckpt_is_never_written_from_a_non_finite_optimizer_state(
    run_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_callbacks(monkeypatch, lambda k: [PoisonOptimizerState()])
    cfg = tiny_config(run_cache, cv={"folds": [0]}, trainer={"max_epochs": 3})
    with pytest.raises(RunError, match=r"non-finite optimizer state \d+\.exp_avg at step 6"):
        run_experiment(cfg, tmp_path, progress=False)
    last = torch.load(tmp_path / "fold_0" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and _finite(last["optimizer_states"])


def test_a_data_directory_without_the_files_is_a_data_error(
    run_cache: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "kaggle"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"data\.dir: .*holds no readable train\.csv"):
        tiny_config(run_cache, data={"source": "kaggle", "dir": str(empty)})
    for name in ("train.csv", "train_demographics.csv"):  # there at check, gone at run
        (empty / name).touch()
    cfg = tiny_config(run_cache, data={"source": "kaggle", "dir": str(empty)})
    for name in ("train.csv", "train_demographics.csv"):
        (empty / name).unlink()
    with pytest.raises(DataError, match=r"train\.csv: file not found"):
        run_experiment(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists(), "a failed start must not leave a run directory"


def test_more_folds_than_subjects_is_a_data_error(run_cache: Path, tmp_path: Path) -> None:
    cfg = tiny_config(run_cache, cv={"n_folds": 5})
    with pytest.raises(DataError, match=r"cv\.n_folds = 5 but the data has only 4 subjects"):
        run_experiment(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_unknown_folds_are_refused(run_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"folds \[2\] do not exist: cv.n_folds = 2"):
        run_experiment(tiny_config(run_cache), tmp_path / "run", folds=[0, 2], progress=False)
