"""A cross-validated training run: data -> folds -> one Lightning fit per fold -> OOF score.

The run directory (DESIGN section 7, a contract)::

    config.toml            the resolved config
    summary.json           overall out-of-fold score + one record per finished fold
    oof_predictions.csv    sequence_id, subject, fold, gesture, prediction, one column per gesture
    fold_<k>/best.pt       best weights (tensors and plain data only: loads with weights_only=True)
    fold_<k>/last.ckpt     Lightning's full checkpoint of the last epoch (what --resume continues)
    fold_<k>/...           the loggers' files (TensorBoard event files, csv/metrics.csv)

``summary.json`` and ``oof_predictions.csv`` are rewritten after every fold, so an interrupted
run keeps its finished folds; a fold counts as finished once ``summary.json`` lists it.
Plugin names are resolved here (and in inference), never inside the model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
import tomllib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import polars as pl
import torch
from pytorch_lightning import Callback, Trainer, seed_everything
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader, default_collate, get_worker_info

from cmi_core import build_backbone, build_logger, build_weighting
from cmi_core.callbacks import (
    MONITOR,
    BestWeights,
    ConfusionFigure,
    CtrlC,
    EpochProgressBar,
    FoldClock,
    HparamsScore,
    ResumeCheckpoint,
)
from cmi_core.config import Config, config_to_dict, config_to_toml
from cmi_core.data.dataset import SequenceDataset, mixup_batch
from cmi_core.data.folds import assign_folds
from cmi_core.data.io import SequenceSet, load_train, resolve_data_dir
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.metrics import competition_score, score_indices
from cmi_core.model import CMIModel
from cmi_core.report import OOF_FILE, SUMMARY_FILE
from cmi_core.weighting import active_terms

CONFIG_FILE = "config.toml"
BEST_FILE = "best.pt"
LAST_FILE = "last.ckpt"
RUN_DIR_ENV = "CMI_RUN_DIR"
"""Set by the run for the DDP worker processes Lightning launches: they re-run the same command
and must land in the same (possibly timestamped) directory."""
RESUMABLE_KEYS = frozenset(
    {
        "cv.folds",
        "data.dir",
        "data.cache_dir",
        "trainer.accelerator",
        "trainer.devices",
        "trainer.strategy",
        "trainer.num_workers",
        "trainer.threads",
    }
)
"""Config keys that may change on --resume: where things are and what runs them, not what is
trained."""


def default_run_dir(cfg: Config) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` (a DDP worker process gets its launcher's directory)."""
    if rank_zero_only.rank > 0 and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def resume_hint(out_dir: Path) -> str:
    return f"cmi run --resume {out_dir}"


