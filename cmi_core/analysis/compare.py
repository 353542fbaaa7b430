"""``cmi compare``: configs side by side over seeds and folds, and each against a baseline.

Reads run directories and sweep directories (``sweep.json`` + one run directory per point)
through the run-directory contract only (:class:`~cmi_core.rundir.reader.RunDir`):
``config.toml``, ``summary.json``, ``oof_predictions.csv`` and ``data_fingerprint.json``, so
runs of other data are refused wherever they sit, and a run counts once. Runs whose configs
differ only in ``trainer.seed`` (and where they ran) form one config. Against the baseline,
scores are paired over (fold, seed): the same validation subjects, the same seed; see
:mod:`cmi_core.analysis.stats` for the interval and the test.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import polars as pl

from cmi_core.analysis.stats import (
    BOOTSTRAP,
    MIN_SUBJECTS_PER_FOLD,
    T_FOLDS,
    PairedResult,
    compare_paired,
    subject_confusions,
)
from cmi_core.common.atomic import atomic_path, check_writable_file, write_text_atomic
from cmi_core.errors import CmiError
from cmi_core.metrics import competition_score
from cmi_core.rundir.layout import SUMMARY_FILE, config_identity
from cmi_core.rundir.reader import RunDir, data_differences
from cmi_core.runs.sweep_plan import SWEEP_FILE, point_title, read_sweep, sweep_points

KEY_COLUMNS = ("sequence_id", "subject", "fold", "gesture", "prediction")
ENSEMBLE_SEPARATOR = "+"
"""Joins the configs of an ensemble's name (``--ensemble``); only a name with it finds one."""


class CompareError(CmiError):
    """Nothing to compare, or runs that cannot be compared."""


@attrs.frozen
class Run:
    """One finished (or partly finished) run directory, as ``cmi compare`` sees it."""

    path: Path
    label: str
    seed: int
    config: dict[str, Any]
    oof: pl.DataFrame
    complete: bool
    weights: list[dict[str, float]] = attrs.field(factory=list)
    """Each finished fold's final effective weights (``weights/<term>``), from ``summary.json``."""


@attrs.frozen
class ConfigStats:
    """One config's runs: OOF score over seeds, fold scores, and the paired result."""

    name: str
    runs: list[str]
    seeds: list[int]
    oof_scores: list[float]
    fold_means: dict[int, float]
    vs_baseline: PairedResult | None
    final_weights: dict[str, list[float]] = attrs.field(factory=dict)
    """Each term's final weight in every finished (fold, seed), for ``--weights``."""

    @property
    def oof_mean(self) -> float:
        return float(np.mean(self.oof_scores)) if self.oof_scores else math.nan

    @property
    def oof_sd(self) -> float:
        return _sd(self.oof_scores)

    def weight_stats(self) -> dict[str, tuple[float, float]]:
        """Each term's final weight, mean and sd over the (fold, seed) pairs that recorded it."""
        return {t: (float(np.mean(v)), _sd(v)) for t, v in self.final_weights.items()}


@attrs.frozen
class Comparison:
    baseline: str
    configs: list[ConfigStats]


# -- reading ---------------------------------------------------------------------------------


def collect_runs(paths: Sequence[Path]) -> list[Run]:
    """Every run under the given run or sweep directories (a sweep's unstarted points skipped);
    a directory named twice, or inside a sweep also named, counts once."""
    found: dict[Path, Run] = {}
    for path in map(Path, paths):
        for run in _runs_under(path):
            found.setdefault(run.path.resolve(), run)
    if not found:
        raise CompareError("no finished runs to compare (no fold has finished yet)")
    return list(found.values())


def _runs_under(path: Path) -> list[Run]:
    sweep = read_sweep(path)
    if sweep is not None:
        return [
            _read_run(RunDir(path / p["name"]), _point_name(p), p["seed"])
            for p in sweep_points(path, sweep)
            if RunDir(path / p["name"]).has_results()
        ]
    if RunDir(path).has_results():
        return [_read_run(RunDir(path), path.name, None)]
    raise CompareError(
        f"{path}: neither a run directory with results ({SUMMARY_FILE}) nor a sweep ({SWEEP_FILE})"
    )


