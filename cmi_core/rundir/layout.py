"""The run directory: its file names and what a run writes into it (atomically).

Reading it back is :mod:`cmi_core.rundir.reader`; the checks before a run starts are
:mod:`cmi_core.rundir.checks`.

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
import re
import shutil
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from cmi_core.common.atomic import atomic_path, target_of, write_text_atomic
from cmi_core.common.lock import LOCK_FILE
from cmi_core.config import Config, config_to_toml
from cmi_core.data.fingerprint import DataFingerprint
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.rundir.records import FoldRecord, build_summary

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
FOLD_DIR = re.compile(r"fold_(\d+)")
"""The name of a fold directory: :func:`fold_dir` writes it, :func:`fold_dirs` parses it."""
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
    """Fold ``k``'s directory: the one spelling of ``fold_<k>``."""
    return Path(out_dir) / f"fold_{k}"


def fold_dirs(out_dir: Path) -> dict[int, Path]:
    """``{k: fold_<k>/}`` for every fold directory in ``out_dir``, in fold order."""
    found = {}
    for path in Path(out_dir).iterdir() if Path(out_dir).is_dir() else ():
        match = FOLD_DIR.fullmatch(path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def has_entries(directory: Path) -> bool:
    """Whether ``directory`` holds anything but the lock file an earlier attempt left."""
    return any(path.name != LOCK_FILE for path in directory.iterdir())


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
    """Delete what a run owns (its files, ``fold_<k>/``, their temporaries), nothing else."""
    for path in out_dir.iterdir():
        name = target_of(path.name) or path.name
        if name in RUN_FILES or FOLD_DIR.fullmatch(name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def check_writable(out_dir: Path) -> None:
    """Fail before training (or drawing), not when the first result is written."""
    try:
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise _not_writable(out_dir, exc) from None


def _not_writable(out_dir: Path, exc: OSError) -> RunError:
    return RunError(f"{out_dir}: cannot write the run directory ({exc.strerror or exc})")


def write_data_fingerprint(out_dir: Path, data: DataFingerprint) -> None:
    """Record the data a run trains on (``data_fingerprint.json``)."""
    write_text_atomic(out_dir / DATA_FILE, json.dumps(data.to_dict(), indent=2) + "\n")


def write_results(
    cfg: Config,
    out_dir: Path,
    records: Mapping[int, FoldRecord],
    oof: pl.DataFrame,
    wanted: Sequence[int],
) -> dict[str, Any]:
    """Write ``oof_predictions.csv`` then ``summary.json`` (the latter marks folds finished)."""
    oof = oof.sort("fold", "sequence_id")
    with atomic_path(out_dir / OOF_FILE) as tmp:
        oof.write_csv(tmp)
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


def config_identity(flat_config: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes the runs of one config over seeds one config: every key but where and how
    it ran (the keys --resume may change), ``trainer.seed`` and ``name`` (a label: the same
    settings under two names are one config)."""
    ignored = RESUMABLE_KEYS | {"trainer.seed", "name"}
    kept = {k: v for k, v in flat_config.items() if k not in ignored}
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in kept.items()))


def flat_config_of(cfg: Config) -> dict[str, Any]:
    """``cfg`` flattened as its ``config.toml`` reads back (TOML turns tuples into lists)."""
    return flatten(tomllib.loads(config_to_toml(cfg)))


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config table as ``{"dotted.key": value}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