def run_experiment(
    cfg: Config,
    out_dir: Path,
    *,
    folds: Sequence[int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the requested folds (default ``cfg.cv.folds``, else all) into ``out_dir``.

    Returns the summary (also written to ``summary.json``). With ``resume``, folds finished
    in ``out_dir`` are kept and an unfinished fold continues from its ``last.ckpt``.
    """
    out_dir = Path(out_dir)
    launcher = rank_zero_only.rank == 0  # DDP workers re-run this command: they write nothing
    if launcher:
        check_run_dir(cfg, out_dir, resume=resume, overwrite=overwrite)
    wanted = _wanted_folds(cfg, folds)
    quiet_lightning()
    with _torch_threads(cfg.trainer.threads):
        return _run(cfg, out_dir, wanted, resume=resume, progress=progress, launcher=launcher)


def _run(
    cfg: Config,
    out_dir: Path,
    wanted: Sequence[int],
    *,
    resume: bool,
    progress: bool,
    launcher: bool,
) -> dict[str, Any]:
    """Load the data, assign the folds, train every wanted fold not finished yet."""
    data = load_data(cfg)
    fold_of = assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    if launcher and not resume:
        create_run_dir(cfg, out_dir)
    os.environ[RUN_DIR_ENV] = str(out_dir.resolve())
    records, oof = read_finished(out_dir) if resume else ({}, None)
    for k in wanted:
        if k in records:
            _say(f"fold {k}: finished earlier (cmi_score {records[k]['cmi_score']:.4f}), kept")
            continue
        try:
            record, fold_oof = train_fold(cfg, data, fold_of, k, out_dir, progress=progress)
        except KeyboardInterrupt:
            _say(
                f"interrupted in fold {k}; finished folds are kept. Resume: {resume_hint(out_dir)}"
            )
            raise
        if launcher:
            records[k] = record
            oof = fold_oof if oof is None else pl.concat([oof, fold_oof])
            write_results(cfg, out_dir, records, oof, wanted)
    return _final_summary(cfg, out_dir, records, oof, wanted, launcher)


def _final_summary(
    cfg: Config,
    out_dir: Path,
    records: dict[int, dict[str, Any]],
    oof: pl.DataFrame | None,
    wanted: Sequence[int],
    launcher: bool,
) -> dict[str, Any]:
    """The summary the launcher wrote last; DDP workers wait for it and read it."""
    if launcher:
        summary = write_results(cfg, out_dir, records, oof, wanted)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    if not launcher:
        summary = json.loads((out_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    return summary


# -- the run directory -----------------------------------------------------------------------


def check_run_dir(cfg: Config, out_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, to mix two runs in one directory or to resume nothing."""
    holds_run = (out_dir / CONFIG_FILE).is_file()
    if resume:
        if not holds_run:
            raise RunError(f"{out_dir}: nothing to resume (no {CONFIG_FILE})")
        _check_same_config(cfg, out_dir / CONFIG_FILE)
    elif holds_run and not overwrite:
        raise RunError(
            f"{out_dir} already holds a run; continue it with --resume or replace it with "
            "--overwrite"
        )
    elif not holds_run and out_dir.exists() and any(out_dir.iterdir()):
        raise RunError(f"{out_dir} is not empty and holds no run; choose another --out")


def create_run_dir(cfg: Config, out_dir: Path) -> None:
    """A fresh run directory with the resolved ``config.toml`` (an old run there is removed:
    :func:`check_run_dir` allowed it only with ``overwrite``)."""
    if (out_dir / CONFIG_FILE).is_file():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / CONFIG_FILE, config_to_toml(cfg))


def _check_same_config(cfg: Config, config_file: Path) -> None:
    stored = _flatten(tomllib.loads(config_file.read_text(encoding="utf-8")))
    given = _flatten(tomllib.loads(config_to_toml(cfg)))
    changed = sorted(
        key
        for key in stored.keys() | given.keys()
        if stored.get(key) != given.get(key) and key not in RESUMABLE_KEYS
    )
    if changed:
        raise RunError(
            f"{config_file}: the config differs from the run being resumed at "
            f"{', '.join(changed)}; resume with the run's own config.toml"
        )


def read_finished(out_dir: Path) -> tuple[dict[int, dict[str, Any]], pl.DataFrame | None]:
    """Fold records and OOF rows of the folds an earlier attempt finished."""
    summary_file = out_dir / SUMMARY_FILE
    if not summary_file.is_file():
        return {}, None
    records = {f["fold"]: f for f in json.loads(summary_file.read_text())["folds"]}
    oof = pl.read_csv(out_dir / OOF_FILE, schema_overrides=_oof_schema())
    return records, oof.filter(pl.col("fold").is_in(list(records)))


def write_results(
    cfg: Config,
    out_dir: Path,
    records: Mapping[int, dict[str, Any]],
    oof: pl.DataFrame,
    wanted: Sequence[int],
) -> dict[str, Any]:
    """Write ``oof_predictions.csv`` then ``summary.json`` (the latter marks folds finished)."""
    oof = oof.sort("fold", "sequence_id")
    tmp = out_dir / (OOF_FILE + ".tmp")
    oof.write_csv(tmp)
    os.replace(tmp, out_dir / OOF_FILE)
    summary = build_summary(cfg, records, oof, wanted)
    _write_text(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def build_summary(
    cfg: Config,
    records: Mapping[int, dict[str, Any]],
    oof: pl.DataFrame,
    wanted: Sequence[int],
) -> dict[str, Any]:
    overall = competition_score(list(oof["gesture"]), list(oof["prediction"]))
    fold_scores = np.array([records[k]["cmi_score"] for k in sorted(records)])
    return {
        "name": cfg.name,
        **overall,
        "n_sequences": len(oof),
        "complete": set(wanted) <= set(records),
        "folds_requested": list(wanted),
        "n_folds": cfg.cv.n_folds,
        "fold_cmi_mean": float(fold_scores.mean()),
        "fold_cmi_std": float(fold_scores.std()),
        "wall_time_s": float(sum(r["wall_time_s"] for r in records.values())),
        "weighting": cfg.loss.weighting.strategy,
        "backbone": cfg.model.backbone,
        "versions": {pkg: version(pkg) for pkg in ("cmi-trainer", "torch", "pytorch-lightning")},
        "folds": [records[k] for k in sorted(records)],
    }


# -- one fold --------------------------------------------------------------------------------


def load_data(cfg: Config) -> SequenceSet:
    data_dir = resolve_data_dir(cfg.data)
    return load_train(data_dir, cfg.data.features, cache_dir=Path(cfg.data.cache_dir))


def train_fold(
    cfg: Config,
    data: SequenceSet,
    fold_of: np.ndarray,
    k: int,
    out_dir: Path,
    *,
    progress: bool = True,
    extra_callbacks: Sequence[Callback] = (),
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Fit fold ``k`` (continuing from its ``last.ckpt`` if there is one), then predict its
    validation sequences with the best weights. Returns the fold record and its OOF rows
    (``None`` on DDP worker ranks, which write nothing)."""
    fold_dir = out_dir / f"fold_{k}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
    _say(f"fold {k}: {len(train_idx)} training and {len(val_idx)} validation sequences")
    seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    model = build_model(cfg, len(data.feature_names))
    callbacks = fold_callbacks(cfg, data, k, fold_dir, progress=progress)
    trainer = make_trainer(cfg, fold_dir, [*callbacks.all, *extra_callbacks], progress=progress)
    train_loader, val_loader = make_loaders(cfg, data, train_idx, val_idx)
    last = fold_dir / LAST_FILE
    _fit(trainer, model, train_loader, val_loader, last if last.is_file() else None, callbacks, k)
    if rank_zero_only.rank > 0:
        return {}, None
    if not (fold_dir / BEST_FILE).is_file():
        raise RunError(f"fold {k}: no validation score was recorded, so there is no best.pt")
    saved = torch.load(fold_dir / BEST_FILE, map_location="cpu", weights_only=True)
    weights, weighting = _learned_weights(model)  # final values, before loading the best
    model.load_state_dict(saved["state_dict"])
    probs = predict_probs(model, val_loader, _predict_device(cfg))
    record = {
        "fold": k,
        **score_indices(data.labels[val_idx], probs.argmax(axis=1)),
        "best_epoch": saved["epoch"],
        "epochs_trained": trainer.current_epoch,
        "stopped_early": bool(trainer.should_stop),
        "wall_time_s": round(callbacks.clock.elapsed, 2),
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "weights": weights,
        "weighting": weighting,
    }
    _say(
        f"fold {k}: cmi_score {record['cmi_score']:.4f} (best epoch {record['best_epoch']}, "
        f"{record['wall_time_s']:.0f}s)"
    )
    return record, oof_frame(data, val_idx, k, probs)


@attrs.frozen
class FoldCallbacks:
    """A fold's callbacks; the run reads the clock and the Ctrl-C state after fitting."""

    clock: FoldClock
    ctrl_c: CtrlC
    others: list[Callback]

    @property
    def all(self) -> list[Callback]:
        return [self.clock, self.ctrl_c, *self.others]


def fold_callbacks(
    cfg: Config, data: SequenceSet, k: int, fold_dir: Path, *, progress: bool
) -> FoldCallbacks:
    """Checkpoints, early stopping on ``val/cmi_score``, hparams, figures, progress bar."""
    best = BestWeights(fold_dir / BEST_FILE, _checkpoint_meta(cfg, data, k))
    others = [
        best,
        ResumeCheckpoint(fold_dir / LAST_FILE),
        EarlyStopping(
            MONITOR,
            mode="max",
            patience=cfg.trainer.early_stopping_patience,
            min_delta=cfg.trainer.early_stopping_min_delta,
            check_on_train_epoch_end=False,  # decide at validation end, where last.ckpt is taken
        ),
        HparamsScore(_flat_params(cfg), best),
        ConfusionFigure(),
    ]
    if progress:
        others.append(EpochProgressBar(k))
    return FoldCallbacks(FoldClock(), CtrlC(), others)


def build_model(cfg: Config, in_channels: int) -> CMIModel:
    """Resolve the backbone and weighting plugins by name and assemble the LightningModule."""
    modules = cfg.plugins.modules
    backbone = build_backbone(
        cfg.model.backbone, in_channels, modules=modules, **_options(cfg.model.options)
    )
    loss = cfg.loss
    weighting = build_weighting(
        loss.weighting.strategy,
        terms=active_terms(loss.nine_class_head_enabled, loss.kl_weight),
        alpha=loss.alpha,
        nine_class_loss_weight=loss.nine_class_loss_weight,
        kl_weight=loss.kl_weight,
        modules=modules,
        **_options(loss.weighting.options),
    )
    return CMIModel(
        backbone,
        weighting,
        loss,
        cfg.optimizer,
        use_demographics=cfg.model.demographics,
        head_dropout=cfg.model.head_dropout,
        lr_scale=loss.weighting.lr_scale,
    )


def make_trainer(
    cfg: Config, fold_dir: Path, callbacks: Sequence[Callback], *, progress: bool
) -> Trainer:
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
        strategy=t.strategy,
        precision=t.precision,
        gradient_clip_val=t.gradient_clip_val or None,
        deterministic="warn",
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
        DataLoader(val, batch_size=t.batch_size, shuffle=False, **workers),
    )


class MixupCollate:
    """Collate a training batch, then mix it with :func:`mixup_batch`; seeded per worker."""

    def __init__(self, alpha: float, seed: int) -> None:
        self.alpha, self.seed = alpha, seed
        self.generator: torch.Generator | None = None

    def __call__(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if self.generator is None:
            worker = get_worker_info()
            seed = self.seed if worker is None else worker.seed
            self.generator = torch.Generator().manual_seed(seed)
        return mixup_batch(default_collate(items), self.alpha, self.generator)


@torch.no_grad()
def predict_probs(
    model: CMIModel, loader: DataLoader, device: torch.device | str = "cpu"
) -> np.ndarray:
    """18-class probabilities in loader order, in eval mode and full precision."""
    model.to(device).eval()
    chunks = [
        model.predict_step({k: v.to(device) for k, v in batch.items()}, i).float().cpu()
        for i, batch in enumerate(loader)
    ]
    return torch.cat(chunks).numpy()


def oof_frame(data: SequenceSet, val_idx: np.ndarray, k: int, probs: np.ndarray) -> pl.DataFrame:
    names = np.array(GESTURES, dtype=object)
    columns = {
        "sequence_id": data.sequence_ids[val_idx],
        "subject": data.subjects[val_idx],
        "fold": np.full(len(val_idx), k, dtype=np.int64),
        "gesture": names[data.labels[val_idx]],
        "prediction": names[probs.argmax(axis=1)],
    }
    frame = pl.DataFrame({key: list(value) for key, value in columns.items()})
    probabilities = pl.DataFrame(probs.astype(np.float32), schema=list(GESTURES))
    return pl.concat([frame, probabilities], how="horizontal").cast(_oof_schema())


# -- helpers ---------------------------------------------------------------------------------


def _fit(
    trainer: Trainer,
    model: CMIModel,
    train_loader: DataLoader,
    val_loader: DataLoader,
    ckpt: Path | None,
    callbacks: FoldCallbacks,
    k: int,
) -> None:
    """``trainer.fit`` with Lightning's Ctrl-C exit and NaN stop turned into run outcomes."""
    if ckpt is not None:
        _say(f"fold {k}: resuming from {ckpt}")
    try:
        with callbacks.ctrl_c.handling():
            trainer.fit(model, train_loader, val_loader, ckpt_path=ckpt, weights_only=True)
    except SystemExit:
        if callbacks.ctrl_c.pressed:  # Lightning caught Ctrl-C, cleaned up, called exit(1)
            raise KeyboardInterrupt from None
        raise
    except RunError as exc:
        fold_dir = Path(trainer.default_root_dir)
        kept = (
            f"its last good checkpoint {fold_dir / LAST_FILE} is kept"
            if (fold_dir / LAST_FILE).is_file()
            else "no epoch had finished, so there is no checkpoint"
        )
        raise RunError(f"fold {k} stopped: {exc}; {kept}") from None


def _predict_device(cfg: Config) -> torch.device:
    """The GPU when the fold trained on one (Lightning moves the model back to the CPU)."""
    gpu = cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """``trainer.threads`` for the run only (0 keeps torch's choice); restored afterwards."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _wanted_folds(cfg: Config, folds: Sequence[int] | None) -> list[int]:
    wanted = list(folds) if folds is not None else cfg.cv.folds or range(cfg.cv.n_folds)
    bad = [k for k in wanted if not 0 <= k < cfg.cv.n_folds]
    if bad:
        raise RunError(f"folds {bad} do not exist: cv.n_folds = {cfg.cv.n_folds}")
    return sorted(set(wanted))


def _checkpoint_meta(cfg: Config, data: SequenceSet, k: int) -> dict[str, Any]:
    return {
        "config": config_to_dict(cfg),
        "feature_names": list(data.feature_names),
        "in_channels": len(data.feature_names),
        "fold": k,
    }


def _learned_weights(model: CMIModel) -> tuple[dict[str, float], dict[str, float]]:
    """The weighting's effective weights and raw values as plain floats (for summary.json)."""
    weighting = model.weighting
    return _floats(weighting.effective_weights()), _floats(weighting.raw_values())


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in values.items()}


def _options(options: Any) -> dict[str, Any]:
    """Plugin options as keywords, whether already structured (loaded config) or a dict."""
    return attrs.asdict(options) if attrs.has(type(options)) else dict(options or {})


def _flat_params(cfg: Config) -> dict[str, Any]:
    return _flatten(config_to_dict(cfg))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _limit(value: float) -> float | int:
    """Config limits: a fraction up to 1.0, a batch count above."""
    return value if value <= 1.0 else int(value)


def _oof_schema() -> dict[str, Any]:
    return {
        "sequence_id": pl.String,
        "subject": pl.String,
        "fold": pl.Int64,
        "gesture": pl.String,
        "prediction": pl.String,
        **{g: pl.Float32 for g in GESTURES},
    }


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def quiet_lightning() -> None:
    """Lightning's start-up chatter (GPU/TPU lines, tips) buries the run's own messages."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def _say(message: str) -> None:
    if rank_zero_only.rank == 0:
        print(message, file=sys.stderr, flush=True)
