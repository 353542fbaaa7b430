"""Setting up a post-processor for prediction: its protocol counts, its options, its checks.

The protocol counts come from the run's own training data: its ``oof_predictions.csv`` holds
every training sequence once with its subject and gesture (:func:`run_protocol`), and a
``train.csv`` with orientation and behaviour columns also gives the composite classes
(:func:`train_protocol`). ``cmi predict``, ``Predictor`` and ``cmi ensemble`` build the
post-processor through :func:`build_postprocessor`, so options are checked in one place.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cmi_core.config.structure import structure_options
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.postprocess import Outputs, Postprocessor, Protocol
from cmi_core.registry.manager import get_plugin_manager
from cmi_core.rundir.reader import RunDir


def protocol_counts(frame: pl.DataFrame) -> Protocol:
    """Mean sequences per subject of each gesture (and composite class, where ``frame`` has
    ``orientation`` and ``initial_behavior``): ``frame`` has one row per sequence."""
    subjects = frame["subject"].n_unique()
    if subjects == 0:
        raise RunError("no training sequences to count the protocol from")
    per_gesture = dict(frame.group_by("gesture").len().iter_rows())
    counts = np.array([per_gesture.get(g, 0) for g in GESTURES], dtype=np.float64) / subjects
    if not {"orientation", "initial_behavior"} <= set(frame.columns):
        return Protocol(GESTURES, counts, subjects)
    keys = ["orientation", "gesture", "initial_behavior"]
    composite = frame.group_by(keys).len().sort(keys)
    return Protocol(
        GESTURES,
        counts,
        subjects,
        composites=[tuple(row) for row in composite.select(keys).iter_rows()],
        composite_counts=composite["len"].to_numpy() / subjects,
    )


def run_protocol(run_dir: Path, exclude_fold: int | None = None) -> Protocol:
    """The protocol counted from a run's OOF rows (its training sequences), leaving out
    ``exclude_fold`` (the fold being replayed, so its labels are never counted)."""
    frame = RunDir(Path(run_dir)).oof()
    return oof_protocol(frame, exclude_fold)


def oof_protocol(frame: pl.DataFrame, exclude_fold: int | None = None) -> Protocol:
    """:func:`protocol_counts` of OOF rows, without those of fold ``exclude_fold``."""
    if exclude_fold is not None:
        frame = frame.filter(pl.col("fold") != exclude_fold)
        if frame.is_empty():
            raise RunError(
                f"fold {exclude_fold} is the only finished fold: the protocol must be counted "
                "from other folds' sequences"
            )
    return protocol_counts(frame.select("subject", "gesture"))


def train_protocol(train_csv: Path) -> Protocol:
    """The protocol of a ``train.csv``, composite classes included (orientation x gesture x
    the behaviour of each sequence's first frame)."""
    columns = ["sequence_id", "sequence_counter", "subject", "orientation", "behavior", "gesture"]
    frame = (
        pl.read_csv(train_csv, columns=columns)
        .sort("sequence_id", "sequence_counter")
        .group_by("sequence_id", maintain_order=True)
        .first()
        .rename({"behavior": "initial_behavior"})
    )
    return protocol_counts(frame)


def parse_options(items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items (values in TOML: ``strength=2.0``, ``target="gesture"``; a bare
    word is a string) into an option table."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RunError(f"--postprocess-option {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            options[key.strip()] = value
    return options


def build_postprocessor(
    name: str,
    protocol: Protocol,
    options: Mapping[str, Any] | None = None,
    *,
    available: Sequence[str] = ("gesture",),
    plugin_modules: Sequence[str] = (),
) -> Postprocessor:
    """The post-processor ``name`` with its options checked by its ``config_cls``; refused in
    one line when it needs outputs the runs do not produce (``available``)."""
    spec = get_plugin_manager(plugin_modules).get("postprocessor", name)
    structured = structure_options(spec.config_cls, dict(options or {}), f"postprocess {name}")
    postprocessor = spec.factory(protocol, structured)
    missing = [output for output in postprocessor.needs() if output not in available]
    if missing:
        raise RunError(
            f"postprocess {name} needs the output(s) {', '.join(missing)}, which the run(s) do "
            f"not predict (they predict: {', '.join(available)})"
        )
    if "composite" in postprocessor.needs() and not protocol.composites:
        raise RunError(
            f"postprocess {name} needs composite protocol counts (orientation x gesture x "
            "initial behaviour), which need training data with orientation and behavior"
        )
    return postprocessor


def replay(
    postprocessor: Postprocessor,
    outputs: Mapping[str, np.ndarray],
    subjects: Sequence[str],
    order: Sequence[int],
) -> np.ndarray:
    """Feed the rows of ``outputs`` (``{name: [N, K]}``) one at a time in ``order``; returns
    ``[N]`` answers as gesture indices (row order)."""
    index = {g: i for i, g in enumerate(GESTURES)}
    answers = np.full(len(subjects), -1, dtype=np.int64)
    for i in order:
        row: Outputs = {name: values[i] for name, values in outputs.items()}
        answers[i] = index[postprocessor(row, str(subjects[i]))]
    return answers
