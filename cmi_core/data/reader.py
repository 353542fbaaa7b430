"""Kaggle CSV files (or the polars frames the Kaggle server hands over) -> per-sequence arrays.

One code path: ``load_train`` / ``load_test`` check the files' headers and that every row has
all its fields (``csv_rows``), parse them and run the same ``_prepare`` (checks, casts, ToF
summaries; on row batches) and ``_assemble`` (sequences, features) as
``sequences_from_frames``, which the inference Predictor calls on one sequence at a time.
Only the columns the feature set needs are parsed. Parsed data is cached as one ``.npz`` per
file pair, keyed by a fingerprint of the source files and the feature configuration.
"""

from __future__ import annotations

import difflib
import re
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import numpy as np
import polars as pl

from cmi_core.config import FeatureConfig
from cmi_core.data import features as feat
from cmi_core.data.cache import cache_path, read_cache, write_cache
from cmi_core.data.csv_rows import check_rows
from cmi_core.data.schema import (
    ACC_COLUMNS,
    DEMOGRAPHIC_FEATURES,
    DEMOGRAPHICS_COLUMNS,
    FRAME_LABELS,
    GESTURE_INDEX,
    GESTURES,
    ORIENTATIONS,
    ROT_COLUMNS,
    TEST_COLUMNS,
    THM_COLUMNS,
    TOF_COLUMNS,
    TOF_PIXELS,
    TOF_SENSORS,
    TRAIN_COLUMNS,
)
from cmi_core.data.sequences import SequenceSet
from cmi_core.errors import DataError

BATCH_ROWS = 50_000
NO_ROWS = "no rows (a sequence needs at least one)"
TOF_SUMMARY_COLUMNS = feat.THM_TOF_FEATURES[TOF_SENSORS : 3 * TOF_SENSORS]
PER_SENSOR_COLUMNS = (*THM_COLUMNS, *TOF_SUMMARY_COLUMNS)
"""Thermopile and ToF-summary columns of a prepared frame, 5 per kind (one per sensor)."""


# -- public entry points ----------------------------------------------------------------------


def load_train(
    data_dir: Path, features: FeatureConfig, cache_dir: Path | None = None
) -> SequenceSet:
    """``train.csv`` + ``train_demographics.csv`` of ``data_dir`` as labelled sequences."""
    return _load(Path(data_dir), "train", features, cache_dir)


def load_test(
    data_dir: Path, features: FeatureConfig, cache_dir: Path | None = None
) -> SequenceSet:
    """``test.csv`` + ``test_demographics.csv`` of ``data_dir`` (labels -1)."""
    return _load(Path(data_dir), "test", features, cache_dir)


def sequences_from_frames(
    frame: pl.DataFrame,
    demographics: pl.DataFrame,
    features: FeatureConfig,
    source: str = "<frame>",
) -> SequenceSet:
    """Sequences from polars frames with the Kaggle columns (train or test layout).

    This is what the file readers run after parsing; the Kaggle server's frames (one
    sequence, thm/ToF possibly all null, NaN quaternions) go through it unchanged.
    """
    table = _demographics_table(demographics, f"{source} demographics")
    return _assemble(_prepare(frame, features, source), table, features, source)


# -- reading files ----------------------------------------------------------------------------


def _load(
    data_dir: Path, kind: str, features: FeatureConfig, cache_dir: Path | None
) -> SequenceSet:
    csv_path, demo_path = data_dir / f"{kind}.csv", data_dir / f"{kind}_demographics.csv"
    for path in (csv_path, demo_path):
        if not path.is_file():
            raise DataError(f"{path}: file not found")
    cache = (
        cache_path(Path(cache_dir), kind, (csv_path, demo_path), features) if cache_dir else None
    )
    if cache is not None and cache.is_file():
        try:
            return read_cache(cache)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # unreadable (e.g. a disk filled up while it was written): parse again
    _check_header(csv_path, TRAIN_COLUMNS if kind == "train" else TEST_COLUMNS)
    _check_header(demo_path, DEMOGRAPHICS_COLUMNS)
    check_rows(demo_path)
    with ThreadPoolExecutor(1) as pool:  # numpy releases the GIL: the check overlaps the parse
        rows_checked = pool.submit(check_rows, csv_path)
        try:
            table = _demographics_table(_read_demographics(demo_path), str(demo_path))
            frame = _read_prepared(csv_path, _needed_columns(kind == "train", features), features)
        finally:
            rows_checked.result()  # a bad row explains a parse error: its error comes first
    data = _assemble(frame, table, features, str(csv_path))
    if cache is not None:
        write_cache(cache, data)
    return data