def _read_run(run_dir: RunDir, label: str, seed: int | None) -> Run:
    config = run_dir.flat_config()
    summary, records = run_dir.summary_and_records()
    return Run(
        path=run_dir.path,
        label=label,
        seed=int(config.get("trainer.seed", 0)) if seed is None else seed,
        config=config,
        oof=run_dir.oof().select(KEY_COLUMNS),
        complete=bool(summary.get("complete", False)),
        weights=[record.weights for record in records.values()],
    )


def check_comparable(runs: Sequence[Run]) -> None:
    """All runs must share data and folds: the same data fingerprints (else data settings),
    the same ``[cv]`` and the same sequence->fold."""
    first = runs[0]
    for run in runs[1:]:
        differing = data_differences(RunDir(first.path), RunDir(run.path))
        if differing:
            raise CompareError(
                f"{first.path} and {run.path} use different data or folds "
                f"({', '.join(differing)} differ); compare runs of the same data and cv settings"
            )
    reference = pl.concat([run.oof.select(KEY_COLUMNS[:4]) for run in runs]).unique()
    clash = reference.group_by("sequence_id").len().filter(pl.col("len") > 1)
    if len(clash):
        raise CompareError(
            f"the runs assign sequence {clash['sequence_id'][0]} to different folds, subjects "
            "or gestures: they were trained on different data or folds"
        )


