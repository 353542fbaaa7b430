"""Optimizers (AdamW + cosine, the schedule-free family) and the schedule-free mode switch.

The weighting's learnable parameters always get their own group: ``lr * lr_scale`` and no
weight decay (decay would pull ``s_i`` toward 0, i.e. toward equal weights), for every optimizer.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from cmi_core.config import OptimizerConfig


def param_groups(
    model: nn.Module,
    weighting_params: Iterable[nn.Parameter],
    cfg: OptimizerConfig,
    lr_scale: float,
) -> list[dict[str, Any]]:
    """The model's parameters, then the weighting's (omitted when it learns nothing)."""
    weighting = list(weighting_params)
    ids = {id(p) for p in weighting}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"name": "model", "params": rest, "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
    if weighting:
        groups.append(
            {"name": "weighting", "params": weighting, "lr": cfg.lr * lr_scale, "weight_decay": 0.0}
        )
    return groups


def lr_factor(step: int, warmup: int, total: int, floor: float, cosine: bool) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 down to ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _schedule(optimizer: Optimizer, cfg: OptimizerConfig, total_steps: int) -> LRScheduler | None:
    cosine = cfg.scheduler == "cosine"
    if not cosine and cfg.warmup_steps == 0:
        return None
    factor = partial(
        lr_factor,
        warmup=cfg.warmup_steps,
        total=total_steps,
        floor=cfg.min_lr / cfg.lr,
        cosine=cosine,
    )
    return LambdaLR(optimizer, factor)  # one factor for all groups keeps the lr_scale ratio


def build_optimizer(
    model: nn.Module,
    cfg: OptimizerConfig,
    weighting_params: Iterable[nn.Parameter],
    lr_scale: float,
    total_steps: int,
) -> tuple[Optimizer, LRScheduler | None]:
    """The configured optimizer over ``model`` and, for ``adamw``, its per-step schedule."""
    groups = param_groups(model, weighting_params, cfg, lr_scale)
    betas = (cfg.betas[0], cfg.betas[1])
    if cfg.name == "adamw":
        optimizer = torch.optim.AdamW(
            groups, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay, foreach=True
        )
        return optimizer, _schedule(optimizer, cfg, total_steps)
    import schedulefree

    if cfg.name == "schedulefree_adamw":
        optimizer = schedulefree.AdamWScheduleFree(
            groups, lr=cfg.lr, betas=betas, warmup_steps=cfg.warmup_steps
        )
    elif cfg.name == "schedulefree_radam":  # RAdam needs no warm-up
        optimizer = schedulefree.RAdamScheduleFree(groups, lr=cfg.lr, betas=betas)
    elif cfg.name == "schedulefree_sgd":
        optimizer = schedulefree.SGDScheduleFree(
            groups, lr=cfg.lr, momentum=cfg.momentum, warmup_steps=cfg.warmup_steps
        )
    else:
        raise ValueError(f"unknown optimizer {cfg.name!r}")
    return optimizer, None


def is_schedule_free(optimizer: Optimizer) -> bool:
    return "train_mode" in optimizer.param_groups[0]


def _in_train_mode(optimizer: Optimizer) -> bool:
    return bool(optimizer.param_groups[0]["train_mode"])


class ScheduleFreeModeSwitch(pl.Callback):
    """Keep schedule-free optimizers in the right mode; a no-op for other optimizers.

    Train mode (the ``y`` sequence) before every training step; eval mode (the averaged ``x``
    weights) at the end of each training epoch and before validation, test and prediction,
    so metrics and checkpoints see the averaged weights. Lightning captures the state dicts
    *before* ``on_save_checkpoint`` runs and they alias the live tensors, so switching there is
    too late (measured); a checkpoint saved in train mode (e.g. every N steps) is rewritten
    with copies of the eval-mode state instead. A resumed run thus starts in eval mode and the
    next training step switches back. When the model has BatchNorm, its statistics (collected
    with the ``y`` weights) are recomputed for the ``x`` weights on the last ``bn_batches``
    training batches, through the module's ``predict_step``.
    """

    def __init__(self, bn_batches: int = 8) -> None:
        self._recent: deque[Any] = deque(maxlen=bn_batches)

    @staticmethod
    def _optimizers(trainer: pl.Trainer) -> list[Optimizer]:
        return [o for o in trainer.optimizers if is_schedule_free(o)]

    def _train(self, trainer: pl.Trainer) -> None:
        for optimizer in self._optimizers(trainer):
            optimizer.train()

    def _eval(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizers = [o for o in self._optimizers(trainer) if _in_train_mode(o)]
        for optimizer in optimizers:
            optimizer.eval()
        if optimizers:
            self._recompute_batch_norm(pl_module)

    def _recompute_batch_norm(self, pl_module: pl.LightningModule) -> None:
        norms = [m for m in pl_module.modules() if isinstance(m, _BatchNorm)]
        if not norms or not self._recent:
            return
        was_training, momenta = pl_module.training, [m.momentum for m in norms]
        pl_module.eval()
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the batches below
            norm.train()
        with torch.no_grad():
            for batch in self._recent:
                pl_module.predict_step(batch, 0)
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        pl_module.train(was_training)

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._train(trainer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        if self._optimizers(trainer):
            self._recent.append(batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._eval(trainer, pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._eval(trainer, pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._eval(trainer, pl_module)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._eval(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if not any(_in_train_mode(o) for o in self._optimizers(trainer)):
            return
        self._eval(trainer, pl_module)
        strategy = trainer.strategy
        state = strategy.lightning_module_state_dict()
        checkpoint["state_dict"] = {k: v.detach().clone() for k, v in state.items()}
        checkpoint["optimizer_states"] = [
            copy.deepcopy(strategy.optimizer_state(o)) for o in trainer.optimizers
        ]
        self._train(trainer)