def _check_header(path: Path, expected: Sequence[str]) -> None:
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\r\n").split(",")
    header = [name.strip().strip('"') for name in header]
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected]
    if missing:
        close = difflib.get_close_matches(missing[0], unknown, n=1)
        hint = f" (found {close[0]!r}: misspelled?)" if close else ""
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"{path}: missing column {missing[0]!r}{hint}{more}")
    if unknown:
        raise DataError(f"{path}: unexpected column {unknown[0]!r} (not in the Kaggle schema)")


def _needed_columns(labelled: bool, features: FeatureConfig) -> list[str]:
    meta = ["sequence_id", "sequence_counter", "subject"]
    meta += ["orientation", "behavior", "phase", "gesture"] if labelled else []
    sensors = [*ACC_COLUMNS, *ROT_COLUMNS]
    sensors += [*THM_COLUMNS, *TOF_COLUMNS] if features.thm_tof else []
    return meta + sensors


def _dtypes(columns: Sequence[str], tof: pl.DataType | None) -> dict[str, pl.DataType | None]:
    """Column types; ``tof=None`` accepts raw ToF readings of any numeric type as they are."""
    dtypes: dict[str, pl.DataType | None] = {c: pl.Float32() for c in columns}
    dtypes.update(sequence_id=pl.String(), subject=pl.String(), sequence_counter=pl.Int64())
    labels = ("orientation", "behavior", "phase", "gesture")
    dtypes.update({c: pl.String() for c in labels if c in columns})
    if TOF_COLUMNS[0] in columns:
        dtypes.update(dict.fromkeys(TOF_COLUMNS, tof))
    return dtypes


def _file_tof_dtype(path: Path, columns: Sequence[str]) -> pl.DataType:
    """Int16 (half the memory of Float32) when the file writes ToF as integers."""
    if TOF_COLUMNS[0] not in columns:
        return pl.Int16()
    sample = pl.read_csv(path, columns=list(TOF_COLUMNS), n_rows=2000, infer_schema_length=2000)
    integer = all(dtype.is_integer() for dtype in sample.schema.values())
    return pl.Int16() if integer else pl.Float32()


def _read_demographics(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, schema_overrides={"subject": pl.String})
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path}: {_polars_problem(exc)}") from None


def _read_prepared(path: Path, columns: list[str], features: FeatureConfig) -> pl.DataFrame:
    """Parse the needed columns in row batches, each reduced by ``_prepare`` at once, so the
    320 raw ToF columns of the whole file are never in memory together."""
    try:
        dtypes = _dtypes(columns, _file_tof_dtype(path, columns))
        scan = pl.scan_csv(path, schema_overrides=dtypes, infer_schema_length=10000)
        parts = [
            _prepare(batch, features, str(path))
            for batch in scan.select(columns).collect_batches(chunk_size=BATCH_ROWS)
        ]
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path}: {_polars_problem(exc)}") from None
    if not parts:
        raise DataError(f"{path}: {NO_ROWS}")
    return pl.concat(parts)


def _polars_problem(exc: Exception) -> str:
    text = str(exc)
    column = re.search(r"column '([^']+)'", text)
    value = re.search(r"(?:parse|values: \[)[ `\"]*([^`\"\]]*)", text)
    if column:
        shown = f" {value.group(1)!r}" if value else ""
        return f"column {column.group(1)!r}: non-numeric value{shown}"
    return text.splitlines()[0]


# -- building sequences -----------------------------------------------------------------------


@attrs.frozen
class _Demographics:
    index: dict[str, int]
    scaled: np.ndarray  # float32 [S, 7]
    left_handed: np.ndarray  # bool [S]
    source: str


def _demographics_table(demo: pl.DataFrame, source: str) -> _Demographics:
    for column in DEMOGRAPHICS_COLUMNS:
        if column not in demo.columns:
            raise DataError(f"{source}: missing column {column!r}")
    demo = _cast(
        demo, {"subject": pl.String(), **dict.fromkeys(DEMOGRAPHIC_FEATURES, pl.Float64())}, source
    )
    subjects = demo["subject"]
    if subjects.null_count():
        raise DataError(f"{source}: column 'subject' has an empty value")
    if subjects.is_duplicated().any():
        raise DataError(
            f"{source}: subject {subjects.filter(subjects.is_duplicated())[0]!r} has two rows"
        )
    raw = demo.select(DEMOGRAPHIC_FEATURES).to_numpy().astype(np.float64)
    return _Demographics(
        index={s: i for i, s in enumerate(subjects.to_list())},
        scaled=feat.demographic_features(raw),
        left_handed=raw[:, DEMOGRAPHIC_FEATURES.index("handedness")] == 0,
        source=source,
    )


