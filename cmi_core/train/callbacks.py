"""The Lightning callbacks of a training run: checkpoints, clock, hparams score, figures, stop.

:class:`FiniteGuard` stops a fold at the first non-finite gradient or weight, and both
checkpoint writers refuse non-finite tensors, so no checkpoint ever holds one. Both writers are
:class:`~pytorch_lightning.callbacks.Checkpoint` subclasses, so Lightning runs them after every
other callback (after the schedule-free switch has put the averaged weights in place), and both
write a temporary file and ``os.replace`` it, so a crash or Ctrl-C never leaves a half-written
checkpoint behind.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, Checkpoint, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from torch import Tensor

from cmi_core.common.atomic import atomic_path
from cmi_core.common.signals import Stopped, stop_signals
from cmi_core.errors import NonFiniteError
from cmi_core.tags import HPARAMS_SCORE, LOSS_TOTAL, VAL_CONFUSION, VAL_SCORE


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`atomic_path`: readers see the old file or the new one."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def first_non_finite(tree: Any, prefix: str = "") -> str | None:
    """The dotted name of the first non-finite float tensor in nested dicts/lists, or None."""
    if isinstance(tree, Tensor):
        finite = not tree.is_floating_point() or bool(torch.isfinite(tree).all())
        return None if finite else prefix or "tensor"
    if isinstance(tree, Mapping):
        items = list(tree.items())
    elif isinstance(tree, list | tuple):
        items = list(enumerate(tree))
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def _check_finite(tree: Any, what: str, trainer: pl.Trainer) -> None:
    name = first_non_finite(tree)
    if name is not None:
        raise NonFiniteError(f"non-finite {what} {name} at step {trainer.global_step}")


class FiniteGuard(Callback):
    """Stops the fold at the first non-finite gradient (before the optimizer applies it) or
    weight/buffer (after a step), so the weights checkpointed at the next epoch end are never
    touched by it. One device sync per check: the per-tensor names are only looked up on failure.
    """

    def __init__(self) -> None:
        self._params: list[Tensor] = []
        self._tensors: list[Tensor] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The weights and buffers to check, listed once per epoch (walking the module tree
        at every step cost more than the check itself); training updates them in place."""
        self._params = list(pl_module.parameters())
        self._tensors = [*self._params, *pl_module.buffers()]

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        params = self._params or list(pl_module.parameters())
        if not _all_finite(p.grad for p in params if p.grad is not None):
            named = {n: p.grad for n, p in pl_module.named_parameters() if p.grad is not None}
            _check_finite(named, "gradient of", trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any):
        if not _all_finite(self._tensors or [*pl_module.parameters(), *pl_module.buffers()]):
            tensors = dict(pl_module.named_parameters()) | dict(pl_module.named_buffers())
            _check_finite(tensors, "weight", trainer)


def _all_finite(tensors: Any) -> bool:
    """Whether every floating tensor is finite, in one fused pass: the norm over all of them is
    finite exactly when each value is, unless huge finite values overflow it, which the exact
    per-tensor check then settles. Checking each tensor cost ~100 small ops, ~5 ms a step."""
    floats = [t.detach() for t in tensors if t.is_floating_point()]
    total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6
    if not floats or (total_norm is not None and bool(torch.isfinite(total_norm(floats)))):
        return True
    return all(bool(torch.isfinite(t).all()) for t in floats)


def _score(trainer: pl.Trainer) -> float | None:
    value = trainer.callback_metrics.get(VAL_SCORE)
    return None if value is None else float(value)


class BestWeights(Checkpoint):
    """Writes ``best.pt`` whenever ``val/cmi_score`` improves.

    ``best.pt`` holds only tensors and plain data (``state_dict``, ``fold``, ``epoch``,
    ``cmi_score`` and the ``meta`` given here: config, feature names, input channels), so the
    Predictor loads it with ``torch.load(..., weights_only=True)``.
    """

    def __init__(self, path: Path, meta: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.meta = dict(meta)
        self.best_score = float("-inf")
        self.best_epoch = -1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        score = _score(trainer)
        if trainer.sanity_checking or score is None or not score > self.best_score:
            return
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        _check_finite(state, "weight", trainer)
        self.best_score, self.best_epoch = score, trainer.current_epoch
        if trainer.is_global_zero:
            payload = {
                **self.meta,
                "state_dict": state,
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "cmi_score": score,
            }
            atomic_torch_save(payload, self.path)

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]


