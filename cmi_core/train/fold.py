"""One fold of a run, the unit an executor schedules: fit, then predict the validation subjects.

A fold writes only inside its own ``fold_<k>/`` directory (``best.pt``, ``last.ckpt``, logger
files) and returns its :class:`FinishedFold`; the run's driver alone writes ``summary.json`` and
``oof_predictions.csv`` (see :mod:`cmi_core.runs.run`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import polars as pl
import torch
from pytorch_lightning import Callback, Trainer, seed_everything
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader

from cmi_core.common.atomic import write_text_atomic
from cmi_core.common.console import say
from cmi_core.common.signals import Stopped
from cmi_core.config import Config
from cmi_core.data.sequences import SequenceSet
from cmi_core.errors import NonFiniteError, RunError
from cmi_core.metrics import score_indices
from cmi_core.rundir.layout import BEST_FILE, LAST_FILE, NON_FINITE_FILE, fold_dir
from cmi_core.rundir.records import FoldRecord
from cmi_core.train.assemble import (
    FoldCallbacks,
    build_model,
    fold_callbacks,
    make_loaders,
    make_trainer,
    train_batches_per_rank,
)
from cmi_core.train.model import CMIModel
from cmi_core.train.oof import oof_frame, predict_probs


@attrs.frozen
class FinishedFold:
    """What a finished fold hands back to the driver: its ``summary.json`` entry
    (:class:`~cmi_core.rundir.records.FoldRecord`) and its OOF rows. A worker process sends it
    inside a :class:`~cmi_core.runs.executor.TrialReply`."""

    record: FoldRecord
    """The fold's entry in ``summary.json``."""
    oof: pl.DataFrame
    """The fold's rows of ``oof_predictions.csv``."""


def train_fold(
    cfg: Config,
    data: SequenceSet,
    fold_of: np.ndarray,
    k: int,
    out_dir: Path,
    *,
    progress: bool = True,
    extra_callbacks: Sequence[Callback] = (),
) -> FinishedFold | None:
    """Fit fold ``k`` of ``fold_of`` into ``out_dir/fold_<k>/`` (continuing from its
    ``last.ckpt`` if there is one), then predict its validation sequences with the best weights.

    Returns ``None`` on DDP worker ranks, which report nothing.
    """
    directory = fold_dir(out_dir, k)
    directory.mkdir(parents=True, exist_ok=True)
    _refuse_repeating_a_non_finite_stop(directory, k)
    train_idx, val_idx = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
    say(f"fold {k}: {len(train_idx)} training and {len(val_idx)} validation sequences")
    seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    model = build_model(cfg, len(data.feature_names))
    train_loader, val_loader = make_loaders(cfg, data, train_idx, val_idx)
    callbacks = fold_callbacks(
        cfg, data, k, directory, progress=progress, train_loader=train_loader
    )
    trainer = make_trainer(cfg, directory, [*callbacks.all, *extra_callbacks], progress=progress)
    _check_steps(cfg, len(train_idx), trainer.world_size, k)
    last = directory / LAST_FILE
    if last.is_file():
        _check_readable(last, k)
    _fit(trainer, model, train_loader, val_loader, last if last.is_file() else None, callbacks, k)
    if rank_zero_only.rank > 0:
        return None
    if not (directory / BEST_FILE).is_file():
        raise RunError(f"fold {k}: no validation score was recorded, so there is no best.pt")
    saved = torch.load(directory / BEST_FILE, map_location="cpu", weights_only=True)
    weights, weighting = _learned_weights(model)  # final values, before loading the best
    model.load_state_dict(saved["state_dict"])
    probs = predict_probs(model, val_loader, _predict_device(cfg))
    record = FoldRecord(
        fold=k,
        **score_indices(data.labels[val_idx], probs.argmax(axis=1)),
        best_epoch=saved["epoch"],
        epochs_trained=trainer.current_epoch,
        stopped_early=bool(trainer.should_stop),
        wall_time_s=round(callbacks.clock.elapsed, 2),
        n_train=len(train_idx),
        n_val=len(val_idx),
        weights=weights,
        weighting=weighting,
    )
    say(
        f"fold {k}: cmi_score {record.cmi_score:.4f} (best epoch {record.best_epoch}, "
        f"{record.wall_time_s:.0f}s)"
    )
    return FinishedFold(record, oof_frame(data, val_idx, k, probs))


