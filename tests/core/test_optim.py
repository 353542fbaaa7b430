"""Optimizer parameter groups, the schedule, and schedule-free mode switching in real fits."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from cmi_core.config import OPTIMIZERS, OptimizerConfig
from cmi_core.train.model import CMIModel
from cmi_core.train.optim import ScheduleFreeModeSwitch, build_optimizer, lr_factor

from .conftest import ModelFactory, make_batch

SCHEDULE_FREE = OptimizerConfig(name="schedulefree_adamw", lr=0.01)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_weighting_parameters_get_their_own_group(make_model: ModelFactory, name: str) -> None:
    model = make_model("uncertainty")
    cfg = OptimizerConfig(name=name, lr=0.02, weight_decay=0.05)
    optimizer, scheduler = build_optimizer(model, cfg, model.weighting.parameters(), 0.1, 100)
    main, weighting = optimizer.param_groups
    assert weighting["lr"] == pytest.approx(0.002)
    assert weighting["weight_decay"] == 0.0
    assert main["lr"] == 0.02 and main["weight_decay"] == 0.05
    assert {id(p) for p in weighting["params"]} == {id(p) for p in model.weighting.parameters()}
    everything = {id(p) for p in model.parameters()}
    assert {id(p) for p in main["params"]} == everything - {id(p) for p in weighting["params"]}
    assert (scheduler is not None) == (name == "adamw")


def test_a_strategy_without_parameters_has_one_group(make_model: ModelFactory) -> None:
    model = make_model("none")
    optimizer, _ = build_optimizer(model, OptimizerConfig(), model.weighting.parameters(), 0.1, 10)
    assert len(optimizer.param_groups) == 1


def test_warmup_then_cosine_down_to_min_lr() -> None:
    factor = [lr_factor(s, warmup=4, total=24, floor=0.01, cosine=True) for s in range(30)]
    assert factor[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factor[4] == 1.0
    assert factor[14] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factor[24] == pytest.approx(0.01) and factor[29] == pytest.approx(0.01)
    assert lr_factor(7, warmup=4, total=24, floor=0.01, cosine=False) == 1.0


def test_the_schedule_keeps_the_weighting_lr_ratio(make_model: ModelFactory) -> None:
    model = make_model("uncertainty")
    cfg = OptimizerConfig(lr=0.01, min_lr=1e-4, warmup_steps=2)
    optimizer, scheduler = build_optimizer(model, cfg, model.weighting.parameters(), 0.1, 10)
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        main, weighting = (g["lr"] for g in optimizer.param_groups)
        assert weighting == pytest.approx(0.1 * main)
    assert build_optimizer(model, OptimizerConfig(scheduler="none"), [], 0.1, 10)[1] is None


# -- schedule-free in real fits ------------------------------------------------------------


def _loader(n: int, seed: int) -> DataLoader:
    return DataLoader([make_batch(8, 24, seed + i) for i in range(n)], batch_size=None)


def _trainer(root: Path, callbacks: list, max_epochs: int = 2) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=max_epochs,
        default_root_dir=root,
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=bool(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _params_equal(a: dict, b: dict) -> bool:
    """Parameters equal up to the rounding of a train()/eval() round trip (a lerp each way)."""
    return all(
        torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
        for k in a
        if "running" not in k and "batches" not in k
    )


def test_the_model_brings_its_mode_switch_for_schedule_free(make_model: ModelFactory) -> None:
    assert make_model(optimizer=OptimizerConfig()).configure_callbacks() == []
    (switch,) = make_model(optimizer=SCHEDULE_FREE).configure_callbacks()
    assert isinstance(switch, ScheduleFreeModeSwitch)


def test_checkpoints_hold_the_averaged_weights_and_a_resumed_run_trains(
    make_model: ModelFactory, tmp_path: Path
) -> None:
    model = make_model("uncertainty", optimizer=SCHEDULE_FREE)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    _trainer(tmp_path, [checkpoint]).fit(model, _loader(4, 0), _loader(1, 100))

    (optimizer,) = model.trainer.optimizers
    assert optimizer.param_groups[0]["train_mode"] is False  # left in eval mode after fit
    eval_weights = _weights(model)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert _params_equal(saved["state_dict"], eval_weights)
    assert saved["optimizer_states"][0]["param_groups"][0]["train_mode"] is False
    optimizer.train()
    assert not _params_equal(_weights(model), eval_weights)  # y differs from the averaged x

    resumed = make_model("uncertainty", optimizer=SCHEDULE_FREE)
    again = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "resumed", save_last=True)
    trainer = _trainer(tmp_path, [again], max_epochs=3)
    trainer.fit(resumed, _loader(4, 0), _loader(1, 100), ckpt_path=tmp_path / "last.ckpt")
    assert trainer.global_step == 12
    assert not _params_equal(_weights(resumed), eval_weights)


def test_a_checkpoint_saved_in_train_mode_is_rewritten_with_eval_weights(
    make_model: ModelFactory, tmp_path: Path
) -> None:
    model = make_model("direct", optimizer=SCHEDULE_FREE)
    trainer = _trainer(tmp_path, [], max_epochs=1)
    trainer.fit(model, _loader(3, 0))
    (optimizer,) = trainer.optimizers
    optimizer.eval()
    eval_weights = _weights(model)
    optimizer.train()
    train_weights = _weights(model)

    trainer.save_checkpoint(tmp_path / "mid.ckpt")  # as a save every N steps would happen
    saved = torch.load(tmp_path / "mid.ckpt", weights_only=True)
    assert _params_equal(saved["state_dict"], eval_weights)
    assert saved["optimizer_states"][0]["param_groups"][0]["train_mode"] is False
    assert optimizer.param_groups[0]["train_mode"] is True  # the live run goes on training
    assert _params_equal(_weights(model), train_weights)


def test_batch_norm_statistics_are_recomputed_for_the_averaged_weights(
    make_model: ModelFactory, tmp_path: Path
) -> None:
    model: CMIModel = make_model("none", optimizer=SCHEDULE_FREE)
    trainer = _trainer(tmp_path, [], max_epochs=1)
    trainer.fit(model, _loader(10, 0))
    (norm,) = (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert norm.num_batches_tracked.item() == 8  # reset, then the last 8 training batches
    assert norm.momentum == 0.1
    recomputed = norm.running_mean.clone()

    # The same statistics, by hand: the cumulative mean of the 8 batches' means with x weights.
    means = []
    hook = norm.register_forward_hook(lambda m, inputs, out: means.append(_masked_mean(*inputs)))
    model.eval()
    norm.train()  # batch statistics in BatchNorm only; dropout stays off
    with torch.no_grad():
        for batch in list(_loader(10, 0))[-8:]:
            model.predict_step(batch, 0)
    hook.remove()
    torch.testing.assert_close(recomputed, torch.stack(means).mean(dim=0))


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weight = mask.unsqueeze(1).float()
    return (x * weight).sum(dim=(0, 2)) / weight.sum()


def test_eval_before_any_training_batch_keeps_the_batch_norm_statistics(
    make_model: ModelFactory,
) -> None:
    """A validation (or checkpoint) before the switch has seen a batch, e.g. right after a
    resume, has nothing to recompute the statistics from: they must stay as they are."""
    model: CMIModel = make_model("none", optimizer=SCHEDULE_FREE)
    (norm,) = (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    with torch.no_grad():
        norm.running_mean.uniform_(-1.0, 1.0)
        norm.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    optimizer, _ = build_optimizer(model, SCHEDULE_FREE, [], 1.0, 10)
    optimizer.train()
    trainer = SimpleNamespace(optimizers=[optimizer])

    ScheduleFreeModeSwitch().on_validation_start(trainer, model)

    assert optimizer.param_groups[0]["train_mode"] is False  # the switch did run
    for key, value in norm.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=f"{key} changed")


def test_the_built_schedule_follows_warmup_and_cosine_to_min_lr(make_model: ModelFactory) -> None:
    model = make_model("none")
    cfg = OptimizerConfig(lr=0.01, min_lr=1e-4, warmup_steps=2)
    optimizer, scheduler = build_optimizer(model, cfg, [], 0.1, 10)
    for step in range(12):
        expected = 0.01 * lr_factor(step, warmup=2, total=10, floor=0.01, cosine=True)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected), f"step {step}"
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


@pytest.mark.parametrize(
    "hook", ["on_train_epoch_end", "on_validation_start", "on_test_start", "on_predict_start"]
)
def test_each_evaluation_boundary_switches_to_the_averaged_weights(
    make_model: ModelFactory, hook: str
) -> None:
    model = make_model("uncertainty", optimizer=SCHEDULE_FREE)
    optimizer, _ = build_optimizer(model, SCHEDULE_FREE, model.weighting.parameters(), 0.1, 10)
    optimizer.train()
    for seed in range(3):
        with warnings.catch_warnings():  # self.log outside a Trainer warns
            warnings.simplefilter("ignore")
            model.training_step(make_batch(seed=seed), seed).backward()
        optimizer.step()
        optimizer.zero_grad()
    trained = _weights(model)

    getattr(ScheduleFreeModeSwitch(), hook)(SimpleNamespace(optimizers=[optimizer]), model)

    assert optimizer.param_groups[0]["train_mode"] is False
    assert not _params_equal(_weights(model), trained)  # x, not the y weights it trained
