"""Reading a run directory's files back: the OOF predictions and their gesture columns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.rundir.layout import OOF_FILE

OOF_KEYS = ("sequence_id", "fold", "gesture")
"""Columns that must agree row for row between the runs of an ensemble."""


def gesture_order(columns: Sequence[str], source: Path) -> list[str]:
    """The gesture columns of an OOF header, which must name the 18 gestures (any order)."""
    gestures = [c for c in columns if c not in (*OOF_KEYS, "subject", "prediction")]
    if sorted(gestures) != sorted(GESTURES):
        extra = sorted(set(gestures) - set(GESTURES))
        absent = sorted(set(GESTURES) - set(gestures))
        raise RunError(
            f"{source}: its gesture list cannot be mixed with this version's 18 gestures "
            f"(unknown: {extra or 'none'}; missing: {absent or 'none'})"
        )
    return gestures


def run_gestures(run_dir: Path) -> list[str]:
    """The order of a run's class probabilities, from its OOF header (``GESTURES`` without one:
    a run uploaded for inference may carry only its checkpoints)."""
    path = Path(run_dir) / OOF_FILE
    if not path.is_file():
        return list(GESTURES)
    with path.open(encoding="utf-8") as file:
        header = file.readline().strip().split(",")
    return gesture_order(header, path)


def read_oof(run_dir: Path) -> pl.DataFrame:
    """A run's OOF rows: ``sequence_id, fold, gesture`` + the 18 probabilities in ``GESTURES``
    order, sorted by ``sequence_id``."""
    path = Path(run_dir) / OOF_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {OOF_FILE} (not a run directory, or no fold finished)")
    try:
        frame = pl.read_csv(path, schema_overrides={"sequence_id": pl.String, "fold": pl.Int64})
    except pl.exceptions.PolarsError as exc:
        raise RunError(f"{path}: not a readable OOF file ({str(exc).splitlines()[0]})") from None
    missing = [c for c in OOF_KEYS if c not in frame.columns]
    if missing:
        raise RunError(f"{path}: missing column(s) {', '.join(missing)}")
    gesture_order(frame.columns, path)
    return frame.select(*OOF_KEYS, *GESTURES).sort("sequence_id")
