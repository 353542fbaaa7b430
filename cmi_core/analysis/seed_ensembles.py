"""Ensembles of configs as one more config of ``cmi compare``: one ensemble per seed.

An ensemble of configs A and B is judged like a config over seeds when each seed has its own
ensemble: A's run at seed s mixed with B's run at seed s is the ensemble's run at seed s. Its
(fold, seed) scores then pair with the baseline's like any config's, so the interval and the
test of :mod:`cmi_core.analysis.stats` say whether the ensemble beats the baseline, not one
lucky mix. The mix is the weighted mean of the members' out-of-fold probabilities, as
``cmi ensemble`` and ``cmi predict`` mix runs: equal weights, or with ``fit`` the weights
``cmi ensemble --fit-weights`` chooses for each fold on the other folds' rows (nested, so the
score stays out-of-fold).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from cmi_core.analysis.compare import (
    ENSEMBLE_SEPARATOR,
    KEY_COLUMNS,
    CompareError,
    Run,
    find_config,
)
from cmi_core.analysis.ensemble import load_ensemble_inputs
from cmi_core.analysis.fit_weights import nested_fit
from cmi_core.data.schema import GESTURES


def add_ensembles(
    groups: Mapping[str, Sequence[Run]], specs: Sequence[str], *, fit: bool
) -> dict[str, list[Run]]:
    """``groups`` with one more group per ``--ensemble`` spec (config names joined by ``+``);
    the same configs twice, in any order, are refused."""
    added = {name: list(runs) for name, runs in groups.items()}
    seen: dict[frozenset[str], str] = {}
    for spec in specs:
        names = member_names(groups, spec)
        twin = seen.get(frozenset(names))
        if twin is not None:
            raise CompareError(f"--ensemble {spec}: the same configs as --ensemble {twin}")
        seen[frozenset(names)] = spec
        title, runs = ensemble_runs(groups, names, fit=fit)
        added[title] = runs
    return added


def member_names(groups: Mapping[str, Sequence[Run]], spec: str) -> list[str]:
    """The configs ``spec`` joins by ``+`` (each named as for ``--baseline``), at least 2."""
    names = [
        find_config(groups, part.strip(), option="--ensemble")
        for part in spec.split(ENSEMBLE_SEPARATOR)
    ]
    if len(set(names)) < 2:
        raise CompareError(f"--ensemble {spec}: name at least 2 different configs, joined by +")
    return names


def ensemble_runs(
    groups: Mapping[str, Sequence[Run]], names: Sequence[str], *, fit: bool
) -> tuple[str, list[Run]]:
    """The ensemble of the configs ``names``, titled ``"a + b"``: one run per seed that every
    member has."""
    title = f" {ENSEMBLE_SEPARATOR} ".join(names)
    by_seed = [{run.seed: run for run in groups[name]} for name in names]
    seeds = sorted(set.intersection(*(set(members) for members in by_seed)))
    if not seeds:
        raise CompareError(f"--ensemble {title}: its configs have no seed in common")
    return title, [_mixed(title, [m[seed] for m in by_seed], seed, fit=fit) for seed in seeds]


def _mixed(title: str, members: Sequence[Run], seed: int, *, fit: bool) -> Run:
    """The members' runs at one seed mixed into the ensemble's run at that seed."""
    inputs = load_ensemble_inputs([run.path for run in members])
    frame = inputs.frame
    gestures, folds = frame["gesture"].to_list(), frame["fold"].to_numpy()
    mixed = nested_fit(inputs.probs, gestures, folds).mixed if fit else inputs.mixed
    oof = frame.with_columns(pl.Series("prediction", [GESTURES[i] for i in mixed.argmax(axis=1)]))
    return Run(
        path=Path(title) / f"seed{seed}",
        label=title,
        seed=seed,
        config={"ensemble": [str(run.path) for run in members], "fit_weights": fit},
        oof=oof.select(KEY_COLUMNS),
        complete=all(run.complete for run in members),
    )
