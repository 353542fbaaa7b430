"""Where the training data of a config comes from: the Kaggle directory it names, or the
synthetic set, generated on first use into the cache directory."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cmi_core.common.atomic import write_text_atomic
from cmi_core.config import Config, DataConfig
from cmi_core.data.reader import load_train
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.synthetic import GENERATOR_VERSION, generate
from cmi_core.errors import DataError


def load_data(cfg: Config) -> SequenceSet:
    """The configured training data (generated first when it is the synthetic set)."""
    data_dir = resolve_data_dir(cfg.data)
    return load_train(data_dir, cfg.data.features, cache_dir=Path(cfg.data.cache_dir))


def resolve_data_dir(cfg: DataConfig) -> Path:
    """The directory holding the Kaggle files for a data configuration.

    ``kaggle``: ``cfg.dir``, checked for the train files. ``synthetic``: the generated set in
    ``cfg.cache_dir/synthetic-<subjects>-<seed>/``, generated on first use into a temporary
    directory and renamed into place, so concurrent or interrupted runs never see half a set.
    """
    if cfg.source == "kaggle":
        if not cfg.dir:
            raise DataError("data.dir: required when data.source = 'kaggle'")
        data_dir = Path(cfg.dir).expanduser()
        for name in ("train.csv", "train_demographics.csv"):
            if not (data_dir / name).is_file():
                raise DataError(
                    f"{data_dir / name}: file not found (data.dir of data.source = 'kaggle')"
                )
        return data_dir
    return _synthetic_dir(
        Path(cfg.cache_dir).expanduser(), cfg.synthetic.subjects, cfg.synthetic.seed
    )


# -- synthetic directory ----------------------------------------------------------------------

COMPLETE_MARKER = ".complete"


def _synthetic_dir(cache_dir: Path, subjects: int, seed: int) -> Path:
    target = cache_dir / f"synthetic-{subjects}-{seed}"
    if _is_complete(target, GENERATOR_VERSION):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        generate(fresh, subjects=subjects, seed=seed)
        write_text_atomic(fresh / COMPLETE_MARKER, GENERATOR_VERSION)
        if target.exists() and not _is_complete(target, GENERATOR_VERSION):
            shutil.rmtree(target, ignore_errors=True)  # stale: an older generator or interrupted
        try:
            fresh.rename(target)
        except OSError:
            if not _is_complete(target, GENERATOR_VERSION):  # not a concurrent twin: a real error
                raise
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return target


def _is_complete(directory: Path, version: str) -> bool:
    marker = directory / COMPLETE_MARKER
    return marker.is_file() and marker.read_text() == version
