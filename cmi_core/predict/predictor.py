"""Predict with trained runs: fold ensembles behind the Kaggle `predict(sequence, demographics)`.

Raw rows become model input through the training code itself (``sequences_from_frames`` and
``pad_or_truncate``), so a prediction cannot drift from what the run validated on. Several runs
ensemble with weights, each fed from the same raw rows through its own feature set and
``max_len``. The fold models are loaded by :mod:`cmi_core.predict.fold_models` (weights only).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor
from tqdm.auto import tqdm

from cmi_core.builders import prediction_tasks
from cmi_core.common.atomic import atomic_path
from cmi_core.config import Config, FeatureConfig
from cmi_core.data.dataset import pad_or_truncate
from cmi_core.data.features import feature_names
from cmi_core.data.reader import load_test, sequences_from_frames
from cmi_core.data.schema import GESTURES
from cmi_core.data.sequences import SequenceSet
from cmi_core.errors import DataError, RunError
from cmi_core.postprocess import Postprocessor, Protocol
from cmi_core.predict.fold_models import (
    check_compatible,
    fold_checkpoints,
    inference_model,
    load_checkpoint,
    load_weights,
    run_config,
)
from cmi_core.predict.gateway import arrival_order
from cmi_core.predict.postprocessing import build_postprocessor, replay, run_protocol
from cmi_core.predict.weights import normalized_weights
from cmi_core.rundir.reader import RunDir

# -- the ensembles ---------------------------------------------------------------------------


class FoldEnsemble:
    """The fold models of one run; its probabilities are the mean of the folds' softmax, in
    ``GESTURES`` order."""

    def __init__(
        self,
        cfg: Config,
        models: Sequence[torch.nn.Module],
        folds: Sequence[int],
        device: str = "cpu",
        gestures: Sequence[str] = GESTURES,
    ) -> None:
        self.cfg = cfg
        self.models = [model.to(device).eval() for model in models]
        self.folds = tuple(folds)
        self.device = torch.device(device)
        order = [list(gestures).index(g) for g in GESTURES]
        self._order = None if order == list(range(len(GESTURES))) else order

    @classmethod
    def load(
        cls,
        run_dir: Path,
        folds: Sequence[int] | None = None,
        device: str = "cpu",
        plugin_modules: Sequence[str] = (),
    ) -> FoldEnsemble:
        """The run's finished folds; ``plugin_modules``: the local plugin modules the caller
        allows to be imported (never those the run directory names by itself)."""
        run_dir = Path(run_dir)
        paths = fold_checkpoints(run_dir, folds)
        cfg = run_config(run_dir, plugin_modules)
        gestures = RunDir(run_dir).gestures()
        names = feature_names(cfg.data.features)
        models = []
        for path in paths.values():
            ckpt = load_checkpoint(path)
            check_compatible(path, ckpt, cfg)
            model = inference_model(cfg, len(names))
            load_weights(path, model, ckpt["state_dict"])
            models.append(model)
        return cls(cfg, models, list(paths), device, gestures)

    @property
    def features(self) -> FeatureConfig:
        return self.cfg.data.features

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
        mean = total / len(self.models)
        return mean if self._order is None else mean[:, self._order]

    @property
    def output_tasks(self) -> tuple[str, ...]:
        """The prediction-time tasks besides the gesture whose heads this run trained."""
        return prediction_tasks(self.cfg.loss, modules=self.cfg.plugins.modules)

    @torch.inference_mode()
    def task_proba(self, task: str, x: Tensor, mask: Tensor, demographics: Tensor) -> Tensor:
        """``[B, classes]`` fold-averaged softmax of a prediction-time task's head."""
        probs = [torch.softmax(m(x, mask, demographics)[task].float(), dim=-1) for m in self.models]
        return torch.stack(probs).mean(dim=0)


Inputs = Mapping[FeatureConfig, SequenceSet]
"""The same sequences prepared once per feature set of an ensemble (IMU-only, thm/ToF, ...)."""