def _cast(frame: pl.DataFrame, dtypes: dict[str, pl.DataType | None], source: str) -> pl.DataFrame:
    """Select and cast to the expected types (``None``: any numeric type), one expression per
    group of columns that need the same conversion; a value that cannot be converted names
    its column."""
    schema = frame.schema
    groups: dict[tuple[pl.DataType, pl.DataType], list[str]] = {}
    for column, wanted in dtypes.items():
        current = schema[column]
        dtype = (current if current.is_numeric() else pl.Float32()) if wanted is None else wanted
        if current != dtype:
            groups.setdefault((current, dtype), []).append(column)
    converted = {column for columns in groups.values() for column in columns}
    exprs = [pl.col([c for c in dtypes if c not in converted])]
    for (current, dtype), columns in groups.items():
        expr = pl.col(columns)
        if current.is_float() and dtype.is_integer():
            expr = expr.fill_nan(None)
        exprs.append(expr.cast(dtype))
    try:
        return frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{source}: {_polars_problem(exc)}") from None


def _prepare(frame: pl.DataFrame, features: FeatureConfig, source: str) -> pl.DataFrame:
    """Check and cast the needed columns, and replace the 320 ToF columns by per-sensor
    summaries. Row-local, so it runs on row batches of a file as well as on a whole frame."""
    present = set(frame.columns)
    columns = [  # a frame without the per-frame label columns gives no per-frame labels
        c
        for c in _needed_columns("gesture" in present, features)
        if c in present or c not in FRAME_LABELS
    ]
    for column in columns:
        if column not in present:
            raise DataError(f"{source}: missing column {column!r}")
    frame = _cast(frame, _dtypes(columns, None), source)
    if not features.thm_tof:
        return frame
    pixels = frame.select(TOF_COLUMNS).to_numpy()  # nulls become NaN
    mean, in_range = feat.tof_summary(pixels.reshape(len(pixels), TOF_SENSORS, TOF_PIXELS))
    summaries = pl.from_numpy(np.hstack([mean, in_range]), schema=TOF_SUMMARY_COLUMNS)
    if features.tof_images:
        images = feat.tof_proximity(pixels)
        summaries = summaries.hstack(pl.from_numpy(images, schema=feat.TOF_IMAGE_FEATURES))
    return frame.drop(TOF_COLUMNS).hstack(summaries)


def _assemble(
    frame: pl.DataFrame, demo: _Demographics, features: FeatureConfig, source: str
) -> SequenceSet:
    """Sort a prepared frame into sequences, check per-sequence values, compute features."""
    labelled = "gesture" in frame.columns
    if frame.height == 0:
        raise DataError(f"{source}: {NO_ROWS}")
    for column in (
        "sequence_id",
        "sequence_counter",
        "subject",
        *(["gesture"] if labelled else []),
    ):
        if frame[column].null_count():
            raise DataError(f"{source}: column {column!r} has an empty value")
    frame = frame.sort("sequence_id", "sequence_counter")
    _check_unique_rows(frame, source)

    runs = frame["sequence_id"].rle().struct.unnest()
    lengths = runs["len"].to_numpy().astype(np.int64)
    sequence_ids = runs["value"].to_numpy().astype(str)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    _check_constant(frame, ["subject", *(["gesture", "orientation"] if labelled else [])], source)
    subjects = frame["subject"].gather(starts).to_numpy().astype(str)
    rows = _demographic_rows(subjects, sequence_ids, demo)

    sensors = [*ACC_COLUMNS, *ROT_COLUMNS, *(PER_SENSOR_COLUMNS if features.thm_tof else ())]
    numbers = frame.select(sensors).to_numpy(writable=True)  # mirrored in place below
    acc, quat = numbers[:, :3].astype(np.float64), numbers[:, 3:7].astype(np.float64)
    per_sensor = [numbers[:, i : i + TOF_SENSORS] for i in range(7, numbers.shape[1], TOF_SENSORS)]
    images = (
        frame.select(feat.TOF_IMAGE_FEATURES).to_numpy(writable=True)
        if features.tof_images
        else None
    )
    if features.mirror_left_handed:
        left = np.repeat(demo.left_handed[rows], lengths)
        feat.mirror_raw(left, acc, quat, *per_sensor)
        if images is not None:
            images[left] = images[left][:, feat.tof_image_mirror()]
    values, valid = feat.imu_features(acc, quat, starts)
    if features.thm_tof:
        values = np.concatenate([values, feat.thm_tof_features(*per_sensor, starts)], axis=1)
    if images is not None:
        values = np.concatenate([values, images.astype(np.float32)], axis=1)

    frame_starts, frame_rows = starts, slice(None)  # frame -> the row its labels are at
    if features.downsample > 1:
        values, valid, frame_starts, frame_rows = feat.downsample(
            values, valid, starts, features.downsample
        )
    labels = np.full(len(starts), -1, dtype=np.int64)
    orientations = initial_behaviors = None
    if labelled:
        labels = _labels(
            frame["gesture"].gather(starts).to_numpy().astype(str), sequence_ids, source
        )
        orientations = frame["orientation"].gather(starts).fill_null("").to_numpy().astype(str)
        _check_values(orientations, ORIENTATIONS, "orientation", sequence_ids, source)
        if "behavior" in frame.columns:  # the composite task's initial behaviour
            initial_behaviors = frame["behavior"].gather(starts).fill_null("").to_numpy()
            initial_behaviors = initial_behaviors.astype(str)
    cuts = frame_starts[1:]
    frame_labels = {
        column: np.split(
            _frame_labels(frame, column, starts, sequence_ids, source)[frame_rows], cuts
        )
        for column in FRAME_LABELS
        if labelled and column in frame.columns
    }
    return SequenceSet(
        sequence_ids=sequence_ids,
        subjects=subjects,
        features=np.split(values, cuts),
        valid=np.split(valid, cuts),
        demographics=demo.scaled[rows],
        labels=labels,
        orientations=orientations,
        feature_names=feat.feature_names(features),
        initial_behaviors=initial_behaviors,
        frame_labels=frame_labels,
    )


