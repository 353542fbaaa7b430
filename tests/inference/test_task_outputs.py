"""``Predictor.predict_outputs``: the gesture probabilities plus one entry per prediction-time
task head (``composite``), none for training-only tasks (``orientation``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cmi_core.data.schema import COMPOSITE_CLASSES, GESTURES
from cmi_core.predict.predictor import Predictor
from cmi_core.tags import task_metric_tag, weight_tag
from tests.inference.conftest import _data_dir
from tests.inference.gateway import gateway_calls
from tests.run.conftest import tiny_config

NAMES = ["multiclass", "binary", "nine_class", "kl", "orientation", "composite"]


@pytest.fixture(scope="module")
def multitask_run(run_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-fold tiny run with the orientation and composite tasks, under ``uncertainty``."""
    from cmi_core.runs.run import run_experiment

    cfg = tiny_config(run_cache, cv={"folds": [0]}, loss={"tasks": {"names": NAMES}})
    run_dir = tmp_path_factory.mktemp("multitask") / "run"
    run_experiment(cfg, run_dir, progress=False)
    return run_dir, _data_dir(cfg)


def test_prediction_time_tasks_are_returned_beside_the_gesture(multitask_run) -> None:
    run_dir, data_dir = multitask_run
    _, frame, demographics = next(gateway_calls(data_dir, "test", seed=3))
    predictor = Predictor.from_run(run_dir)
    outputs = predictor.predict_outputs(frame, demographics)
    assert set(outputs) == {"gesture", "composite"}
    np.testing.assert_array_equal(outputs["gesture"], predictor.predict_proba(frame, demographics))
    assert outputs["gesture"].shape == (len(GESTURES),)
    assert outputs["composite"].shape == (len(COMPOSITE_CLASSES),)
    assert outputs["composite"].sum() == pytest.approx(1.0, abs=1e-5)


def test_a_run_without_prediction_tasks_returns_the_gesture_only(tiny_run) -> None:
    run_dir, data_dir = tiny_run
    _, frame, demographics = next(gateway_calls(data_dir, "test", seed=3))
    assert set(Predictor.from_run(run_dir).predict_outputs(frame, demographics)) == {"gesture"}


def test_the_run_logs_a_weight_and_a_metric_per_task(multitask_run) -> None:
    run_dir, _ = multitask_run
    header = (run_dir / "fold_0/csv/metrics.csv").read_text().splitlines()[0].split(",")
    for name in NAMES:
        assert weight_tag(name) in header, name
    assert task_metric_tag("orientation", "accuracy") in header
    assert task_metric_tag("composite", "accuracy") in header


def test_the_training_files_give_every_sequence_its_auxiliary_targets(run_cache: Path) -> None:
    from cmi_core.data.dataset import auxiliary_labels
    from cmi_core.data.source import load_data

    data = load_data(tiny_config(run_cache))
    orientation, composite = auxiliary_labels(data)
    assert (orientation >= 0).all() and (composite >= 0).all()
    for k in range(len(data)):  # the composite class names the sequence's own labels
        assert COMPOSITE_CLASSES[composite[k]][:2] == (
            data.orientations[k],
            GESTURES[data.labels[k]],
        )