class Predictor:
    """A weighted average of the fold ensembles of one or more runs.

    The runs may differ in features, ``max_len`` and model: each run gets its own inputs, made
    from the same raw rows by the training pipeline of its feature set.

    ``by_sensors`` routes each sequence to the runs made for its sensors: one with thermopile/ToF
    readings to the thm/ToF runs, an IMU-only one (about half the Kaggle test set) to the
    IMU-only runs, each group with its own weights renormalised. A thm/ToF run is weaker on
    IMU-only input than a run trained on the IMU alone (docs/kaggle.md).

    ``postprocess`` names a post-processor plugin (``subject_assignment``, ``subject_prior``)
    with ``postprocess_options`` checked by its options class; ``protocol`` holds the counts it
    relies on (``from_run``/``from_runs`` count them from the run's training sequences). Its
    per-subject state lives as long as the predictor: every ``predict`` call of a Kaggle
    session adds to it, so one predictor must serve the whole session.
    """

    def __init__(
        self,
        ensembles: Sequence[FoldEnsemble],
        weights: Sequence[float] | None = None,
        *,
        by_sensors: bool = False,
        postprocess: str | None = None,
        postprocess_options: Mapping[str, Any] | None = None,
        protocol: Protocol | None = None,
        plugin_modules: Sequence[str] = (),
    ) -> None:
        self.ensembles = list(ensembles)
        self.weights = normalized_weights(weights, len(self.ensembles))
        self.feature_sets = tuple(dict.fromkeys(e.features for e in self.ensembles))
        self._uses_thm_tof = np.array([e.features.thm_tof for e in self.ensembles])
        if by_sensors and self._uses_thm_tof.all() == self._uses_thm_tof.any():
            raise RunError(
                "routing by sensors needs both kinds of run: IMU-only runs and runs with "
                "data.features.thm_tof = true"
            )
        self.by_sensors = by_sensors
        self.postprocessor = _postprocessor(
            postprocess, postprocess_options, protocol, self.output_names, plugin_modules
        )

    @classmethod
    def from_run(
        cls,
        run_dir: Path,
        folds: Sequence[int] | None = None,
        device: str = "cpu",
        *,
        plugin_modules: Sequence[str] = (),
        postprocess: str | None = None,
        postprocess_options: Mapping[str, Any] | None = None,
    ) -> Predictor:
        """Every fold of the complete run ``run_dir`` (or only ``folds``), loaded weights-only.

        ``plugin_modules``: local plugin modules to import (a backbone of your own); a run
        directory's ``[plugins] modules`` are never imported unless named here.
        ``postprocess``: a post-processor (see the class doc), its protocol counted from the
        run's training sequences."""
        return cls(
            [FoldEnsemble.load(Path(run_dir), folds, device, plugin_modules)],
            postprocess=postprocess,
            postprocess_options=postprocess_options,
            protocol=run_protocol(Path(run_dir)) if postprocess else None,
            plugin_modules=plugin_modules,
        )

    @classmethod
    def from_runs(
        cls,
        run_dirs: Sequence[Path],
        weights: Sequence[float] | None = None,
        device: str = "cpu",
        *,
        by_sensors: bool = False,
        plugin_modules: Sequence[str] = (),
        postprocess: str | None = None,
        postprocess_options: Mapping[str, Any] | None = None,
    ) -> Predictor:
        """Several complete runs: each run's fold mean counts with its weight (default equal);
        ``plugin_modules`` and ``postprocess`` as for :meth:`from_run` (the protocol is counted
        from the first run's training sequences)."""
        normalized_weights(weights, len(run_dirs))  # bad weights fail before any loading
        protocol = run_protocol(Path(run_dirs[0])) if postprocess else None
        ensembles = [
            FoldEnsemble.load(Path(run_dir), None, device, plugin_modules) for run_dir in run_dirs
        ]
        return cls(
            ensembles,
            weights,
            by_sensors=by_sensors,
            postprocess=postprocess,
            postprocess_options=postprocess_options,
            protocol=protocol,
            plugin_modules=plugin_modules,
        )

    @property
    def features(self) -> FeatureConfig:
        """The feature set of a one-feature-set predictor (a mixed one has several)."""
        if len(self.feature_sets) != 1:
            raise RunError("the runs of this ensemble use several feature sets: see feature_sets")
        return self.feature_sets[0]

    @property
    def output_names(self) -> tuple[str, ...]:
        """The outputs :meth:`predict_outputs` returns (what a post-processor may read)."""
        return ("gesture", *dict.fromkeys(t for e in self.ensembles for t in e.output_tasks))

    def predict(self, sequence: pl.DataFrame, demographics: pl.DataFrame) -> str:
        """The Kaggle server's call: one sequence's rows and its subject's demographics row.

        With a post-processor, the answer is its answer given the sequence's outputs and its
        ``subject`` column, and the subject's state carries over to the next call."""
        if self.postprocessor is None:
            return GESTURES[int(np.argmax(self.predict_proba(sequence, demographics)))]
        outputs = self.predict_outputs(sequence, demographics)
        return self.postprocessor(outputs, str(sequence["subject"][0]))

    def predict_proba(self, sequence: pl.DataFrame, demographics: pl.DataFrame) -> np.ndarray:
        """``[18]`` class probabilities in ``GESTURES`` order for one sequence."""
        return self.predict_batch(self._one_sequence(sequence, demographics))[0]

    def predict_outputs(
        self, sequence: pl.DataFrame, demographics: pl.DataFrame
    ) -> dict[str, np.ndarray]:
        """One sequence's outputs: ``"gesture"``, the ``[18]`` probabilities of
        :meth:`predict_proba`, and one key per prediction-time task head (``TaskSpec.predicts``,
        e.g. ``"composite"``) with its probabilities, averaged over the runs that trained it
        (their weights renormalised among them)."""
        inputs = self._one_sequence(sequence, demographics)
        outputs = {"gesture": self.predict_batch(inputs)[0]}
        indices = np.zeros(1, dtype=np.int64)
        weights = self._run_weights(inputs, indices)[:, 0]
        tasks = dict.fromkeys(t for e in self.ensembles for t in e.output_tasks)
        for task in tasks:
            total, weight_sum = None, 0.0
            for ensemble, weight in zip(self.ensembles, weights, strict=True):
                if weight <= 0 or task not in ensemble.output_tasks:
                    continue
                batch = _model_inputs(
                    inputs[ensemble.features], indices, ensemble.max_len, ensemble.device
                )
                probs = ensemble.task_proba(task, *batch)[0].cpu().numpy() * weight
                total = probs if total is None else total + probs
                weight_sum += float(weight)
            if total is not None:
                outputs[task] = (total / weight_sum).astype(np.float32)
        return outputs

    def _one_sequence(
        self, sequence: pl.DataFrame, demographics: pl.DataFrame
    ) -> dict[FeatureConfig, SequenceSet]:
        """One sequence's rows as the inputs of every feature set; refused unless one."""
        inputs = {
            features: sequences_from_frames(sequence, demographics, features, source="<sequence>")
            for features in self.feature_sets
        }
        n = len(next(iter(inputs.values())).sequence_ids)
        if n != 1:
            raise DataError(f"<sequence>: expected one sequence_id, got {n}")
        return inputs

    def load_test(self, data_dir: Path) -> dict[FeatureConfig, SequenceSet]:
        """``test.csv`` + ``test_demographics.csv`` parsed once per feature set."""
        return {features: load_test(Path(data_dir), features) for features in self.feature_sets}

    def predict_batch(
        self, inputs: Inputs, batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """``[N, 18]`` probabilities for every sequence of ``inputs``, ``batch_size`` at a time.

        Batches hold sequences of similar length (sorted), so little padding is computed.
        """
        if not (isinstance(batch_size, int) and batch_size >= 1):
            # a step of 0 is a ValueError of range(); a negative one leaves every row unwritten
            raise RunError(f"batch size must be a positive integer, got {batch_size!r}")
        absent = [features for features in self.feature_sets if features not in inputs]
        if absent:
            raise RunError(
                f"no inputs for the feature set {absent[0]}; make them with "
                "Predictor.load_test or sequences_from_frames"
            )
        first = inputs[self.feature_sets[0]]
        order = np.argsort([len(v) for v in first.valid], kind="stable")
        out = np.empty((len(order), len(GESTURES)), dtype=np.float32)
        with tqdm(total=len(order), desc="predict", unit="seq", disable=not progress) as bar:
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                out[indices] = self._batch_proba(inputs, indices)
                bar.update(len(indices))
        return out

    def _batch_proba(self, inputs: Inputs, indices: np.ndarray) -> np.ndarray:
        batches: dict[tuple[FeatureConfig, int, torch.device], tuple[Tensor, Tensor, Tensor]] = {}
        total = None
        for ensemble, weight in zip(
            self.ensembles, self._run_weights(inputs, indices), strict=True
        ):
            if not weight.any():
                continue  # routed away from every sequence of the batch: no model work
            key = (ensemble.features, ensemble.max_len, ensemble.device)
            if key not in batches:
                batches[key] = _model_inputs(inputs[key[0]], indices, *key[1:])
            probs = ensemble.proba(*batches[key])
            probs = probs * torch.as_tensor(weight, dtype=probs.dtype, device=probs.device)[:, None]
            total = probs if total is None else total + probs
        return total.cpu().numpy()

    def _run_weights(self, inputs: Inputs, indices: np.ndarray) -> np.ndarray:
        """``[runs, len(indices)]``: each run's weight for each sequence of the batch."""
        weights = np.repeat(self.weights[:, None], len(indices), axis=1)
        if not self.by_sensors:
            return weights
        thm_tof = next(features for features in self.feature_sets if features.thm_tof)
        present = has_thm_tof(inputs[thm_tof], indices)
        weights *= self._uses_thm_tof[:, None] == present[None, :]
        return weights / weights.sum(axis=0, keepdims=True)


def _postprocessor(
    name: str | None,
    options: Mapping[str, Any] | None,
    protocol: Protocol | None,
    available: Sequence[str],
    plugin_modules: Sequence[str],
) -> Postprocessor | None:
    """The post-processor ``name`` (None: none), refused in one line without its protocol."""
    if name is None:
        if options:
            raise RunError("postprocess options given without a post-processor (--postprocess)")
        return None
    if protocol is None:
        raise RunError(
            f"postprocess {name} needs the protocol counts: build the predictor with "
            "Predictor.from_run(s), or give protocol="
        )
    return build_postprocessor(
        name, protocol, options, available=available, plugin_modules=plugin_modules
    )


def has_thm_tof(data: SequenceSet, indices: np.ndarray) -> np.ndarray:
    """``[len(indices)]`` bool: which sequences have any thermopile/ToF reading."""
    present = data.feature_names.index("thm_tof_present")
    return np.array([bool(data.features[i][:, present].any()) for i in indices])


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


def predict_file(
    run_dirs: Sequence[Path],
    data_dir: Path,
    out: Path,
    *,
    weights: Sequence[float] | None = None,
    folds: Sequence[int] | None = None,
    batch_size: int = 256,
    by_sensors: bool = False,
    plugin_modules: Sequence[str] = (),
    postprocess: str | None = None,
    postprocess_options: Mapping[str, Any] | None = None,
    order_seed: int | None = None,
) -> Path:
    """Predict ``test.csv`` + ``test_demographics.csv`` of ``data_dir`` into ``out`` with the
    (weighted) ensemble of ``run_dirs``; ``folds`` picks the folds of a single run;
    ``by_sensors`` routes each sequence to the runs of its sensors (:class:`Predictor`);
    ``plugin_modules``: local plugin modules the user allows to be imported.

    ``postprocess``: the post-processor sees the sequences one at a time in the order of the
    file (sorted ids), or with ``order_seed`` in the gateway's shuffled order for that seed
    (``LocalInferenceServer(predict, seed)``), so a notebook's answers can be reproduced.

    Writes ``sequence_id,gesture`` as CSV or Parquet, chosen by the suffix of ``out``. The
    output place is checked before any work, and the file appears whole or not at all.
    """
    out = Path(out)
    writer = _WRITERS.get(out.suffix.lower())
    if writer is None:
        raise RunError(f"{out}: unknown output format; use a .csv or .parquet file name")
    if folds is not None and len(run_dirs) != 1:
        raise RunError("--folds picks the folds of one run; give a single run directory")
    if order_seed is not None and postprocess is None:
        raise RunError("--order-seed orders the sequences for a post-processor; add --postprocess")
    _check_writable(out)
    post = {"postprocess": postprocess, "postprocess_options": postprocess_options}
    if folds is not None:
        predictor = Predictor.from_run(
            Path(run_dirs[0]), folds, plugin_modules=plugin_modules, **post
        )
    else:
        predictor = Predictor.from_runs(
            [Path(r) for r in run_dirs],
            weights,
            by_sensors=by_sensors,
            plugin_modules=plugin_modules,
            **post,
        )
    inputs = predictor.load_test(Path(data_dir))
    probs = predictor.predict_batch(inputs, batch_size, progress=True)
    data = next(iter(inputs.values()))
    ids = [str(s) for s in data.sequence_ids]
    answers = probs.argmax(axis=1)
    if predictor.postprocessor is not None:
        position = {sequence_id: i for i, sequence_id in enumerate(ids)}
        arrival = ids if order_seed is None else arrival_order(ids, order_seed)
        order = [position[sequence_id] for sequence_id in arrival]
        answers = replay(predictor.postprocessor, {"gesture": probs}, data.subjects, order)
    frame = pl.DataFrame({"sequence_id": ids, "gesture": [GESTURES[i] for i in answers]})
    with atomic_path(out) as tmp:
        writer(frame, tmp)
    return out


def _check_writable(out: Path) -> None:
    """Fail in a second, not after predicting the whole test set, when ``out`` cannot be
    written (a read-only directory, a directory in the way, a full disk)."""
    if out.is_dir():
        raise RunError(f"{out}: is a directory; give a .csv or .parquet file name")
    if out.parent.exists() and not out.parent.is_dir():
        raise RunError(f"{out}: cannot write there ({out.parent} is a file)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}."):
            pass
    except OSError as exc:
        raise RunError(f"{out}: cannot write there ({exc.strerror})") from None