def _frame_labels(
    frame: pl.DataFrame, column: str, starts: np.ndarray, sequence_ids: np.ndarray, source: str
) -> np.ndarray:
    """A per-frame label column as int8 class ids (``FRAME_LABELS``), ``-1`` where empty."""
    classes = FRAME_LABELS[column]
    values = frame[column].fill_null("").to_numpy().astype(str)
    known = values != ""
    bad = known & ~np.isin(values, classes)
    if bad.any():  # name the sequence of the first bad frame
        sequence = sequence_ids[np.searchsorted(starts, np.flatnonzero(bad)[0], "right") - 1]
        _check_values(values[bad][:1], classes, column, np.array([sequence]), source)
    ids = np.full(len(values), -1, dtype=np.int8)
    for i, name in enumerate(classes):
        ids[values == name] = i
    return ids


def _check_unique_rows(frame: pl.DataFrame, source: str) -> None:
    """A (sequence_id, sequence_counter) pair names one row; ``frame`` is sorted by both."""
    repeated = (pl.col("sequence_id") == pl.col("sequence_id").shift(1)) & (
        pl.col("sequence_counter") == pl.col("sequence_counter").shift(1)
    )
    first = frame.filter(repeated).head(1)
    if first.height:
        sequence, counter = first["sequence_id"][0], first["sequence_counter"][0]
        raise DataError(
            f"{source}: sequence {sequence!r}: two rows with sequence_counter {counter} "
            "(a duplicated row)"
        )


def _check_constant(frame: pl.DataFrame, columns: list[str], source: str) -> None:
    """Per-sequence values (subject, gesture, ...) must not change inside a sequence."""
    same_seq = pl.col("sequence_id") == pl.col("sequence_id").shift(1)
    first_change = [
        pl.col("sequence_id")
        .filter(same_seq & pl.col(c).ne_missing(pl.col(c).shift(1)))
        .first()
        .alias(c)
        for c in columns
    ]
    for column, bad in zip(columns, frame.select(first_change).row(0), strict=True):
        if bad is not None:
            raise DataError(f"{source}: sequence {bad!r}: column {column!r} changes within it")


def _demographic_rows(
    subjects: np.ndarray, sequence_ids: np.ndarray, demo: _Demographics
) -> np.ndarray:
    rows = np.array([demo.index.get(s, -1) for s in subjects], dtype=np.int64)
    if (rows < 0).any():
        i = int(np.flatnonzero(rows < 0)[0])
        raise DataError(
            f"{demo.source}: no row for subject {str(subjects[i])!r} "
            f"(sequence {str(sequence_ids[i])!r})"
        )
    return rows


def _labels(gestures: np.ndarray, sequence_ids: np.ndarray, source: str) -> np.ndarray:
    _check_values(gestures, GESTURES, "gesture", sequence_ids, source)
    return np.array([GESTURE_INDEX[g] for g in gestures], dtype=np.int64)


def _check_values(
    values: np.ndarray, allowed: Sequence[str], column: str, sequence_ids: np.ndarray, source: str
) -> None:
    bad = ~np.isin(values, allowed)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value, sequence = str(values[i]), str(sequence_ids[i])
        close = difflib.get_close_matches(value, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"{source}: sequence {sequence!r}: unknown {column} {value!r}{hint}")
