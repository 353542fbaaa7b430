"""Predict with a trained run: a fold ensemble behind the Kaggle `predict(sequence, demographics)`.

Raw rows become model input through the training code itself (``sequences_from_frames`` and
``pad_or_truncate``), so a prediction cannot drift from what the run validated on. Checkpoints
are read with ``weights_only=True``: a run directory copied from elsewhere cannot execute code.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor
from tqdm.auto import tqdm

from cmi_core.assemble import build_model
from cmi_core.config import Config, apply_overrides, config_from_dict, load_config
from cmi_core.data.dataset import pad_or_truncate
from cmi_core.data.features import feature_names
from cmi_core.data.io import SequenceSet, load_test, sequences_from_frames
from cmi_core.data.schema import GESTURES
from cmi_core.errors import DataError, RunError
from cmi_core.rundir import BEST_FILE, CONFIG_FILE

CHECKPOINT_KEYS = frozenset({"state_dict", "config", "feature_names", "in_channels", "fold"})
_FOLD_DIR = re.compile(r"^fold_(\d+)$")
# Where the training data lived and what logged the run do not matter here, and on the
# inference machine (a Kaggle notebook) the data.dir of the training machine does not exist
# and a logger plugin may not be installed: neutralise them so the config still loads.
_INFERENCE_OVERRIDES = ('data.source="synthetic"', "logging.loggers=[]", "logging.options={}")


# -- loading ---------------------------------------------------------------------------------


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a slim fold checkpoint; anything that would need unpickling code is refused."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        pickled = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if pickled:
            raise RunError(
                f"{path}: refused: the file holds a pickled object ({pickled.group(1)}); "
                "only weights-only checkpoints load"
            ) from None
        reason = re.search(r"WeightsUnpickler error: *\n*(.+)", str(exc))
        detail = reason.group(1).strip() if reason else _first_line(exc)
        raise RunError(f"{path}: not a readable checkpoint ({detail})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise RunError(f"{path}: not a readable checkpoint ({_first_line(exc)})") from None
    missing = CHECKPOINT_KEYS - set(ckpt) if isinstance(ckpt, dict) else CHECKPOINT_KEYS
    if missing:
        raise RunError(f"{path}: not a cmi fold checkpoint (missing {', '.join(sorted(missing))})")
    return ckpt


def fold_checkpoints(run_dir: Path, folds: Sequence[int] | None = None) -> dict[int, Path]:
    """``{fold: fold_<k>/best.pt}`` of a run, restricted to ``folds`` when given."""
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: run directory not found")
    found = {
        int(match.group(1)): path / BEST_FILE
        for path in run_dir.iterdir()
        if (match := _FOLD_DIR.match(path.name)) and (path / BEST_FILE).is_file()
    }
    if not found:
        raise RunError(f"{run_dir}: no fold checkpoints (expected fold_<k>/{BEST_FILE})")
    if folds is None:
        return dict(sorted(found.items()))
    if not folds:
        raise RunError(f"{run_dir}: no folds requested (available: {sorted(found)})")
    absent = [k for k in folds if k not in found]
    if absent:
        raise RunError(
            f"{run_dir}: no checkpoint for fold(s) {absent} (available: {sorted(found)})"
        )
    return {k: found[k] for k in folds}


def run_config(run_dir: Path) -> Config:
    """The run's resolved ``config.toml``, loaded without needing the training data."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {CONFIG_FILE} (not a run directory)")
    return load_config(path, _INFERENCE_OVERRIDES)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _stored_config(path: Path, ckpt: dict[str, Any]) -> Config:
    raw = dict(ckpt["config"])
    apply_overrides(raw, _INFERENCE_OVERRIDES)
    return config_from_dict(raw, f"{path}: config")


def _check_compatible(path: Path, ckpt: dict[str, Any], cfg: Config) -> None:
    """The checkpoint must come from a config with the same input pipeline and model."""
    stored = _stored_config(path, ckpt)
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


def _load_weights(path: Path, model: torch.nn.Module, state: dict[str, Tensor]) -> None:
    """``load_state_dict(strict=True)``, with torch's multi-line report cut to one line."""
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    shapes = sorted(k for k in set(ours) & set(state) if ours[k].shape != state[k].shape)
    problems = [
        f"{label} {keys[0]}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape of", shapes))
        if keys
    ]
    if problems:
        raise RunError(
            f"{path}: weights do not fit the model of the run's config.toml: {'; '.join(problems)}"
        )
    model.load_state_dict(state, strict=True)


# -- the ensembles ---------------------------------------------------------------------------


class FoldEnsemble:
    """The fold models of one run; its probabilities are the mean of the folds' softmax."""

    def __init__(
        self,
        cfg: Config,
        names: Sequence[str],
        models: Sequence[torch.nn.Module],
        folds: Sequence[int],
        device: str = "cpu",
    ) -> None:
        self.cfg = cfg
        self.feature_names = tuple(names)
        self.models = [model.to(device).eval() for model in models]
        self.folds = tuple(folds)
        self.device = torch.device(device)

    @classmethod
    def load(
        cls, run_dir: Path, folds: Sequence[int] | None = None, device: str = "cpu"
    ) -> FoldEnsemble:
        run_dir = Path(run_dir)
        paths = fold_checkpoints(run_dir, folds)
        cfg = run_config(run_dir)
        names = feature_names(cfg.data.features)
        models = []
        for path in paths.values():
            ckpt = load_checkpoint(path)
            _check_compatible(path, ckpt, cfg)
            model = build_model(cfg, len(names))
            _load_weights(path, model, ckpt["state_dict"])
            models.append(model)
        return cls(cfg, names, models, list(paths), device)

    @property
    def max_len(self) -> int:
        return self.cfg.data.max_len

    @torch.inference_mode()
    def proba(self, x: Tensor, mask: Tensor, demographics: Tensor) -> Tensor:
        """``[B, 18]`` fold-averaged class probabilities."""
        total = None
        for model in self.models:
            probs = torch.softmax(model(x, mask, demographics)["multiclass"].float(), dim=-1)
            total = probs if total is None else total + probs
        return total / len(self.models)


