"""Ensemble weights chosen on out-of-fold predictions, nested within the folds.

Choosing weights on the same OOF predictions that then score the ensemble overfits the score:
with a handful of runs and ~500 sequences a fold, the best of a few hundred weightings gains a
little by chance alone. So the weights that score fold ``k`` are chosen on the other folds'
OOF rows only, and the nested score (each fold scored with weights that never saw its labels)
is the honest estimate; the weights chosen on all folds are the ones to predict with.

The search is a grid over the simplex in steps of ``1 / steps`` with every run weighted at
least one step, scored by the competition score of the argmax of the weighted mean
probabilities, the quantity that is reported. The score is a step function of the weights, so
a gradient method has nothing to follow; a grid is exact at its resolution and deterministic.
Ties go to the weights nearest equal weighting, the choice with the least to unlearn.
"""

from __future__ import annotations

import itertools
import math

import attrs
import numpy as np

from cmi_core.analysis.ensemble import EnsembleInputs, oof_score
from cmi_core.errors import RunError

MAX_GRID = 5000
"""Most weightings one search scores (3 runs at 10 steps: 36; 4 runs: 84; 6 runs: 126)."""


def simplex_grid(n_runs: int, steps: int) -> np.ndarray:
    """Every weighting ``[m, n_runs]`` with components in multiples of ``1 / steps``, each at
    least one step, summing to 1; the equal weighting first where the grid holds it."""
    if steps < n_runs:
        raise RunError(f"--weight-steps {steps}: at least one step per run ({n_runs} runs)")
    size = math.comb(steps - 1, n_runs - 1)  # compositions of steps into n_runs parts
    if size > MAX_GRID:
        raise RunError(
            f"{size} weightings for {n_runs} runs at --weight-steps {steps}; "
            f"lower it (at most {MAX_GRID})"
        )
    points = [
        (*cuts, steps - sum(cuts))
        for cuts in itertools.product(range(1, steps - n_runs + 2), repeat=n_runs - 1)
        if sum(cuts) < steps
    ]
    grid = np.array(points, dtype=np.float64) / steps
    distance = np.abs(grid - 1.0 / n_runs).sum(axis=1)
    return grid[np.argsort(distance, kind="stable")]


def best_weights(gestures: list[str], probs: list[np.ndarray], grid: np.ndarray) -> np.ndarray:
    """The weighting of ``grid`` whose ensemble scores highest on these rows (the first of the
    best, so the nearest to equal weighting)."""
    scores = [
        oof_score(gestures, sum(w * p for w, p in zip(weights, probs, strict=True)))
        for weights in grid
    ]
    return grid[int(np.argmax(scores))]


@attrs.frozen
class NestedWeights:
    """The nested OOF score, the equal-weight score, each fold's weights (chosen on the other
    folds) and the weights chosen on all folds."""

    names: list[str]
    equal: float
    nested: float
    per_fold: dict[int, list[float]]
    overall: list[float]

    def table(self) -> str:
        width = max(len("all folds"), *(len(name) for name in self.names))
        lines = [
            f"nested OOF cmi_score {self.nested:.4f} (weights of fold k chosen on the other "
            f"folds); equal weights {self.equal:.4f}",
            f"{'weights':<{width}}  " + "  ".join(f"fold {k}" for k in self.per_fold),
        ]
        for i, name in enumerate(self.names):
            cells = "  ".join(f"{w[i]:6.2f}" for w in self.per_fold.values())
            lines.append(f"{name:<{width}}  {cells}")
        weights = ",".join(f"{w:g}" for w in self.overall)
        lines.append(f"chosen on all folds, to predict with: --weights {weights}")
        return "\n".join(lines)


def nested_weights(inputs: EnsembleInputs, steps: int = 10) -> NestedWeights:
    """Weights per outer fold on the other folds' rows, the nested score they give, and the
    weights on all rows."""
    if len(inputs.probs) < 2:
        raise RunError("choosing ensemble weights needs at least two runs")
    grid = simplex_grid(len(inputs.probs), steps)
    gestures = inputs.frame["gesture"].to_list()
    folds = inputs.frame["fold"].to_numpy()
    if len(np.unique(folds)) < 2:
        raise RunError("nested weights need the OOF rows of at least two folds")
    mixed = np.zeros_like(inputs.probs[0])
    per_fold: dict[int, list[float]] = {}
    for k in np.unique(folds):
        inner = folds != k
        weights = best_weights(
            [g for g, keep in zip(gestures, inner, strict=True) if keep],
            [p[inner] for p in inputs.probs],
            grid,
        )
        per_fold[int(k)] = [float(w) for w in weights]
        mixed[~inner] = sum(w * p[~inner] for w, p in zip(weights, inputs.probs, strict=True))
    equal = sum(inputs.probs) / len(inputs.probs)
    return NestedWeights(
        names=inputs.names,
        equal=oof_score(gestures, equal),
        nested=oof_score(gestures, mixed),
        per_fold=per_fold,
        overall=[float(w) for w in best_weights(gestures, inputs.probs, grid)],
    )
