"""``cmi ensemble --fit-weights``: ensemble weights chosen on OOF predictions, nested within the
folds so the score reported for them stays honest.

Members are configs: runs that differ only in ``trainer.seed`` are averaged into one member
(as :func:`~cmi_core.analysis.compare.group_configs` groups them), so weights are per config.
For each outer fold k the weights are chosen on the OOF rows of the other folds only and
applied to fold k's rows; the score of those rows together is the nested OOF score. The
weights chosen on every fold are the ones to predict with (``--weights`` of ``cmi predict``).

The optimiser is a grid over the simplex: every weight a positive multiple of 1/10
(:data:`GRID_STEPS`), the best competition score wins and ties go to the point nearest equal
weights, then to the first in grid order. The score is a step function of the weights (an
argmax), so a gradient method has nothing to follow; a coarse grid is exact on it and
deterministic. Every weight stays positive because ``--weights`` refuses zeros: leave a run
out to drop it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from cmi_core.analysis.ensemble import load_ensemble_inputs, oof_score, weighted_mean
from cmi_core.errors import RunError
from cmi_core.rundir.layout import config_identity
from cmi_core.rundir.reader import RunDir

GRID_STEPS = 10


def simplex_grid(n_members: int) -> np.ndarray:
    """``[points, n_members]`` integer weights, each at least 1, summing to ``GRID_STEPS``."""
    if n_members > GRID_STEPS:
        raise RunError(
            f"--fit-weights: {n_members} configs, at most {GRID_STEPS} (each weight is a "
            f"positive multiple of 1/{GRID_STEPS})"
        )
    bars = itertools.combinations(range(1, GRID_STEPS), n_members - 1)
    return np.array([np.diff([0, *cut, GRID_STEPS]) for cut in bars], dtype=np.int64)


def choose_weights(probs: Sequence[np.ndarray], gestures: Sequence[str]) -> np.ndarray:
    """The grid point (weights summing to 1) whose mixture scores best on these rows."""
    grid = simplex_grid(len(probs))
    scores = [oof_score(gestures, weighted_mean(probs, point / GRID_STEPS)) for point in grid]
    off_equal = ((grid * len(probs) - GRID_STEPS) ** 2).sum(axis=1)  # exact, in integers
    best = min(range(len(grid)), key=lambda i: (-scores[i], off_equal[i], i))
    return grid[best] / GRID_STEPS


@attrs.frozen
class NestedFit:
    """Per outer fold, the weights chosen without its rows; the mixture they give there."""

    folds: list[int]
    fold_weights: list[np.ndarray]
    mixed: np.ndarray


def nested_fit(
    probs: Sequence[np.ndarray], gestures: Sequence[str], folds: np.ndarray
) -> NestedFit:
    """Weights for each fold k chosen on the other folds' rows, applied to fold k's rows."""
    outer = sorted({int(k) for k in folds})
    if len(outer) < 2:
        raise RunError(f"--fit-weights needs OOF rows of at least 2 folds, got folds {outer}")
    labels = np.asarray(gestures, dtype=object)
    mixed = np.zeros_like(probs[0])
    chosen = []
    for k in outer:
        held, rest = folds == k, folds != k
        weights = choose_weights([p[rest] for p in probs], list(labels[rest]))
        mixed[held] = weighted_mean([p[held] for p in probs], weights)
        chosen.append(weights)
    return NestedFit(outer, chosen, mixed)


@attrs.frozen
class FitReport:
    """Each config alone, equal weights, nested fitted weights, and the all-fold weights."""

    members: list[list[str]]
    scores: list[float]
    equal: float
    nested: NestedFit
    nested_score: float
    weights: np.ndarray
    in_sample: float
    run_weights: list[float]
    n_sequences: int

    @property
    def weights_option(self) -> str:
        """The all-fold weights per run, in the order given: ``cmi predict --weights``."""
        return ",".join(f"{w:.6g}" for w in self.run_weights)

    def table(self) -> str:
        names = [
            runs[0] + (f" (+{len(runs) - 1} at other seeds)" if len(runs) > 1 else "")
            for runs in self.members
        ]
        width = max(len("nested fitted weights"), *(len(n) for n in names))
        lines = [f"{'config':<{width}}  oof cmi_score"]
        lines += [f"{n:<{width}}  {s:.4f}" for n, s in zip(names, self.scores, strict=True)]
        lines.append(f"{'equal weights':<{width}}  {self.equal:.4f}")
        lines.append(f"{'nested fitted weights':<{width}}  {self.nested_score:.4f}")
        lines.append(f"({self.n_sequences} out-of-fold sequences)")
        lines.append("weights per config, chosen on the other folds:")
        lines += [
            f"  fold {k}: {_fmt(w)}"
            for k, w in zip(self.nested.folds, self.nested.fold_weights, strict=True)
        ]
        lines.append(
            f"  all folds: {_fmt(self.weights)} (in-sample OOF {self.in_sample:.4f}, optimistic)"
        )
        lines.append(f"cmi predict ... --weights {self.weights_option}")
        return "\n".join(lines)


def _fmt(weights: np.ndarray) -> str:
    return ",".join(f"{w:.2f}" for w in weights)


def _seed_groups(run_dirs: Sequence[Path]) -> list[list[int]]:
    """Indices of the runs of one config (seeds aside), in input order; one config twice at
    one seed is a copy and is refused."""
    groups: dict[tuple[object, ...], list[int]] = {}
    configs = [RunDir(path).flat_config() for path in run_dirs]
    for i, config in enumerate(configs):
        groups.setdefault(config_identity(config), []).append(i)
    for members in groups.values():
        seeds = [configs[i].get("trainer.seed", 0) for i in members]
        for j, seed in enumerate(seeds):
            if seed in seeds[:j]:
                raise RunError(
                    f"{run_dirs[members[j]]}: the same config at the same seed (trainer.seed = "
                    f"{seed}) as {run_dirs[members[seeds.index(seed)]]}; give each run once"
                )
    return list(groups.values())


def fit_weights_report(run_dirs: Sequence[Path]) -> FitReport:
    """Score each config, equal weights and nested fitted weights on the runs' OOF rows."""
    inputs = load_ensemble_inputs(run_dirs)
    groups = _seed_groups(run_dirs)
    if len(groups) < 2:
        raise RunError(
            "--fit-weights needs runs of at least 2 configs (runs differing only in "
            "trainer.seed are one config)"
        )
    probs = [
        weighted_mean([inputs.probs[i] for i in g], np.full(len(g), 1 / len(g))) for g in groups
    ]
    gestures = inputs.frame["gesture"].to_list()
    nested = nested_fit(probs, gestures, inputs.frame["fold"].to_numpy())
    weights = choose_weights(probs, gestures)
    run_weights = [0.0] * len(run_dirs)
    for group, weight in zip(groups, weights, strict=True):
        for i in group:
            run_weights[i] = float(weight) / len(group)
    return FitReport(
        members=[[inputs.names[i] for i in g] for g in groups],
        scores=[oof_score(gestures, p) for p in probs],
        equal=oof_score(gestures, weighted_mean(probs, np.full(len(probs), 1 / len(probs)))),
        nested=nested,
        nested_score=oof_score(gestures, nested.mixed),
        weights=weights,
        in_sample=oof_score(gestures, weighted_mean(probs, weights)),
        run_weights=run_weights,
        n_sequences=len(gestures),
    )