class Predictor:
    """Averages the fold ensembles of one or more runs that share one feature pipeline."""

    def __init__(self, ensembles: Sequence[FoldEnsemble]) -> None:
        features = {ensemble.cfg.data.features for ensemble in ensembles}
        names = {ensemble.feature_names for ensemble in ensembles}
        if len(features) != 1 or len(names) != 1:
            raise RunError("the runs of an ensemble must use the same [data.features] settings")
        self.ensembles = list(ensembles)
        self.features = features.pop()
        self.feature_names = names.pop()

    @classmethod
    def from_run(
        cls, run_dir: Path, folds: Sequence[int] | None = None, device: str = "cpu"
    ) -> Predictor:
        """Every fold of ``run_dir`` (or only ``folds``), loaded weights-only."""
        return cls([FoldEnsemble.load(Path(run_dir), folds, device)])

    @classmethod
    def from_runs(cls, run_dirs: Sequence[Path], device: str = "cpu") -> Predictor:
        """Several runs: each run's fold mean counts once in the average."""
        if not run_dirs:
            raise RunError("no run directories given")
        return cls([FoldEnsemble.load(Path(run_dir), None, device) for run_dir in run_dirs])

    def predict(self, sequence: pl.DataFrame, demographics: pl.DataFrame) -> str:
        """The Kaggle server's call: one sequence's rows and its subject's demographics row."""
        return GESTURES[int(np.argmax(self.predict_proba(sequence, demographics)))]

    def predict_proba(self, sequence: pl.DataFrame, demographics: pl.DataFrame) -> np.ndarray:
        """``[18]`` class probabilities in ``GESTURES`` order for one sequence."""
        data = sequences_from_frames(sequence, demographics, self.features, source="<sequence>")
        if len(data.sequence_ids) != 1:
            raise DataError(f"<sequence>: expected one sequence_id, got {len(data.sequence_ids)}")
        return self.predict_batch(data)[0]

    def predict_batch(
        self, data: SequenceSet, batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """``[N, 18]`` probabilities for every sequence of ``data``, ``batch_size`` at a time.

        Batches hold sequences of similar length (sorted), so little padding is computed.
        """
        if tuple(data.feature_names) != self.feature_names:
            raise RunError(
                f"data features {list(data.feature_names)} do not match the run's "
                f"{list(self.feature_names)}"
            )
        order = np.argsort([len(v) for v in data.valid], kind="stable")
        out = np.empty((len(order), len(GESTURES)), dtype=np.float32)
        with tqdm(total=len(order), desc="predict", unit="seq", disable=not progress) as bar:
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                out[indices] = self._batch_proba(data, indices)
                bar.update(len(indices))
        return out

    def _batch_proba(self, data: SequenceSet, indices: np.ndarray) -> np.ndarray:
        total = None
        for ensemble in self.ensembles:
            probs = ensemble.proba(*_model_inputs(data, indices, ensemble.max_len, ensemble.device))
            total = probs if total is None else total + probs
        return (total / len(self.ensembles)).cpu().numpy()


def _model_inputs(
    data: SequenceSet, indices: np.ndarray, max_len: int, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """``x``, ``mask`` and ``demographics`` as in training, minus unused left padding.

    Every sequence is padded exactly as in training; then the leading frames that are padding
    in *every* sequence of the batch are cut off. The backbone contract (padding never moves
    an embedding, checked by the contract kit) makes that free of effect, and a short
    sequence costs its own length instead of ``max_len``. A sequence without any real frame
    is left alone: the backbone then uses all ``max_len`` frames, as it did in training.
    """
    padded = [pad_or_truncate(data.features[i], data.valid[i], max_len) for i in indices]
    x = np.stack([p[0] for p in padded])
    mask = np.stack([p[1] for p in padded])
    first = int(mask.argmax(axis=1).min()) if mask.any(axis=1).all() else 0
    x_t, mask_t, demographics = (
        torch.from_numpy(np.ascontiguousarray(a)).to(device)
        for a in (x[:, first:], mask[:, first:], data.demographics[indices])
    )
    return x_t, mask_t, demographics


# -- whole test files ------------------------------------------------------------------------

_WRITERS = {".csv": pl.DataFrame.write_csv, ".parquet": pl.DataFrame.write_parquet}


def predict_file(run_dir: Path, data_dir: Path, out: Path, *, batch_size: int = 256) -> Path:
    """Predict ``test.csv`` + ``test_demographics.csv`` of ``data_dir`` into ``out``.

    Writes ``sequence_id,gesture`` as CSV or Parquet, chosen by the suffix of ``out``.
    """
    out = Path(out)
    writer = _WRITERS.get(out.suffix.lower())
    if writer is None:
        raise RunError(f"{out}: unknown output format; use a .csv or .parquet file name")
    predictor = Predictor.from_run(Path(run_dir))
    data = load_test(Path(data_dir), predictor.features)
    probs = predictor.predict_batch(data, batch_size, progress=True)
    frame = pl.DataFrame(
        {
            "sequence_id": [str(s) for s in data.sequence_ids],
            "gesture": [GESTURES[i] for i in probs.argmax(axis=1)],
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    writer(frame, out)
    return out
