"""The run directory: its file names, the checks before a run starts, and atomic result files.

The layout (a contract, described in docs/running.md)::

    config.toml            the resolved config
    summary.json           overall out-of-fold score + one record per finished fold
    oof_predictions.csv    sequence_id, subject, fold, gesture, prediction, one column per gesture
    fold_<k>/best.pt       best weights (tensors and plain data only: loads with weights_only=True)
    fold_<k>/last.ckpt     Lightning's full checkpoint of the last epoch (what --resume continues)
    fold_<k>/...           the loggers' files (TensorBoard event files, csv/metrics.csv)

``summary.json`` and ``oof_predictions.csv`` are rewritten after every fold, so an interrupted
run keeps its finished folds; a fold counts as finished once ``summary.json`` lists it.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from cmi_core.config import Config, config_to_toml
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.records import FoldRecord, build_summary

CONFIG_FILE = "config.toml"
SUMMARY_FILE = "summary.json"
OOF_FILE = "oof_predictions.csv"
BEST_FILE = "best.pt"
LAST_FILE = "last.ckpt"
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
        "trainer.jobs",
    }
)
"""Config keys that may change on --resume: where things are and what runs them, not what is
trained."""


def fold_dir(out_dir: Path, k: int) -> Path:
    return out_dir / f"fold_{k}"


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
    write_text_atomic(out_dir / CONFIG_FILE, config_to_toml(cfg))


def _check_same_config(cfg: Config, config_file: Path) -> None:
    stored = flatten(tomllib.loads(config_file.read_text(encoding="utf-8")))
    given = flatten(tomllib.loads(config_to_toml(cfg)))
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


def read_finished(out_dir: Path) -> tuple[dict[int, FoldRecord], pl.DataFrame | None]:
    """Fold records and OOF rows of the folds an earlier attempt finished."""
    summary_file = out_dir / SUMMARY_FILE
    if not summary_file.is_file():
        return {}, None
    folds = json.loads(summary_file.read_text())["folds"]
    records = {f["fold"]: FoldRecord.from_dict(f) for f in folds}
    oof = pl.read_csv(out_dir / OOF_FILE, schema_overrides=oof_schema())
    return records, oof.filter(pl.col("fold").is_in(list(records)))


def write_results(
    cfg: Config,
    out_dir: Path,
    records: Mapping[int, FoldRecord],
    oof: pl.DataFrame,
    wanted: Sequence[int],
) -> dict[str, Any]:
    """Write ``oof_predictions.csv`` then ``summary.json`` (the latter marks folds finished)."""
    oof = oof.sort("fold", "sequence_id")
    tmp = out_dir / (OOF_FILE + ".tmp")
    oof.write_csv(tmp)
    os.replace(tmp, out_dir / OOF_FILE)
    summary = build_summary(cfg, records, oof, wanted)
    write_text_atomic(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def oof_schema() -> dict[str, Any]:
    """Column types of ``oof_predictions.csv``."""
    return {
        "sequence_id": pl.String,
        "subject": pl.String,
        "fold": pl.Int64,
        "gesture": pl.String,
        "prediction": pl.String,
        **{g: pl.Float32 for g in GESTURES},
    }


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config table as ``{"dotted.key": value}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``<path>.tmp`` then rename: readers see the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
