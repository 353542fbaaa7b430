"""Plots of a run directory (PNG) and its per-fold score table, so a user can look at a run
without starting TensorBoard.

Everything is read back from the run directory's files (``summary.json``,
``oof_predictions.csv``, the fold directories' TensorBoard event files or ``csv/metrics.csv``),
so a report works for a finished run, a run still in progress and one copied from elsewhere.
Figures use matplotlib's object API (no pyplot, no GUI backend).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cmi_core.common.atomic import atomic_path, check_writable_file
from cmi_core.errors import RunError
from cmi_core.rundir.layout import OOF_FILE, REPORT_FILES
from cmi_core.rundir.reader import RunDir
from cmi_core.tags import (
    GRAD_COSINE_PREFIX,
    GRAD_NORM_PREFIX,
    LOSS_PREFIX,
    VAL_SCORE,
    WEIGHTING_PREFIX,
    WEIGHTS_PREFIX,
)
from cmi_core.train.figures import confusion_counts, confusion_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Series = tuple[np.ndarray, np.ndarray]  # (steps, values)


# -- reading ---------------------------------------------------------------------------------


def read_scalars(fold_dir: Path) -> dict[str, Series]:
    """Every scalar a fold logged, ``tag -> (steps, values)``.

    TensorBoard event files are preferred; the csv logger's ``csv/metrics.csv`` is the fallback.
    After a resume, TensorBoard's reader drops the points of the interrupted epoch that were
    logged again, so each step appears once.
    """
    if any(fold_dir.glob("events.out.tfevents.*")):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        accumulator = EventAccumulator(str(fold_dir), size_guidance={"scalars": 0})
        accumulator.Reload()
        return {
            tag: (
                np.array([e.step for e in accumulator.Scalars(tag)], dtype=np.int64),
                np.array([e.value for e in accumulator.Scalars(tag)], dtype=np.float64),
            )
            for tag in accumulator.Tags()["scalars"]
        }
    csv = fold_dir / "csv" / "metrics.csv"
    if csv.is_file():
        import polars as pl

        frame = pl.read_csv(csv)
        scalars = {}
        for column in (c for c in frame.columns if c != "step"):
            rows = frame.select("step", column).drop_nulls()
            if len(rows):
                scalars[column] = (
                    rows["step"].to_numpy().astype(np.int64),
                    rows[column].to_numpy().astype(np.float64),
                )
        return scalars
    return {}


def per_epoch(scalars: Mapping[str, Series], tag: str) -> Series:
    """A validation tag against epochs (Lightning logs ``epoch`` beside every scalar)."""
    steps, values = scalars[tag]
    if "epoch" not in scalars:
        return np.arange(len(values)), values
    epoch_of = dict(zip(*scalars["epoch"], strict=True))
    return np.array([epoch_of.get(s, math.nan) for s in steps]), values


# -- the table -------------------------------------------------------------------------------


def fold_table(run_dir: Path) -> str:
    """Per-fold scores, best epochs, wall times and final learned weights, plus the OOF score."""
    run = RunDir(run_dir)
    summary, folds = run.summary(), list(run.fold_records().values())
    header = f"{'fold':>4}  {'cmi':>6}  {'binary':>6}  {'macro':>6}  {'best ep':>7}  {'time':>7}"
    lines = [header + "  final weights", "-" * (len(header) + 15)]
    for fold in folds:
        weights = ", ".join(f"{t} {w:.3f}" for t, w in fold.weights.items())
        lines.append(
            f"{fold.fold:>4}  {fold.cmi_score:>6.4f}  {fold.binary_f1:>6.4f}  "
            f"{fold.macro_f1:>6.4f}  {fold.best_epoch:>7}  "
            f"{fold.wall_time_s:>6.0f}s  {weights}"
        )
    if folds:
        scores = np.array([f.cmi_score for f in folds])
        lines.append(f"mean  {scores.mean():.4f} ± {scores.std():.4f} over {len(folds)} folds")
    if summary.get("cmi_score") is not None:
        lines.append(
            f" OOF  {summary['cmi_score']:.4f}  (binary F1 {summary['binary_f1']:.4f}, "
            f"macro F1 {summary['macro_f1']:.4f}, {summary['n_sequences']} sequences)"
        )
    if not summary.get("complete", True):
        lines.append("(run incomplete: resume it to train the remaining folds)")
    return "\n".join(lines)


# -- figures ---------------------------------------------------------------------------------


def _fold_grid(n_panels: int, title: str) -> tuple[Figure, list[Any]]:
    from matplotlib.figure import Figure

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    figure = Figure(figsize=(4.6 * cols, 3.3 * rows), layout="constrained")
    figure.suptitle(title)
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    for unused in axes[n_panels:]:
        unused.set_visible(False)
    return figure, axes[:n_panels]


def tag_family_figure(
    scalars_by_fold: Mapping[int, Mapping[str, Series]], prefix: str, title: str, ylabel: str
) -> Figure | None:
    """One panel per fold, one line per tag starting with ``prefix``; None when nothing matches."""
    panels = {
        fold: {tag: s for tag, s in sorted(scalars.items()) if tag.startswith(prefix)}
        for fold, scalars in scalars_by_fold.items()
    }
    panels = {fold: series for fold, series in panels.items() if series}
    if not panels:
        return None
    figure, axes = _fold_grid(len(panels), title)
    for ax, (fold, series) in zip(axes, panels.items(), strict=True):
        for tag, (steps, values) in series.items():
            ax.plot(steps, values, label=tag.removeprefix(prefix), linewidth=1.2)
        ax.set_title(f"fold {fold}")
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return figure


def score_figure(scalars_by_fold: Mapping[int, Mapping[str, Series]]) -> Figure | None:
    """Validation competition score per epoch, one line per fold, the best epoch marked."""
    from matplotlib.figure import Figure

    curves = {
        fold: per_epoch(scalars, VAL_SCORE)
        for fold, scalars in scalars_by_fold.items()
        if VAL_SCORE in scalars
    }
    if not curves:
        return None
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.add_subplot()
    for fold, (epochs, scores) in curves.items():
        (line,) = ax.plot(epochs, scores, marker=".", label=f"fold {fold}")
        best = int(np.nanargmax(scores))
        ax.plot(epochs[best], scores[best], marker="*", markersize=12, color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(VAL_SCORE)
    ax.set_title("Validation competition score (best epoch starred)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def oof_confusion_figure(run_dir: Path) -> Figure:
    """Confusion matrix of the out-of-fold predictions over the 18 gestures (a run with results
    has them: ``oof_predictions.csv`` is written before ``summary.json``)."""
    from cmi_core.data.schema import GESTURES

    oof = RunDir(run_dir).oof()
    index = {g: i for i, g in enumerate(GESTURES)}
    counts = confusion_counts(
        [index[g] for g in oof["gesture"]], [index[g] for g in oof["prediction"]], len(GESTURES)
    )
    return confusion_figure(counts, GESTURES, f"Out-of-fold predictions ({len(oof)} sequences)")


def write_report(run_dir: Path, note: Callable[[str], None] | None = None) -> list[Path]:
    """Write ``weights.png``, ``weighting.png``, ``losses.png``, ``grad_norms.png`` and
    ``grad_cosines.png`` (when gradient statistics were logged), ``val_score.png`` and
    ``confusion.png`` (``rundir.REPORT_FILES``, in that order) into the run directory; returns
    the files written. ``note`` gets one line per plot left out, saying why: a plot that is
    silently missing reads as a run that has nothing to show."""
    run = RunDir(run_dir)
    run.fold_records()  # refuse what is not a run directory (or a damaged one) before plotting
    for name in REPORT_FILES:
        check_writable_file(run.path / name)
    scalars = {fold: read_scalars(path) for fold, path in run.fold_dirs().items()}
    figures = (
        tag_family_figure(scalars, WEIGHTS_PREFIX, "Effective loss weights (weights/*)", "weight"),
        tag_family_figure(
            scalars, WEIGHTING_PREFIX, "Raw learnable weighting parameters (weighting/*)", "value"
        ),
        tag_family_figure(scalars, LOSS_PREFIX, "Raw per-task training losses (loss/*)", "loss"),
        tag_family_figure(
            scalars,
            GRAD_NORM_PREFIX,
            "Task gradient norms on the shared part (grad/norm/*)",
            "norm",
        ),
        tag_family_figure(
            scalars,
            GRAD_COSINE_PREFIX,
            "Pairwise task gradient cosines (grad/cosine/*)",
            "cosine",
        ),
        score_figure(scalars),
        oof_confusion_figure(run.path),
    )
    written = []
    reasons = _left_out_reasons(run, scalars)
    for name, figure in zip(REPORT_FILES, figures, strict=True):
        if figure is not None:
            with atomic_path(run.path / name) as tmp:
                figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight", pad_inches=0.15)
            written.append(run.path / name)
        elif note is not None:
            note(f"left out {name}: {reasons[name]}")
    return written


def _left_out_reasons(run: RunDir, scalars: Mapping[int, Mapping[str, Series]]) -> dict[str, str]:
    """Why each plot of ``REPORT_FILES`` would be empty, for the one the run lacks."""
    logged = {tag for fold in scalars.values() for tag in fold}
    if not scalars:
        step = "no fold directory holds logged scalars (no logger, or no fold started)"
    elif not any(tag.startswith(LOSS_PREFIX) for tag in logged):
        every = _config_value(run, "logging", "log_every_n_steps")
        step = (
            "no per-step scalar was logged: the run had fewer training steps than "
            f"logging.log_every_n_steps = {every}"
        )
    else:
        step = ""
    gradients = step or (
        "no grad/* scalar was logged: only gradient-level strategies, or "
        "loss.weighting.monitor_gradients = true, log them"
    )
    strategy = _config_value(run, "loss", "weighting", "strategy")
    return {
        "weights.png": step or "no weights/* scalar was logged",
        "weighting.png": step or f"strategy {strategy!r} has no learnable parameters to log",
        "losses.png": step or "no loss/* scalar was logged",
        "grad_norms.png": gradients,
        "grad_cosines.png": gradients,
        "val_score.png": f"no {VAL_SCORE} was logged (no validation epoch finished, or no logger)",
        "confusion.png": f"no {OOF_FILE} (no fold finished)",
    }


def _config_value(run: RunDir, *keys: str) -> Any:
    """A value of the run's ``config.toml``, ``"?"`` when it cannot be read (the reason is
    still right without the number)."""
    try:
        value: Any = run.config_table()
        for key in keys:
            value = value[key]
    except (RunError, KeyError, TypeError):
        return "?"
    return value
