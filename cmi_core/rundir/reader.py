"""Reading a run directory back: the one reader of its files, and the checks for damage.

Every command that reads a run (``compare``, ``ensemble``, ``report``, ``predict``,
``--resume``) reads it through :class:`RunDir`, so a damaged file is refused the same way
everywhere: a missing, truncated or non-object ``summary.json``, a corrupt ``config.toml``, a
missing or cut ``oof_predictions.csv``, a missing column or a non-number in one, each is one
``RunError`` line naming the file, before any output is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import polars as pl

from cmi_core.config import config_from_dict, read_toml
from cmi_core.data.fingerprint import DataFingerprint
from cmi_core.data.schema import GESTURES
from cmi_core.errors import CmiError, RunError
from cmi_core.rundir.layout import (
    CONFIG_FILE,
    DATA_FILE,
    OOF_FILE,
    SUMMARY_FILE,
    flat_config_of,
    flatten,
    fold_dir,
    fold_dirs,
)
from cmi_core.rundir.records import FoldRecord

OOF_KEYS = ("sequence_id", "fold", "gesture")
"""Columns that must agree row for row between the runs of an ensemble."""
OOF_LABELS = ("sequence_id", "subject", "fold", "gesture", "prediction")
"""The columns of ``oof_predictions.csv`` before the gesture probabilities."""
SEQUENCE_PARTS = ("sequence_ids", "subjects", "labels", "demographics")
"""Parts of a data fingerprint that do not depend on ``data.features``: runs of other feature
settings compare on these alone."""


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object cmi-trainer wrote; a truncated, corrupt or non-object file is one line."""
    value = _read_json(path)
    if not isinstance(value, dict):
        raise RunError(f"{path}: not a JSON object (a {type(value).__name__}); the file is damaged")
    return value


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: not readable as JSON ({exc}); the file is damaged") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def gesture_order(columns: Sequence[str], source: Path) -> list[str]:
    """The gesture columns of an OOF header, which must name the 18 gestures (any order)."""
    gestures = [c for c in columns if c not in OOF_LABELS]
    if sorted(gestures) != sorted(GESTURES):
        extra = sorted(set(gestures) - set(GESTURES))
        absent = sorted(set(GESTURES) - set(gestures))
        raise RunError(
            f"{source}: its gesture list cannot be mixed with this version's 18 gestures "
            f"(unknown: {extra or 'none'}; missing: {absent or 'none'})"
        )
    return gestures


