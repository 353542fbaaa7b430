"""What a finished fold reports (:class:`FoldRecord`) and the run's ``summary.json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from cmi_core.metrics import competition_score

if TYPE_CHECKING:
    import polars as pl

    from cmi_core.config import Config


@attrs.frozen
class FoldRecord:
    """One finished fold's entry in ``summary.json``'s ``folds`` list (what is kept of a fold:
    training returns it inside a :class:`~cmi_core.train.fold.FinishedFold`)."""

    fold: int
    cmi_score: float
    binary_f1: float
    macro_f1: float
    best_epoch: int
    epochs_trained: int
    stopped_early: bool
    wall_time_s: float
    n_train: int
    n_val: int
    weights: dict[str, float]
    """The weighting's effective weights at the end of training."""
    weighting: dict[str, float]
    """The weighting's raw learnable values at the end of training."""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FoldRecord:
        return cls(**raw)


def build_summary(
    cfg: Config,
    records: Mapping[int, FoldRecord],
    oof: pl.DataFrame,
    wanted: Sequence[int],
) -> dict[str, Any]:
    """The content of ``summary.json``: the OOF score over the finished folds, their records."""
    overall = competition_score(list(oof["gesture"]), list(oof["prediction"]))
    folds = [records[k] for k in sorted(records)]
    fold_scores = np.array([r.cmi_score for r in folds])
    return {
        "name": cfg.name,
        **overall,
        "n_sequences": len(oof),
        "complete": set(wanted) <= set(records),
        "folds_requested": list(wanted),
        "n_folds": cfg.cv.n_folds,
        "fold_cmi_mean": float(fold_scores.mean()),
        "fold_cmi_std": float(fold_scores.std()),
        "wall_time_s": float(sum(r.wall_time_s for r in folds)),
        "weighting": cfg.loss.weighting.strategy,
        "backbone": cfg.model.backbone,
        "versions": {pkg: version(pkg) for pkg in ("cmi-trainer", "torch", "pytorch-lightning")},
        "folds": [r.to_dict() for r in folds],
    }