def group_configs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs that differ only in seed (and where they ran) under one name, in input order; two
    runs of one config at one seed (a copied run or sweep) are refused, not counted twice."""
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(config_identity(run.config), []).append(run)
    for members in groups.values():
        _check_one_run_per_seed(members)
    named: dict[str, list[Run]] = {}
    for members in groups.values():
        name = members[0].label
        if name in named:  # two sweeps with the same grid labels, or runs named alike
            name = f"{members[0].path.parent.name}/{name}"
        named[name] = members
    return named


def _point_name(point: Mapping[str, Any]) -> str:
    """A sweep point's config name: its grid values as ``key=value`` (``max_len=96``, not a
    bare ``96`` that another sweep's ``channels=96`` would share); a ``sweep.json`` written
    before points recorded their values keeps its label."""
    return point_title(point["values"]) if point.get("values") else point["label"]


def find_config(names: Iterable[str], given: str, option: str = "--baseline") -> str:
    """The config ``given`` (to ``option``) names: its whole name, or the shortest part of it
    that no other config shares, as ``key=value`` or bare values (``none``, ``max_len=96``);
    an ensemble's (``a + b``) only by parts joined by ``+``."""
    names = list(names)
    if given in names:
        return given
    wanted = given.split()
    found = [
        name
        for name in names
        if all(_names_part(name, w) for w in wanted)
        and (ENSEMBLE_SEPARATOR in wanted) == (ENSEMBLE_SEPARATOR in name.split())
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise CompareError(
            f"{option} {given}: ambiguous, it names {len(found)} configs: "
            f"{', '.join(repr(n) for n in found)}; give more of one (e.g. {found[0]!r})"
        )
    raise CompareError(f"{option} {given}: no such config; the configs are: {', '.join(names)}")


def _names_part(name: str, part: str) -> bool:
    """Whether ``part`` is one ``key=value`` of a config name, or the value of one."""
    return any(part in (word, word.partition("=")[2]) for word in name.split())


def _check_one_run_per_seed(members: Sequence[Run]) -> None:
    seen: dict[int, Run] = {}
    for run in members:
        first = seen.setdefault(run.seed, run)
        if first is not run:
            raise CompareError(
                f"{first.path} and {run.path} are the same config at the same seed "
                f"(trainer.seed = {run.seed}): a copy of one run would count twice; give each "
                "run once"
            )


# -- statistics ------------------------------------------------------------------------------


def compare(paths: Sequence[Path], baseline: str | None = None, *, seed: int = 0) -> Comparison:
    """Read, check and compare; ``baseline`` defaults to the first config."""
    groups = read_groups(paths)
    return compare_groups(groups, pick_baseline(groups, baseline), seed=seed)


def read_groups(paths: Sequence[Path]) -> dict[str, list[Run]]:
    """The runs under ``paths``, checked comparable, grouped by config over seeds."""
    runs = collect_runs(paths)
    check_comparable(runs)
    return group_configs(runs)


def pick_baseline(names: Iterable[str], baseline: str | None) -> str:
    """The config ``--baseline`` names, or the first config."""
    return find_config(names, baseline) if baseline else next(iter(names))


def compare_groups(
    groups: Mapping[str, Sequence[Run]], baseline: str, *, seed: int = 0
) -> Comparison:
    """Each group of runs (one config over seeds) against the ``baseline`` group: the
    statistics of :func:`compare`, for callers that build the groups themselves
    (``bench/bench_baselines.py`` adds a classical method's out-of-fold predictions)."""
    subjects = _fold_of_subject(run for members in groups.values() for run in members)
    stats = [
        _config_stats(name, members, groups[baseline] if name != baseline else None, subjects, seed)
        for name, members in groups.items()
    ]
    return Comparison(baseline, stats)


def _config_stats(
    name: str,
    runs: Sequence[Run],
    baseline: Sequence[Run] | None,
    fold_of_subject: Mapping[str, int],
    seed: int,
) -> ConfigStats:
    per_fold: dict[int, list[float]] = {}
    for run in runs:
        for k, rows in _by_fold(run).items():
            per_fold.setdefault(k, []).append(_score(rows))
    final_weights: dict[str, list[float]] = {}
    for fold_weights in (w for run in runs for w in run.weights):
        for term, weight in fold_weights.items():
            final_weights.setdefault(term, []).append(weight)
    return ConfigStats(
        name=name,
        runs=[str(run.path) for run in runs],
        seeds=[run.seed for run in runs],
        oof_scores=[_score(run.oof) for run in runs if run.complete],
        fold_means={k: float(np.mean(v)) for k, v in sorted(per_fold.items())},
        vs_baseline=None if baseline is None else _paired(runs, baseline, fold_of_subject, seed),
        final_weights=final_weights,
    )


def _paired(
    runs: Sequence[Run], baseline: Sequence[Run], fold_of_subject: Mapping[str, int], seed: int
) -> PairedResult | None:
    """Pairs (fold, seed) finished by both configs -> per-subject confusions -> statistics."""
    base = {(k, run.seed): rows for run in baseline for k, rows in _by_fold(run).items()}
    mine = {(k, run.seed): rows for run in runs for k, rows in _by_fold(run).items()}
    pairs = sorted(base.keys() & mine.keys())
    if not pairs:
        return None
    order = sorted(fold_of_subject)

    def confusions(table: Mapping[tuple[int, int], pl.DataFrame]) -> np.ndarray:
        return np.stack(
            [
                subject_confusions(r["subject"], r["gesture"], r["prediction"], order)
                for r in (table[pair] for pair in pairs)
            ]
        )

    folds = np.array([fold_of_subject[s] for s in order])
    pair_folds = np.array([fold for fold, _ in pairs])
    return compare_paired(confusions(mine), confusions(base), folds, pair_folds, seed=seed)


def _fold_of_subject(runs: Iterable[Run]) -> dict[str, int]:
    rows = pl.concat([run.oof.select("subject", "fold") for run in runs]).unique()
    return dict(zip(rows["subject"], rows["fold"], strict=True))


def _by_fold(run: Run) -> dict[int, pl.DataFrame]:
    return {k[0]: rows for k, rows in run.oof.partition_by("fold", as_dict=True).items()}


def _score(rows: pl.DataFrame) -> float:
    return competition_score(list(rows["gesture"]), list(rows["prediction"]))["cmi_score"]


# -- output ----------------------------------------------------------------------------------


def as_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One flat record per config (the ``--csv`` rows and the ``--json`` configs)."""
    rows = []
    for c in comparison.configs:
        row: dict[str, Any] = {
            "config": c.name,
            "baseline": c.name == comparison.baseline,
            "n_runs": len(c.runs),
            "seeds": c.seeds,
            "n_complete": len(c.oof_scores),
            "oof_mean": c.oof_mean,
            "oof_sd": c.oof_sd,
            "oof_scores": c.oof_scores,
            **{f"fold_{k}": v for k, v in c.fold_means.items()},
            **{f"weight_{t}": mean for t, (mean, _) in c.weight_stats().items()},
        }
        if c.vs_baseline is not None:
            p = c.vs_baseline
            row.update(
                n_pairs=p.n,
                n_subjects=p.n_subjects,
                n_folds=p.n_folds,
                diff_mean=p.mean_diff,
                diff_ci_low=p.ci_low,
                diff_ci_high=p.ci_high,
                interval=p.interval,
                p_value=p.p_value,
                wins=p.wins,
                ties=p.ties,
                losses=p.losses,
                flags=list(p.flags),
            )
        row["runs"] = c.runs
        rows.append(row)
    return rows


def format_table(comparison: Comparison) -> str:
    """The printed table: OOF mean ± sd over seeds, fold means, and the paired result with what
    stands behind it (subjects, pairs, which interval) and the flags that temper it."""
    folds = sorted({k for c in comparison.configs for k in c.fold_means})
    width = max(len("config"), *(len(c.name) for c in comparison.configs)) + 2
    head = f"{'config':<{width}}{'runs':>4}  {'OOF mean ± sd':<17}"
    head += "".join(f"{'fold ' + str(k):>8}" for k in folds)
    diff_head = f"diff vs {comparison.baseline} [95% CI]"
    diff_width = max(len(diff_head), len("+0.0000 [+0.0000, +0.0000]"))
    head += f"  {diff_head:<{diff_width}}  {'interval':<9}{'subj':>4} {'pairs':>5}  {'p':>6}  W/T/L"
    head += "  flags"
    lines = [head, "-" * len(head)]
    for c in comparison.configs:
        line = f"{c.name:<{width}}{len(c.runs):>4}  {_num(c.oof_mean)} ± {_num(c.oof_sd)}  "
        line += "".join(f"{_num(c.fold_means.get(k, math.nan)):>8}" for k in folds)
        if c.name == comparison.baseline:
            line += "  (baseline)"
        elif c.vs_baseline is None:
            line += "  no (fold, seed) pair in common with the baseline"
        else:
            line += "  " + _paired_cells(c.vs_baseline, diff_width)
        lines.append(line.rstrip())
    lines.append(
        "OOF: out-of-fold score of each complete run, mean ± sd over seeds (-: too few complete "
        "runs); diff: mean paired difference over (fold, seed) pairs; CI: paired bootstrap over "
        f"validation subjects (interval {BOOTSTRAP}), or with fewer than {MIN_SUBJECTS_PER_FOLD} "
        f"subjects in a fold a t-interval over the folds' mean differences ({T_FOLDS}); subj, "
        "pairs: validation subjects and (fold, seed) pairs behind it; p: Wilcoxon signed-rank; "
        "W/T/L: pairs won/tied/lost against the baseline; flags: few-subjects (no bootstrap), "
        "disagree (the CI and p < 0.05 disagree about a difference: trust neither alone)"
    )
    return "\n".join(lines)


def format_weights(comparison: Comparison) -> str:
    """Each config's final effective weight per term (``weights/<term>`` at the end of each
    fold), mean ± sd over its finished (fold, seed) pairs: what a learned weighting settled on."""
    terms = list(dict.fromkeys(t for c in comparison.configs for t in c.final_weights))
    if not terms:
        return "final weights: no run recorded any"
    width = max(len("config"), *(len(c.name) for c in comparison.configs)) + 2
    cell = max(15, *(len(t) + 2 for t in terms))
    head = f"{'config':<{width}}" + "".join(f"{t:>{cell}}" for t in terms)
    lines = ["final weights (mean ± sd over folds x seeds)", head, "-" * len(head)]
    for c in comparison.configs:
        stats = c.weight_stats()
        texts = [_weight_cell(*stats[t]) if t in stats else "-" for t in terms]
        lines.append(f"{c.name:<{width}}" + "".join(f"{text:>{cell}}" for text in texts))
    return "\n".join(lines)


def _paired_cells(p: PairedResult, diff_width: int) -> str:
    """The paired columns of one row (``[-, -]``: no interval can be made from one fold)."""
    interval = "[-, -]" if math.isnan(p.ci_low) else f"[{p.ci_low:+.4f}, {p.ci_high:+.4f}]"
    diff = f"{p.mean_diff:+.4f} {interval}"
    return (
        f"{diff:<{diff_width}}  {p.interval:<9}{p.n_subjects:>4} {p.n:>5}  {p.p_value:6.3f}"
        f"  {p.wins}/{p.ties}/{p.losses}  {','.join(p.flags)}"
    )


def check_outputs(csv_file: Path | None, json_file: Path | None, plot: Path | None) -> None:
    """Refuse an output that cannot be written, or a plot of an unknown image type, before
    anything is read or printed."""
    for path, argument in ((csv_file, "--csv"), (json_file, "--json"), (plot, "--plot")):
        if path is not None:
            check_writable_file(path, argument)
    if plot is not None:
        _plot_format(plot)


def _plot_format(path: Path) -> str:
    """The image type of ``--plot``, by its suffix (none: PNG)."""
    from matplotlib.backend_bases import FigureCanvasBase

    kind = Path(path).suffix.lower().removeprefix(".") or "png"
    known = FigureCanvasBase.get_supported_filetypes()
    if kind not in known:
        raise CompareError(
            f"--plot {path}: unknown image type .{kind}; use one of "
            f"{', '.join('.' + k for k in sorted(known))}"
        )
    return kind


def write_csv(comparison: Comparison, path: Path) -> None:
    rows = as_rows(comparison)
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})


def write_json(comparison: Comparison, path: Path) -> None:
    payload = {"baseline": comparison.baseline, "configs": as_rows(comparison)}
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


def write_plot(comparison: Comparison, path: Path) -> None:
    """Left: each run's OOF score and the mean ± sd per config; right: the paired difference
    against the baseline with its 95 % interval."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 0.6 * len(comparison.configs) + 2), layout="constrained")
    scores, diffs = figure.subplots(1, 2, sharey=True)
    for y, c in enumerate(comparison.configs):
        scores.plot(c.oof_scores, [y] * len(c.oof_scores), "o", color="0.6")
        if c.oof_scores:
            scores.errorbar(c.oof_mean, y, xerr=np.nan_to_num(c.oof_sd), fmt="D", color="C0")
        if c.vs_baseline is not None:
            p = c.vs_baseline
            err = [[p.mean_diff - p.ci_low], [p.ci_high - p.mean_diff]]
            diffs.errorbar(p.mean_diff, y, xerr=err, fmt="D", color="C1", capsize=4)
    diffs.axvline(0.0, color="0.3", linewidth=0.8)
    names = [c.name.replace(" ", "\n") for c in comparison.configs]  # one grid key a line
    scores.set_yticks(range(len(comparison.configs)), names)
    scores.invert_yaxis()
    scores.set_xlabel("OOF cmi_score (runs; mean ± sd over seeds)")
    diffs.set_xlabel(f"paired difference vs {comparison.baseline} (95% bootstrap CI)")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=_plot_format(path), dpi=100)


# -- helpers ---------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A score, or ``-`` where there is none (an sd needs two complete runs, a mean one)."""
    return f"{'-':>6}" if math.isnan(value) else f"{value:.4f}"


def _sd(values: Sequence[float]) -> float:
    """The sample standard deviation (``nan`` below two values): every ``sd`` of the tables."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _weight_cell(mean: float, sd: float) -> str:
    return f"{mean:.3f} ± {'-' if math.isnan(sd) else f'{sd:.3f}'}"


def _csv_value(value: Any) -> Any:
    return ";".join(map(str, value)) if isinstance(value, list) else value
