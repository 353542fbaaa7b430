"""Config -> built objects: the model (plugins resolved by name), a fold's callbacks, the
Trainer and the data loaders. Plugin names are resolved here, never inside the model."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from pytorch_lightning import Callback, Trainer
from pytorch_lightning.callbacks import EarlyStopping
from torch.utils.data import DataLoader

from cmi_core.builders import build_logger, fixed_weights, make_backbone, make_weighting, task_names
from cmi_core.config import Config, config_to_dict
from cmi_core.data.dataset import MixupCollate, SequenceDataset
from cmi_core.data.sequences import SequenceSet
from cmi_core.rundir.layout import BEST_FILE, LAST_FILE, flatten
from cmi_core.tags import VAL_SCORE
from cmi_core.train.callbacks import (
    BestWeights,
    ConfusionFigure,
    EpochProgressBar,
    FiniteGuard,
    FoldClock,
    HparamsScore,
    ResumeCheckpoint,
    StopSignals,
)
from cmi_core.train.loopback import strategy_for
from cmi_core.train.model import CMIModel
from cmi_core.train.network import backbone_in_channels, network_for
from cmi_core.train.rng import RngState

EVAL_BATCH_FACTOR = 4
"""Validation batches are this many times ``trainer.batch_size``."""


def build_model(cfg: Config, in_channels: int) -> CMIModel:
    """Resolve the backbone and weighting plugins by name and assemble the LightningModule.

    The options are the loaded config's own objects, handed to the factories as they are.
    Built in the order of every earlier run (backbone, weighting, then the network's heads),
    so a seed initialises the same weights.
    """
    modules, loss = cfg.plugins.modules, cfg.loss
    channels = backbone_in_channels(cfg, in_channels)
    backbone = make_backbone(cfg.model.backbone, channels, cfg.model.options, modules=modules)
    weighting = make_weighting(
        loss.weighting.strategy,
        task_names(loss),
        fixed_weights(loss),
        loss.weighting.options,
        modules=modules,
    )
    return CMIModel(
        network_for(cfg, backbone),
        weighting,
        loss,
        cfg.optimizer,
        lr_scale=loss.weighting.lr_scale,
    )


@attrs.frozen
class FoldCallbacks:
    """A fold's callbacks; the run reads the clock and the stop request after fitting."""

    clock: FoldClock
    stop: StopSignals
    others: list[Callback]

    @property
    def all(self) -> list[Callback]:
        return [self.clock, self.stop, *self.others]


def fold_callbacks(
    cfg: Config,
    data: SequenceSet,
    k: int,
    fold_dir: Path,
    *,
    progress: bool,
    train_loader: DataLoader | None = None,
) -> FoldCallbacks:
    """Checkpoints, the non-finite guard, RNG state for an exact resume (of ``train_loader``'s
    generators too), early stopping on ``val/cmi_score``, hparams, figures, progress bar."""
    best = BestWeights(fold_dir / BEST_FILE, _checkpoint_meta(cfg, data, k))
    others: list[Callback] = [RngState(train_loader)] if train_loader is not None else []
    others += [
        FiniteGuard(),
        best,
        ResumeCheckpoint(fold_dir / LAST_FILE),
        EarlyStopping(
            VAL_SCORE,
            mode="max",
            patience=cfg.trainer.early_stopping_patience,
            min_delta=cfg.trainer.early_stopping_min_delta,
            check_on_train_epoch_end=False,  # decide at validation end, where last.ckpt is taken
        ),
        HparamsScore(flatten(config_to_dict(cfg)), best),
        ConfusionFigure(),
    ]
    if progress:
        others.append(EpochProgressBar(k))
    return FoldCallbacks(FoldClock(), StopSignals(), others)


def make_trainer(
    cfg: Config, fold_dir: Path, callbacks: Sequence[Callback], *, progress: bool
) -> Trainer:
    """A fold's Lightning Trainer with the configured loggers (built from their plugins)."""
    t = cfg.trainer
    loggers = [
        build_logger(name, fold_dir, cfg.logging.options.get(name), modules=cfg.plugins.modules)
        for name in cfg.logging.loggers
    ]
    return Trainer(
        default_root_dir=fold_dir,
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy_for(t.strategy, t.num_nodes),
        precision=t.precision,
        gradient_clip_val=t.gradient_clip_val or None,
        deterministic=t.deterministic,
        logger=loggers or False,
        callbacks=list(callbacks),
        enable_checkpointing=True,  # satisfied by the run's own atomic writers: no ModelCheckpoint
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=cfg.logging.log_every_n_steps,
        limit_train_batches=_limit(t.limit_train_batches),
        limit_val_batches=_limit(t.limit_val_batches),
    )


def make_loaders(
    cfg: Config, data: SequenceSet, train_idx: np.ndarray, val_idx: np.ndarray
) -> tuple[DataLoader, DataLoader]:
    """Training (shuffled, augmented, mixup when configured) and validation loaders."""
    t, augment = cfg.trainer, cfg.data.augment
    workers = {"num_workers": t.num_workers, "persistent_workers": t.num_workers > 0}
    train = SequenceDataset(data, train_idx, cfg.data.max_len, augment=augment, seed=t.seed)
    val = SequenceDataset(data, val_idx, cfg.data.max_len)
    return (
        DataLoader(
            train,
            batch_size=t.batch_size,
            shuffle=True,
            drop_last=len(train) > t.batch_size,  # a batch of 1 breaks BatchNorm
            generator=torch.Generator().manual_seed(t.seed),
            collate_fn=MixupCollate(augment.mixup_alpha, t.seed) if augment.mixup_alpha else None,
            **workers,
        ),
        # Evaluation computes each sequence on its own (eval-mode norms use running
        # statistics): a larger batch gives bit-identical outputs with fewer, cheaper steps.
        DataLoader(val, batch_size=EVAL_BATCH_FACTOR * t.batch_size, shuffle=False, **workers),
    )


def quiet_lightning() -> None:
    """Lightning's start-up chatter (GPU/TPU lines, tips) buries the run's own messages."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # the fold says it in one line of its own, with the curves it costs (train/fold.py)
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")


def _checkpoint_meta(cfg: Config, data: SequenceSet, k: int) -> dict[str, Any]:
    return {
        "config": config_to_dict(cfg),
        "feature_names": list(data.feature_names),
        "in_channels": len(data.feature_names),
        "fold": k,
    }


def _limit(value: float) -> float | int:
    """Config limits: a fraction up to 1.0, a batch count above."""
    return value if value <= 1.0 else int(value)


def train_batches_per_rank(cfg: Config, n_train: int, world_size: int) -> tuple[int, int]:
    """``(sequences, batches)`` each process trains on per epoch: Lightning's distributed
    sampler gives every rank ``ceil(n / world_size)`` sequences, and the training loader drops
    a last partial batch whenever the whole set is larger than one batch (:func:`make_loaders`);
    ``trainer.limit_train_batches`` caps the batches as Lightning does."""
    size = cfg.trainer.batch_size
    per_rank = math.ceil(n_train / world_size)
    batches = per_rank // size if n_train > size else math.ceil(per_rank / size)
    limit = cfg.trainer.limit_train_batches
    capped = int(batches * limit) if limit <= 1.0 else min(batches, int(limit))
    return per_rank, capped
