"""The model's gradient-level path: the update it applies equals the hand-built one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision
from torch import Tensor, nn
from torch.utils.data import DataLoader

from cmi_core.backbone import Backbone
from cmi_core.config import OptimizerConfig
from cmi_core.train.model import CMIModel
from cmi_core.weighting import AggregatorWeighting, FixedWeights, LossWeighting

from .conftest import ModelFactory, make_batch

FIXED = FixedWeights()


class PlainSum(LossWeighting):
    """Loss-level ``sum_i L_i``: what each head's parameters see on the gradient path."""

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return torch.stack([losses[t] for t in self.terms]).sum()


def _step(model: CMIModel) -> dict[str, Tensor]:
    """One training step (eval mode: no dropout) and its backward; the parameters' gradients."""
    model.eval().zero_grad()
    model.backward(model.training_step(make_batch(), 0))
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _with(model: CMIModel, weighting: LossWeighting) -> CMIModel:
    model.weighting = weighting
    return model


def _fixed_aggregator(terms: tuple[str, ...]) -> AggregatorWeighting:
    weights = torch.tensor(list(FIXED.for_terms(terms).values()))
    return AggregatorWeighting(terms, FIXED, "representation", weights.__matmul__)


def _split(grads: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    shared = {n: g for n, g in grads.items() if n.startswith(("backbone.", "demographics."))}
    heads = {n: g for n, g in grads.items() if n.startswith("heads.")}
    assert shared and heads and len(shared) + len(heads) == len(grads)
    return shared, heads


@pytest.mark.parametrize("where", ["representation", "parameters"])
def test_a_linear_aggregator_reproduces_the_loss_level_gradients(
    make_model: ModelFactory, where: str
) -> None:
    """Aggregating with the fixed weights: the shared part gets exactly ``none``'s gradient,
    each head its own tasks' gradients (the plain sum over the losses that use it)."""
    reference = make_model("none")
    terms = reference.weighting.terms
    expected_shared, _ = _split(_step(reference))
    _, expected_heads = _split(_step(_with(make_model("none"), PlainSum(terms, FIXED))))
    strategy = _fixed_aggregator(terms)
    strategy.where = where
    shared, heads = _split(_step(_with(make_model("none"), strategy)))
    for name, grad in {**expected_shared, **expected_heads}.items():
        torch.testing.assert_close({**shared, **heads}[name], grad, msg=name)


def test_the_gradient_scaler_factor_scales_every_gradient(
    make_model: ModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under 16-mixed Lightning unscales the gradients after backward: every gradient of the
    gradient-level pass must carry the scaler's factor, and the strategy must see the true
    Jacobian (checked by the weights, which a scaled Jacobian would change for GradNorm)."""
    plain = _step(make_model("gradnorm"))
    model = make_model("gradnorm")
    monkeypatch.setattr(CMIModel, "_gradient_scale", lambda self: 1024.0)
    scaled = _step(model)
    assert set(scaled) == set(plain)
    for name, grad in plain.items():
        torch.testing.assert_close(scaled[name], grad * 1024.0, msg=name, rtol=1e-4, atol=1e-6)


def test_loss_level_strategies_log_gradient_stats_only_when_asked(
    make_model: ModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: dict[str, Tensor] = {}
    monkeypatch.setattr(CMIModel, "log_dict", lambda self, values, **kw: logged.update(values))
    _step(make_model("none"))
    assert not [k for k in logged if k.startswith("grad/")]
    model = make_model("none")
    loss = model.loss_cfg
    model.loss_cfg = type(loss)(weighting=type(loss.weighting)(monitor_gradients=True))
    _step(model)
    terms = model.weighting.terms
    assert {f"grad/norm/{t}" for t in terms} <= set(logged)
    assert "grad/cosine/multiclass__binary" in logged
    assert -1.0 <= float(logged["grad/cosine/multiclass__binary"]) <= 1.0


def _trainer(**options: Any) -> pl.Trainer:
    """A quiet one-epoch trainer: no checkpoints, progress bar, summary or sanity check."""
    quiet = {"enable_checkpointing": False, "enable_progress_bar": False}
    quiet |= {"enable_model_summary": False, "num_sanity_val_steps": 0}
    return pl.Trainer(**{"max_epochs": 1, **quiet, **options})


def _batches() -> DataLoader:
    return DataLoader([make_batch(seed=s) for s in range(3)], batch_size=None)


class MeanPool(Backbone):
    """A minimal backbone (masked mean, one linear layer) that runs under any precision."""

    out_dim = 16

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(7, self.out_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        weights = mask.unsqueeze(-1).to(x.dtype)
        return self.proj((x * weights).sum(1) / weights.sum(1).clamp_min(1.0))


GPU = [("upgrad", "adamw", "16-mixed"), ("gradnorm", "adamw", "16-mixed")]


@pytest.mark.parametrize(
    ("strategy", "optimizer", "precision"),
    [
        ("upgrad", "adamw", "32-true"),
        ("upgrad", "adamw", "bf16-mixed"),
        ("gradnorm", "schedulefree_adamw", "bf16-mixed"),
        ("pcgrad", "schedulefree_sgd", "32-true"),
        *(GPU if torch.cuda.is_available() else []),  # the CPU runs the scaler further down
    ],
)
def test_trains_under_lightning_with_clipping_precision_and_optimizers(
    make_model: ModelFactory, tmp_path: Path, strategy: str, precision: str, optimizer: str
) -> None:
    """Clipping, mixed precision (16-mixed and its gradient scaler on a GPU) and the
    schedule-free optimizers' train/eval switch with a gradient-level strategy."""
    model = make_model(strategy, optimizer=OptimizerConfig(name=optimizer, lr=1e-2))
    model.backbone = MeanPool()
    before = [p.detach().clone() for p in model.shared_parameters()]
    trainer = _trainer(
        accelerator="auto",
        devices=1,
        precision=precision,
        gradient_clip_val=0.5,
        default_root_dir=tmp_path,
        logger=pl.loggers.CSVLogger(tmp_path),
        log_every_n_steps=1,
    )
    trainer.fit(model, _batches(), _batches())
    assert trainer.global_step == 3
    after = [p.detach().cpu() for p in model.shared_parameters()]
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    metrics = (Path(trainer.logger.log_dir) / "metrics.csv").read_text().splitlines()[0]
    assert "grad/norm/multiclass" in metrics and "grad/cosine/binary__kl" in metrics


def test_resume_keeps_gradnorm_state(make_model: ModelFactory, tmp_path: Path) -> None:
    """GradNorm's weights and first-step losses L(0) come back from a checkpoint: a resumed
    run keeps the original L(0), not the losses of its own first step."""

    def trainer(epochs: int) -> pl.Trainer:
        return _trainer(max_epochs=epochs, accelerator="cpu", logger=False, limit_val_batches=0)

    batches = _batches()
    first = make_model("gradnorm")
    first_trainer = trainer(1)
    first_trainer.fit(first, batches)
    first_trainer.save_checkpoint(tmp_path / "last.ckpt")
    initial, weights = first.weighting.initial_losses.clone(), first.weighting.w.detach().clone()
    assert torch.isfinite(initial).all() and not torch.equal(weights, torch.ones(4))
    resumed = make_model("gradnorm")
    resumed_trainer = trainer(2)
    resumed_trainer.fit(resumed, batches, ckpt_path=tmp_path / "last.ckpt")
    assert resumed_trainer.global_step == 6
    torch.testing.assert_close(resumed.weighting.initial_losses, initial)
    fresh = make_model("gradnorm")
    trainer(1).fit(fresh, batches)
    assert not torch.equal(resumed.weighting.w, fresh.weighting.w)


def _with_mean_pool(model: CMIModel) -> CMIModel:
    model.backbone = MeanPool()
    return model


class _SeenGradients(pl.Callback):
    """The gradients the optimizer steps with: Lightning calls this after the scaler unscales."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Tensor]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, module: pl.LightningModule, _) -> None:
        grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
        self.steps.append(grads)


def _fit_float16(model: CMIModel, scaler: torch.amp.GradScaler, tmp_path: Path) -> _SeenGradients:
    """Three steps of 16-mixed with a real gradient scaler; CPU autocast takes float16 too, so
    the scaler's unscale, inf check and step skipping run here without a GPU."""
    seen = _SeenGradients()
    _trainer(
        accelerator="cpu",
        plugins=[MixedPrecision("16-mixed", "cpu", scaler)],
        callbacks=[seen],
        default_root_dir=tmp_path,
        logger=False,
        limit_val_batches=0,
    ).fit(model, _batches())
    return seen


@pytest.mark.parametrize("strategy", ["upgrad", "gradnorm", "pcgrad"])
def test_a_real_gradient_scaler_unscales_to_the_true_gradients(
    make_model: ModelFactory, strategy: str, tmp_path: Path
) -> None:
    """With the scaler at 2^12 the optimizer sees the gradients of the unscaled run."""
    sgd = OptimizerConfig(name="schedulefree_sgd", lr=1e-2)
    unscaled = _fit_float16(
        _with_mean_pool(make_model(strategy, optimizer=sgd)),
        torch.amp.GradScaler("cpu", enabled=False),
        tmp_path,
    )
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    scaled = _fit_float16(_with_mean_pool(make_model(strategy, optimizer=sgd)), scaler, tmp_path)
    assert scaler.get_scale() == 2.0**12  # no overflow, no step skipped
    assert len(scaled.steps) == len(unscaled.steps) == 3
    for step, (got, expected) in enumerate(zip(scaled.steps, unscaled.steps, strict=True)):
        assert set(got) == set(expected)
        for name, grad in expected.items():  # float16 rounding: ~4e-4 of each tensor's largest
            error = float((got[name] - grad).abs().max() / grad.abs().max().clamp_min(1e-8))
            assert error < 2e-3, f"step {step}, {name}: {error:.2e}"


def test_a_float16_overflow_skips_the_step(make_model: ModelFactory, tmp_path: Path) -> None:
    """A scale too large for float16 makes the gradient-level pass overflow; the scaler must see
    it, skip every step and back off, and leave the parameters as they were."""
    model = _with_mean_pool(make_model("upgrad"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    _fit_float16(model, scaler, tmp_path)
    assert scaler.get_scale() == 2.0**37
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.detach(), before[name], msg=name)
