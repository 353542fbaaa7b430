"""Ensemble weights of runs (``--weights``): parsed, checked and normalised the same way for
``cmi predict`` and the OOF score of ``cmi ensemble``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmi_core.errors import RunError


def parse_weights(text: str) -> list[float]:
    """``"2,1,1"`` -> ``[2.0, 1.0, 1.0]`` (the ``--weights`` option)."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise RunError(f"--weights {text}: expected comma-separated numbers, e.g. 2,1,1") from None


def normalized_weights(weights: Sequence[float] | None, n_runs: int) -> np.ndarray:
    """One weight per run, summing to 1 (equal when ``weights`` is ``None``)."""
    if n_runs == 0:
        raise RunError("no run directories given")
    if weights is None:
        return np.full(n_runs, 1.0 / n_runs)
    values = np.asarray(weights, dtype=np.float64)
    if len(values) != n_runs:
        raise RunError(f"{len(values)} weights given for {n_runs} runs; give one per run")
    if not np.isfinite(values).all() or (values <= 0).any():
        raise RunError(f"weights must be positive numbers, got {list(weights)}")
    values = values / values.max()  # the sum of large weights (1e308,1e308) would overflow
    return values / values.sum()