@attrs.frozen
class RunDir:
    """A run directory as the commands that read it see it (reads only; nothing is cached, so
    a run still in progress is read as it is now)."""

    path: Path = attrs.field(converter=Path)

    # -- summary.json ---------------------------------------------------------------------------

    def has_results(self) -> bool:
        """Whether a fold has finished (``summary.json`` exists)."""
        return (self.path / SUMMARY_FILE).is_file()

    def summary(self) -> dict[str, Any]:
        """``summary.json``, its ``folds`` list checked to hold one fold record each."""
        return self.summary_and_records()[0]

    def fold_records(self) -> dict[int, FoldRecord]:
        """``{k: FoldRecord}`` of every finished fold, in fold order."""
        return self.summary_and_records()[1]

    def summary_and_records(self) -> tuple[dict[str, Any], dict[int, FoldRecord]]:
        """Both from one read of ``summary.json`` (a run in progress may rewrite it between two)."""
        path = self.path / SUMMARY_FILE
        if not path.is_file():
            raise RunError(f"{self.path}: not a run directory with results (no {SUMMARY_FILE})")
        summary = _read_json(path)
        folds = summary.get("folds") if isinstance(summary, dict) else None
        if not isinstance(folds, list) or not all(
            isinstance(f, dict) and type(f.get("fold")) is int for f in folds
        ):
            raise RunError(f"{path}: not a run summary (no fold records)")
        records = {}
        for raw in folds:
            try:
                records[raw["fold"]] = FoldRecord.from_dict(raw)
            except TypeError as exc:
                reason = str(exc).removeprefix("FoldRecord.__init__() ")
                k = raw["fold"]
                raise RunError(f"{path}: fold {k}: not a fold record ({reason})") from None
        return summary, dict(sorted(records.items()))

    def finished_folds(self) -> list[int]:
        """The folds ``summary.json`` lists: a fold counts as finished once it is there."""
        return sorted({raw["fold"] for raw in self.summary()["folds"]})

    # -- config.toml, data_fingerprint.json --------------------------------------------------

    def config_table(self) -> dict[str, Any]:
        """The run's resolved ``config.toml`` as TOML tables."""
        path = self.path / CONFIG_FILE
        if not path.is_file():
            raise RunError(f"{self.path}: no {CONFIG_FILE} (not a run directory)")
        return read_toml(path)

    def flat_config(self, plugin_modules: Sequence[str] = ()) -> dict[str, Any]:
        """The run's config as ``{"dotted.key": value}``, as today's code reads it: every key
        added since the run was written at its default, the value that keeps the behaviour
        the run was trained with, so runs from before and after a new key resume, group and
        compare as one config. A run directory may come from anywhere, so the modules its
        ``[plugins] modules`` names are not imported, only the caller's ``plugin_modules``;
        a run that needs others, or holds a key since renamed or removed, reads as written."""
        table = self.config_table()
        trusted = with_trusted_modules(table, plugin_modules)
        try:
            cfg = config_from_dict(trusted, str(self.path / CONFIG_FILE), check_paths=False)
        except CmiError:
            return flatten(table)
        return {**flat_config_of(cfg), **flatten({"plugins": table.get("plugins", {})})}

    def data_fingerprint(self) -> DataFingerprint | None:
        """What the run trained on; ``None`` for a run from before ``data_fingerprint.json``."""
        path = self.path / DATA_FILE
        if not path.is_file():
            return None
        raw = read_json_object(path)
        try:
            return DataFingerprint.from_dict(raw)
        except TypeError:
            raise RunError(f"{path}: not a data fingerprint (wrong or missing keys)") from None

    # -- fold directories ------------------------------------------------------------------------

    def fold_dir(self, k: int) -> Path:
        return fold_dir(self.path, k)

    def fold_dirs(self) -> dict[int, Path]:
        """``{k: fold_<k>/}`` of every fold directory, finished or not."""
        return fold_dirs(self.path)

    # -- oof_predictions.csv ---------------------------------------------------------------------

    def gestures(self) -> list[str]:
        """The order of the run's class probabilities, from its OOF header (``GESTURES``
        without one: a run uploaded for inference may carry only its checkpoints)."""
        path = self.path / OOF_FILE
        if not path.is_file():
            return list(GESTURES)
        with path.open(encoding="utf-8") as file:
            header = file.readline().strip().split(",")
        return gesture_order(header, path)

    def oof(self, probabilities: type[pl.DataType] = pl.Float64) -> pl.DataFrame:
        """The OOF rows of the finished folds: the label columns, then the 18 probabilities
        in ``GESTURES`` order, sorted by fold and ``sequence_id``.

        Refused as damaged: a missing column, a non-number or empty cell, an unknown gesture, a
        finished fold without rows, a row count other than the summary's ``n_sequences``.
        """
        path = self.path / OOF_FILE
        if not path.is_file():
            raise RunError(f"{self.path}: no {OOF_FILE} (not a run directory, or no fold finished)")
        frame = _read_oof_file(path, probabilities)
        summary = self.summary()
        finished = sorted({raw["fold"] for raw in summary["folds"]})
        # rows of a fold the summary does not list yet: the run stopped between the two writes
        frame = frame.filter(pl.col("fold").is_in(finished))
        _check_oof_rows(frame, path, finished, summary.get("n_sequences"))
        return frame.select(*OOF_LABELS, *GESTURES).sort("fold", "sequence_id")

    def finished(self) -> tuple[dict[int, FoldRecord], pl.DataFrame | None]:
        """Fold records and OOF rows of the folds an earlier attempt finished (``--resume``):
        the probabilities as the run writes them (float32), so they are rewritten unchanged."""
        if not self.has_results():
            return {}, None
        return self.fold_records(), self.oof(pl.Float32)