class ResumeCheckpoint(Checkpoint):
    """Writes Lightning's full ``last.ckpt`` (weights, optimizer, loops, callbacks) after every
    validation, the point a resumed fold continues from; never from non-finite tensors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        _check_finite(pl_module.state_dict(), "weight", trainer)
        for optimizer in trainer.optimizers:
            _check_finite(optimizer.state_dict()["state"], "optimizer state", trainer)
        with atomic_path(self.path, commit=trainer.is_global_zero) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)  # every rank takes part; rank 0 writes


class FoldClock(Callback):
    """Training wall time of a fold, carried through ``last.ckpt`` so a resumed fold adds up."""

    def __init__(self) -> None:
        self.previous = 0.0
        self.started: float | None = None

    @property
    def elapsed(self) -> float:
        running = 0.0 if self.started is None else time.monotonic() - self.started
        return self.previous + running

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.monotonic()

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous = state_dict["elapsed"]
        self.started = time.monotonic()


class HparamsScore(Callback):
    """Logs the resolved config as hparams when a fold starts and its best score when it ends."""

    def __init__(self, params: Mapping[str, Any], best: BestWeights) -> None:
        self.params = dict(params)
        self.best = best

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.params)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.best.best_epoch < 0:
            return
        for logger in trainer.loggers:
            logger.log_metrics({HPARAMS_SCORE: self.best.best_score}, step=trainer.global_step)
            logger.save()


class ConfusionFigure(Callback):
    """Sends the model's validation confusion matrix to every logger that takes figures
    (``log_figure(tag, figure, step)``), once per validation epoch."""

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counts = getattr(pl_module, "last_val_confusion", None)
        targets = [lg for lg in trainer.loggers if callable(getattr(lg, "log_figure", None))]
        if trainer.sanity_checking or counts is None or not targets or not trainer.is_global_zero:
            return
        from cmi_core.data.schema import GESTURES
        from cmi_core.train.figures import confusion_figure

        title = f"validation, epoch {trainer.current_epoch}"
        for logger in targets:
            figure = confusion_figure(counts, GESTURES, title, detailed=False)
            logger.log_figure(VAL_CONFUSION, figure, step=trainer.global_step)


class StopSignals(Callback):
    """Ctrl-C or SIGTERM stops training at the next batch boundary, where Lightning shuts down
    cleanly and the fold's ``last.ckpt`` (written at the end of each epoch) stays as it is.

    Python can deliver a signal while a finalizer runs, and an exception raised there is
    swallowed: the run would go on. So, while :meth:`handling` is active, the handler only
    records the request and the next batch start raises :class:`~cmi_core.common.signals.Stopped`; a
    second signal raises at once. Lightning turns the interrupt (and its own SIGTERM stop) into
    ``SystemExit``; :attr:`requested` tells the run which signal it was.
    """

    def __init__(self) -> None:
        self.requested: int | None = None

    def handling(self) -> contextlib.AbstractContextManager[None]:
        return stop_signals(self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested is not None:
            raise Stopped(signum)
        self.requested = signum

    def _stop_if_requested(self, *args: Any) -> None:
        if self.requested is not None:
            raise Stopped(self.requested)

    on_train_batch_start = _stop_if_requested
    on_validation_batch_start = _stop_if_requested

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self.requested is None and isinstance(exception, KeyboardInterrupt):
            self.requested = getattr(exception, "signum", signal.SIGINT)


class EpochProgressBar(TQDMProgressBar):
    """One bar per training epoch that stays on screen, ending with the epoch's training loss
    and validation score; validation passes get no bar of their own."""

    SHOWN: ClassVar[dict[str, str]] = {LOSS_TOTAL: "loss", VAL_SCORE: "val_cmi"}

    def __init__(self, fold: int) -> None:
        super().__init__(leave=True)
        self.fold = fold

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"fold {self.fold} epoch {trainer.current_epoch}")

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def on_exception(self, *args: Any) -> None:
        """End the open bar's line, so the run's Ctrl-C or error message starts a new one."""
        if self._train_progress_bar is not None:
            self._train_progress_bar.close()

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = trainer.callback_metrics
        return {
            label: f"{float(metrics[key]):.4f}"
            for key, label in self.SHOWN.items()
            if key in metrics
        }
