"""The fold models of a finished run, loaded for prediction: safely, and only the validated ones.

Which folds: exactly those ``summary.json`` lists as finished, and all the run asked for unless
the caller names some. How: ``torch.load(weights_only=True)``, so a run directory copied from
elsewhere cannot execute code; a damaged file or non-finite weights are refused in one line.
What: the run's backbone and heads, without the training-time loss weighting, whose plugin a
Kaggle notebook need not have installed.
"""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cmi_core.builders import make_backbone
from cmi_core.config import Config, apply_overrides, config_from_dict
from cmi_core.data.features import feature_names
from cmi_core.errors import CmiError, RunError
from cmi_core.rundir.layout import BEST_FILE, CONFIG_FILE, SUMMARY_FILE
from cmi_core.rundir.reader import RunDir, with_trusted_modules
from cmi_core.train.network import CMINetwork, backbone_in_channels, network_for

CHECKPOINT_KEYS = frozenset({"state_dict", "config", "feature_names", "in_channels", "fold"})
WEIGHTING_PREFIX = "weighting."
"""State-dict keys of the training-time loss weighting: prediction neither needs nor loads them."""
# Where the training data lived and what logged the run do not matter here, and on the
# inference machine (a Kaggle notebook) the data.dir of the training machine does not exist
# and a logger plugin may not be installed: neutralise them so the config still loads.
_INFERENCE_OVERRIDES = ('data.source="synthetic"', "logging.loggers=[]", "logging.options={}")


# -- the run directory -----------------------------------------------------------------------


def fold_checkpoints(run_dir: Path, folds: Sequence[int] | None = None) -> dict[int, Path]:
    """``{fold: fold_<k>/best.pt}``: every fold of a complete run, or exactly ``folds``.

    A fold counts once ``summary.json`` lists it (the run writes it after the fold's OOF rows),
    so an interrupted run's unfinished fold, whose ``best.pt`` may hold early weights, is never
    taken silently: the ensemble is the one the run validated, or the one the user names.
    """
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: run directory not found")
    run = RunDir(run_dir)
    if not run.has_results():
        raise RunError(
            f"{run_dir}: no {SUMMARY_FILE}, so no fold is known to be finished "
            "(not a run directory, or the run stopped in its first fold)"
        )
    summary = run.summary()
    finished = run.finished_folds()
    if folds is None:
        unfinished = [k for k in summary.get("folds_requested", finished) if k not in finished]
        if not summary.get("complete", False) or unfinished:
            raise RunError(
                f"{run_dir}: the run is not complete: fold(s) {unfinished} unfinished "
                f"(finished: {finished}); finish it with `cmi run --resume {run_dir}` or "
                "name finished folds with --folds"
            )
        wanted = finished
    else:
        wanted = list(dict.fromkeys(folds))
        if not wanted:
            raise RunError(f"{run_dir}: no folds requested (finished: {finished})")
        absent = [k for k in wanted if k not in finished]
        if absent:
            raise RunError(f"{run_dir}: fold(s) {absent} not finished (finished: {finished})")
    paths = {k: run.fold_dir(k) / BEST_FILE for k in wanted}
    missing = [k for k, path in paths.items() if not path.is_file()]
    if missing:
        raise RunError(
            f"{run_dir}: fold(s) {missing} finished but fold_<k>/{BEST_FILE} is missing; "
            "restore it or name the other folds with --folds"
        )
    return paths


def run_config(run_dir: Path, plugin_modules: Sequence[str] = ()) -> Config:
    """The run's resolved ``config.toml``, loaded without the training data or the weighting
    plugin, importing only the ``plugin_modules`` the caller allows."""
    table = RunDir(run_dir).config_table()
    return inference_config(table, str(run_dir / CONFIG_FILE), plugin_modules)


def inference_config(
    raw: dict[str, Any], source: str, plugin_modules: Sequence[str] = ()
) -> Config:
    """A run directory may come from anywhere: its ``[plugins] modules`` are never imported
    (importing runs a module's code), only those the caller names; a run that needs one of
    its modules gets a one-line error saying how to allow it. ``raw`` is left as it is."""
    plugins = raw.get("plugins")
    named = plugins.get("modules", []) if isinstance(plugins, dict) else []
    raw = with_trusted_modules(copy.deepcopy(raw), plugin_modules)
    apply_overrides(raw, _INFERENCE_OVERRIDES)
    try:
        return config_from_dict(raw, source, resolve_weighting=False, check_paths=False)
    except CmiError as exc:
        withheld = [m for m in named if m not in plugin_modules] if isinstance(named, list) else []
        if not withheld:
            raise
        raise RunError(
            f"{source}: {exc.lines()[0]}; the run names [plugins] modules {withheld}, which "
            "prediction does not import from a run directory: if you trust them, pass them "
            f"explicitly (cmi predict --plugin-module {withheld[0]}, or "
            f"Predictor.from_run(run, plugin_modules={withheld!r}))"
        ) from None