def _read_oof_file(path: Path, probabilities: type[pl.DataType]) -> pl.DataFrame:
    """The CSV with its column types; what polars cannot parse is one line naming the file."""
    schema = {
        "sequence_id": pl.String,
        "subject": pl.String,
        "fold": pl.Int64,
        "gesture": pl.String,
        "prediction": pl.String,
        **{g: probabilities for g in GESTURES},
    }
    try:
        frame = pl.read_csv(path, schema_overrides=schema)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"{path}: not a readable OOF file ({reason}); the file is damaged") from None
    missing = [c for c in OOF_LABELS if c not in frame.columns]
    if missing:
        raise RunError(f"{path}: missing column(s) {', '.join(missing)}; the file is damaged")
    gesture_order(frame.columns, path)
    return frame


def _check_oof_rows(
    frame: pl.DataFrame, path: Path, finished: Sequence[int], n_sequences: Any
) -> None:
    """A cut or edited OOF file must not pass as a run with fewer sequences."""
    empty = [c for c in frame.columns if frame[c].null_count()]
    if empty:
        row = int(frame.with_row_index().filter(pl.col(empty[0]).is_null())["index"][0]) + 2
        raise RunError(f"{path}: line {row} has no {empty[0]} (a cut or edited file)")
    labels = set(GESTURES)
    for column in ("gesture", "prediction"):
        unknown = set(frame[column]) - labels
        if unknown:
            raise RunError(f"{path}: {column} {sorted(unknown)[0]!r} is not a gesture")
    absent = sorted(set(finished) - set(frame["fold"]))
    if absent:
        raise RunError(f"{path}: no rows of finished fold(s) {absent} (a cut file)")
    if isinstance(n_sequences, int) and len(frame) != n_sequences:
        raise RunError(
            f"{path}: {len(frame)} rows of finished folds, but {SUMMARY_FILE} counts "
            f"{n_sequences} sequences (a cut or edited file)"
        )


SAME_DATA_KEYS = ("data.source", "data.dir", "data.synthetic.")
"""Data settings compared between runs without a data fingerprint (prefixes end with a dot)."""
SAME_FOLD_KEYS = ("cv.n_folds", "cv.seed")


def with_trusted_modules(table: dict[str, Any], plugin_modules: Sequence[str]) -> dict[str, Any]:
    """A run's config table with its ``[plugins] modules`` replaced by the caller's: a run
    directory may come from anywhere, and importing a module runs its code."""
    plugins = table.get("plugins")
    kept = plugins if isinstance(plugins, dict) else {}
    return {**table, "plugins": {**kept, "modules": [*plugin_modules]}}


def data_differences(a: RunDir, b: RunDir) -> list[str]:
    """Why runs ``a`` and ``b`` were not trained on the same data and folds (empty: they were).

    The data compare by fingerprint where both runs have one, so the same data in another
    directory is the same data and other data under the same path is not; the feature
    digest counts only between runs of the same ``data.features``. Runs from before
    ``data_fingerprint.json`` compare by their data settings. The folds compare by ``[cv]``.
    """
    config_a, config_b = a.flat_config(), b.flat_config()
    data_a, data_b = a.data_fingerprint(), b.data_fingerprint()
    keys = SAME_FOLD_KEYS if data_a and data_b else SAME_FOLD_KEYS + SAME_DATA_KEYS
    differing = sorted(
        key
        for key in config_a.keys() | config_b.keys()
        if key.startswith(keys) and config_a.get(key) != config_b.get(key)
    )
    if data_a and data_b:
        features = {k: v for k, v in config_a.items() if k.startswith("data.features.")}
        same_features = features == {
            k: v for k, v in config_b.items() if k.startswith("data.features.")
        }
        parts = ("n_sequences", *SEQUENCE_PARTS, *(("features",) if same_features else ()))
        parts = [p.replace("_", " ") for p in parts if getattr(data_a, p) != getattr(data_b, p)]
        if parts:
            differing.append(f"the data ({DATA_FILE}: {', '.join(parts)})")
    return differing