def _check_steps(cfg: Config, n_train: int, world_size: int, k: int) -> None:
    """Refuse a fold whose processes get no training batch (more devices than batches: it
    would end in "no validation score was recorded"); warn once when an epoch has fewer steps
    than the logging interval, so that the per-step curves are sparse or missing."""
    per_rank, steps = train_batches_per_rank(cfg, n_train, world_size)
    if steps < 1:
        raise RunError(
            f"fold {k}: {n_train} training sequences over {world_size} process(es) give "
            f"{per_rank} per process, not one training batch of trainer.batch_size = "
            f"{cfg.trainer.batch_size} (with trainer.limit_train_batches = "
            f"{cfg.trainer.limit_train_batches}); lower trainer.batch_size or trainer.devices"
        )
    every = cfg.logging.log_every_n_steps
    if steps < every:
        _warn_once(
            f"warning: an epoch has {steps} training step(s), fewer than "
            f"logging.log_every_n_steps = {every}: the per-step curves (loss/*, weights/*, "
            f"grad/*) get a point every {every} steps only, none in a run of fewer steps; "
            f"lower logging.log_every_n_steps to see them"
        )


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """One line per process, not one per fold: every fold of a run has about the same size."""
    if message not in _WARNED:
        _WARNED.add(message)
        say(message)


def _check_readable(checkpoint: Path, k: int) -> None:
    """A damaged ``last.ckpt`` (a full disk, a copy cut short) is an error, not a traceback."""
    try:
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(
            f"{checkpoint}: cannot be read ({reason}); the checkpoint is damaged. Delete it to "
            f"train fold {k} from its start"
        ) from None


def _fit(
    trainer: Trainer,
    model: CMIModel,
    train_loader: DataLoader,
    val_loader: DataLoader,
    ckpt: Path | None,
    callbacks: FoldCallbacks,
    k: int,
) -> None:
    """``trainer.fit`` with Lightning's stop on a signal and the NaN stop turned into run
    outcomes: :class:`Stopped` and a one-line :class:`RunError`."""
    if ckpt is not None:
        say(f"fold {k}: resuming from {ckpt}")
    stop = callbacks.stop
    try:
        with stop.handling():
            trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt, weights_only=True)
    except SystemExit:
        if stop.requested is not None:  # Lightning cleaned up after the signal, then exited
            raise Stopped(stop.requested) from None
        raise
    except NonFiniteError as exc:
        raise _non_finite_stop(Path(trainer.default_root_dir), k, exc) from None


def _non_finite_stop(directory: Path, k: int, exc: NonFiniteError) -> RunError:
    """The fold's one-line stop message, also kept in ``non_finite.txt`` for --resume."""
    kept = (
        f"its last good checkpoint {directory / LAST_FILE} is kept"
        if (directory / LAST_FILE).is_file()
        else "no epoch had finished, so there is no checkpoint"
    )
    message = f"fold {k} stopped: {exc}; {kept}"
    if rank_zero_only.rank == 0:
        write_text_atomic(directory / NON_FINITE_FILE, message + "\n")
    return RunError(f"{message}. {_NON_FINITE_ADVICE}")


_NON_FINITE_ADVICE = (
    "Resuming would repeat the same steps: start a new run with a lower optimizer.lr "
    "or a trainer.gradient_clip_val"
)


def _refuse_repeating_a_non_finite_stop(directory: Path, k: int) -> None:
    marker = directory / NON_FINITE_FILE
    if marker.is_file():
        raise RunError(
            f"fold {k} stopped earlier on a non-finite value ({marker}). {_NON_FINITE_ADVICE}, "
            f"or delete {marker} to try again anyway"
        )


def _predict_device(cfg: Config) -> torch.device:
    """The GPU when the fold trained on one (Lightning moves the model back to the CPU)."""
    gpu = cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def _learned_weights(model: CMIModel) -> tuple[dict[str, float], dict[str, float]]:
    """The weighting's effective weights and raw values as plain floats (for summary.json)."""
    weighting = model.weighting
    return _floats(weighting.effective_weights()), _floats(weighting.raw_values())


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in values.items()}
