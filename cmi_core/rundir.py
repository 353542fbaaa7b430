"""The run directory: its file names, the checks before a run starts, and atomic result files.

The layout (a contract, described in docs/running.md)::

    config.toml            the resolved config
    data_fingerprint.json  what the run trains on (--resume refuses other data)
    summary.json           overall out-of-fold score + one record per finished fold
    oof_predictions.csv    sequence_id, subject, fold, gesture, prediction, one column per gesture
    fold_<k>/best.pt       best weights (tensors and plain data only: loads with weights_only=True)
    fold_<k>/last.ckpt     Lightning's full checkpoint of the last epoch (what --resume continues)
    fold_<k>/non_finite.txt why the fold stopped on a non-finite value (see NON_FINITE_FILE)
    fold_<k>/...           the loggers' files (TensorBoard event files, csv/metrics.csv)
    *.png                  what ``cmi report`` draws (REPORT_FILES)

``--overwrite`` deletes exactly these, never other files a user keeps in the directory.

``summary.json`` and ``oof_predictions.csv`` are rewritten after every fold, so an interrupted
run keeps its finished folds; a fold counts as finished once ``summary.json`` lists it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from cmi_core.config import Config, config_to_toml
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.fingerprint import DataFingerprint
from cmi_core.records import FoldRecord, build_summary

CONFIG_FILE = "config.toml"
SUMMARY_FILE = "summary.json"
OOF_FILE = "oof_predictions.csv"
BEST_FILE = "best.pt"
LAST_FILE = "last.ckpt"
DATA_FILE = "data_fingerprint.json"
REPORT_FILES = (
    "weights.png",
    "weighting.png",
    "losses.png",
    "grad_norms.png",
    "grad_cosines.png",
    "val_score.png",
    "confusion.png",
)
"""What ``cmi report`` writes into a run directory."""
RUN_FILES = frozenset({CONFIG_FILE, SUMMARY_FILE, OOF_FILE, DATA_FILE, *REPORT_FILES})
FOLD_DIR = re.compile(r"fold_\d+")
NON_FINITE_FILE = "non_finite.txt"
"""Written into a fold directory when the fold stopped on a non-finite value: resuming the same
config would repeat the same steps, so --resume refuses until the user deletes it."""
RESUMABLE_KEYS = frozenset(
    {
        "cv.folds",
        "data.dir",
        "data.cache_dir",
        "trainer.accelerator",
        "trainer.devices",
        "trainer.num_nodes",
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
        _check_writable(out_dir)
    elif holds_run and not overwrite:
        raise RunError(
            f"{out_dir} already holds a run; continue it with --resume or replace it with "
            "--overwrite"
        )
    elif not holds_run and out_dir.exists() and any(out_dir.iterdir()):
        raise RunError(f"{out_dir} is not empty and holds no run; choose another --out")


def create_run_dir(cfg: Config, out_dir: Path) -> None:
    """A fresh run directory with the resolved ``config.toml`` (an old run's files there are
    removed: :func:`check_run_dir` allowed it only with ``overwrite``)."""
    try:
        if (out_dir / CONFIG_FILE).is_file():
            _remove_run_files(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / CONFIG_FILE, config_to_toml(cfg))
    except OSError as exc:
        raise _not_writable(out_dir, exc) from None


def _remove_run_files(out_dir: Path) -> None:
    """Delete what a run owns (its files, ``fold_<k>/``, their ``.tmp``), nothing else."""
    for path in out_dir.iterdir():
        name = path.name.removesuffix(".tmp")
        if name in RUN_FILES or FOLD_DIR.fullmatch(name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _check_writable(out_dir: Path) -> None:
    """Fail before training, not when the first fold's results are written."""
    try:
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise _not_writable(out_dir, exc) from None


def _not_writable(out_dir: Path, exc: OSError) -> RunError:
    return RunError(f"{out_dir}: cannot write the run directory ({exc.strerror or exc})")


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


def check_same_data(out_dir: Path, data: DataFingerprint, *, resume: bool) -> None:
    """Record the data a run trains on; on resume, refuse data that differ from it."""
    path = out_dir / DATA_FILE
    if resume and path.is_file():
        stored = DataFingerprint.from_dict(read_json(path))
        differs = stored.differences(data)
        if differs:
            raise RunError(
                f"{out_dir}: the training data differ from the data the run was trained on "
                f"({', '.join(differs)}); resume with the run's own data (data.dir, "
                "data.synthetic) or start a new run"
            )
        return
    write_text_atomic(path, json.dumps(data.to_dict(), indent=2) + "\n")


def read_finished(out_dir: Path) -> tuple[dict[int, FoldRecord], pl.DataFrame | None]:
    """Fold records and OOF rows of the folds an earlier attempt finished."""
    summary_file = out_dir / SUMMARY_FILE
    if not summary_file.is_file():
        return {}, None
    try:
        folds = read_json(summary_file)["folds"]
        records = {f["fold"]: FoldRecord.from_dict(f) for f in folds}
    except (KeyError, TypeError) as exc:
        raise RunError(f"{summary_file}: not a run summary ({exc!r} is wrong or missing)") from None
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


def read_json(path: Path) -> Any:
    """A JSON file the run wrote; a truncated or corrupt one is a one-line ``RunError``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: not readable as JSON ({exc}); the file is damaged") from None


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
