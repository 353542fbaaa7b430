"""``cmi ensemble --postprocess``: what a post-processor is worth, from OOF predictions alone.

Each fold's out-of-fold sequences are a test set of their own (its subjects were never trained
on), so they are replayed through the post-processor as the Kaggle gateway would serve them:
one at a time, all the fold's subjects interleaved, in ``orders`` random arrival orders
(``random.Random(order)``, the gateway's shuffle). The post-processor sees only the
probabilities and the subject; its protocol counts come from the *other* folds' sequences, so
no label of the replayed fold reaches it. The score with it is paired with the score without
it on the same sequences; the interval is a Student-t interval over orders (and, with several
runs, over runs: the seeds are then the independent units, orders averaged within a run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import polars as pl

from cmi_core.analysis.ensemble import EnsembleInputs, load_ensemble_inputs, oof_score
from cmi_core.analysis.stats import fold_t_interval
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.metrics import competition_score
from cmi_core.predict.gateway import arrival_order
from cmi_core.predict.postprocessing import build_postprocessor, oof_protocol, replay


def postprocess_answers(
    frame: pl.DataFrame,
    probs: np.ndarray,
    name: str,
    options: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    plugin_modules: Sequence[str] = (),
) -> np.ndarray:
    """``[N]`` gesture indices: each fold of the OOF rows ``frame`` replayed through a fresh
    post-processor in arrival order ``seed``. Only the other folds' labels are read (counted
    into the protocol)."""
    answers = np.full(len(frame), -1, dtype=np.int64)
    ids = frame["sequence_id"].to_list()
    folds = frame["fold"].to_numpy()
    subjects = frame["subject"].to_list()
    for fold in np.unique(folds):
        rows = np.flatnonzero(folds == fold)
        postprocessor = build_postprocessor(
            name, oof_protocol(frame, int(fold)), options, plugin_modules=plugin_modules
        )
        position = {ids[i]: k for k, i in enumerate(rows)}
        order = [position[s] for s in arrival_order([ids[i] for i in rows], seed)]
        fold_subjects = [subjects[i] for i in rows]
        answers[rows] = replay(postprocessor, {"gesture": probs[rows]}, fold_subjects, order)
    return answers


@attrs.frozen
class EstimateRow:
    """One run (or the ensemble): the OOF score without the post-processor, and with it in
    each arrival order."""

    name: str
    without: float
    with_orders: tuple[float, ...]

    @property
    def gains(self) -> np.ndarray:
        return np.array(self.with_orders) - self.without

    def interval(self) -> tuple[float, float]:
        """95 % t-interval of the mean gain over orders (NaN with one order)."""
        return fold_t_interval(self.gains, np.arange(len(self.gains)))


@attrs.frozen
class PostprocessEstimate:
    """``cmi ensemble --postprocess``'s table: rows per run and for the ensemble."""

    postprocess: str
    orders: int
    rows: tuple[EstimateRow, ...]
    n_sequences: int

    @property
    def runs(self) -> tuple[EstimateRow, ...]:
        """The rows of single runs (the ensemble's row, with several runs, is the last)."""
        return self.rows[:-1] if len(self.rows) > 1 else self.rows

    def pooled_interval(self) -> tuple[float, float] | None:
        """With several runs: the t-interval of the mean gain over runs (orders averaged
        within each run), the runs' seeds being the independent units; else None."""
        runs = self.runs
        if len(runs) < 2:
            return None
        gains = np.concatenate([row.gains for row in runs])
        return fold_t_interval(gains, np.repeat(np.arange(len(runs)), self.orders))

    def table(self) -> str:
        width = max(len("ensemble"), *(len(row.name) for row in self.rows))
        lines = [
            f"{self.postprocess}: {self.orders} arrival order(s), {self.n_sequences} "
            "out-of-fold sequences",
            f"{'run':<{width}}  without    with    gain  95% interval",
        ]
        for row in self.rows:
            low, high = row.interval()
            lines.append(
                f"{row.name:<{width}}  {row.without:.4f}  {np.mean(row.with_orders):.4f}  "
                f"{row.gains.mean():+.4f}  [{low:+.4f}, {high:+.4f}]"
            )
        pooled = self.pooled_interval()
        if pooled is not None:
            gains = np.mean([row.gains.mean() for row in self.runs])
            lines.append(
                f"{'over runs':<{width}}  {'':6}  {'':6}  {gains:+.4f}  "
                f"[{pooled[0]:+.4f}, {pooled[1]:+.4f}]"
            )
        return "\n".join(lines)


def postprocess_estimate(
    run_dirs: Sequence[Path],
    name: str,
    *,
    weights: Sequence[float] | None = None,
    orders: int = 20,
    options: Mapping[str, Any] | None = None,
    plugin_modules: Sequence[str] = (),
) -> PostprocessEstimate:
    """Replay every run's (and the ensemble's) OOF sequences; see the module doc."""
    if not (isinstance(orders, int) and orders >= 1):
        raise RunError(f"--orders must be a positive integer, got {orders!r}")
    inputs: EnsembleInputs = load_ensemble_inputs(run_dirs, weights)
    build_postprocessor(  # bad options or a missing output fail before any replay
        name, oof_protocol(inputs.frame), options, plugin_modules=plugin_modules
    )
    candidates = list(zip(inputs.names, inputs.probs, strict=True))
    if len(run_dirs) > 1:
        candidates.append(("ensemble", inputs.mixed))
    gestures = inputs.frame["gesture"].to_list()
    rows = []
    for label, probs in candidates:
        scores = []
        for seed in range(orders):
            answers = postprocess_answers(
                inputs.frame, probs, name, options, seed=seed, plugin_modules=plugin_modules
            )
            predicted = [GESTURES[i] for i in answers]
            scores.append(competition_score(gestures, predicted)["cmi_score"])
        rows.append(EstimateRow(label, oof_score(gestures, probs), tuple(scores)))
    return PostprocessEstimate(name, orders, tuple(rows), len(gestures))