# -- checkpoints -----------------------------------------------------------------------------


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a slim fold checkpoint; refuse anything that would need unpickling code, a
    damaged file, and weights that are not all finite."""
    ckpt = _torch_load(path)
    missing = CHECKPOINT_KEYS - set(ckpt) if isinstance(ckpt, dict) else CHECKPOINT_KEYS
    if missing:
        raise RunError(f"{path}: not a cmi fold checkpoint (missing {', '.join(sorted(missing))})")
    non_finite = [
        key
        for key, value in ckpt["state_dict"].items()
        if isinstance(value, Tensor) and value.is_floating_point() and not value.isfinite().all()
    ]
    if non_finite:
        raise RunError(
            f"{path}: refused: non-finite weights (NaN or Inf) in {_first_of(non_finite)}; "
            "the fold diverged, so retrain it or leave it out with --folds"
        )
    return ckpt


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` whose failures are one line of our own words: torch's
    advice to retry with ``weights_only=False`` would run whatever the file holds."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        pickled = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if pickled:
            raise RunError(
                f"{path}: refused: the file holds a pickled object ({pickled.group(1)}); "
                "only weights-only checkpoints load"
            ) from None
        raise RunError(f"{path}: not a readable checkpoint (damaged pickle data)") from None
    except (RuntimeError, EOFError, OSError) as exc:
        empty = isinstance(exc, EOFError) or (path.is_file() and path.stat().st_size == 0)
        reason = "the file is empty" if empty else "truncated, damaged or not a torch file"
        raise RunError(f"{path}: not a readable checkpoint ({reason})") from None


def _first_of(keys: Sequence[str]) -> str:
    return keys[0] + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")


def _stored_config(path: Path, ckpt: dict[str, Any], plugin_modules: Sequence[str]) -> Config:
    return inference_config(dict(ckpt["config"]), f"{path}: config", plugin_modules)


def check_compatible(path: Path, ckpt: dict[str, Any], cfg: Config) -> None:
    """The checkpoint must come from a config with the same input pipeline and model (its
    plugin modules: those the run's config was allowed)."""
    stored = _stored_config(path, ckpt, cfg.plugins.modules)
    differing = [
        key
        for key, ours, theirs in (
            ("data.features", cfg.data.features, stored.data.features),
            ("data.max_len", cfg.data.max_len, stored.data.max_len),
            ("model", cfg.model, stored.model),
        )
        if ours != theirs
    ]
    if differing:
        raise RunError(
            f"{path}: checkpoint from an incompatible config: {', '.join(differing)} "
            f"differ from the run's config.toml"
        )
    names, expected = tuple(ckpt["feature_names"]), feature_names(cfg.data.features)
    if names != expected or ckpt["in_channels"] != len(expected):
        raise RunError(
            f"{path}: checkpoint features ({len(names)}: {', '.join(names)}) differ from the "
            f"config's ({len(expected)}: {', '.join(expected)})"
        )


def inference_model(cfg: Config, in_channels: int) -> CMINetwork:
    """The run's network, without the training module: the heads and the backbone are all
    that predict, so neither the weighting plugin (a Kaggle notebook need not install the
    strategy a run was trained with) nor an optimizer is built. The config's backbone options
    are used as loaded, not structured again."""
    backbone = make_backbone(
        cfg.model.backbone,
        backbone_in_channels(cfg, in_channels),
        cfg.model.options,
        modules=cfg.plugins.modules,
    )
    return network_for(cfg, backbone)


def load_weights(path: Path, model: torch.nn.Module, state: dict[str, Tensor]) -> None:
    """``load_state_dict(strict=True)`` minus the weighting's values, with torch's multi-line
    report cut to one line."""
    state = {k: v for k, v in state.items() if not k.startswith(WEIGHTING_PREFIX)}
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    shapes = sorted(k for k in set(ours) & set(state) if ours[k].shape != state[k].shape)
    problems = [
        f"{label} {_first_of(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape of", shapes))
        if keys
    ]
    if problems:
        raise RunError(
            f"{path}: weights do not fit the model of the run's config.toml: {'; '.join(problems)}"
        )
    model.load_state_dict(state, strict=True)
