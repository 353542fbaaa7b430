"""Every file of a finished run directory (DESIGN section 7), read back and cross-checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from cmi_core.config import config_to_dict, load_config
from cmi_core.data.schema import GESTURES
from cmi_core.data.source import load_data
from cmi_core.metrics import competition_score
from tests.run.conftest import tiny_config

TERMS = ("multiclass", "binary", "nine_class", "kl")
SCORES = ("cmi_score", "binary_f1", "macro_f1")


@pytest.fixture(scope="module")
def summary(finished_run: Path) -> dict:
    return json.loads((finished_run / "summary.json").read_text())


@pytest.fixture(scope="module")
def oof(finished_run: Path) -> pl.DataFrame:
    return pl.read_csv(finished_run / "oof_predictions.csv")


def test_run_directory_holds_the_contract_files(finished_run: Path) -> None:
    names = {p.name for p in finished_run.iterdir()}
    assert {"config.toml", "summary.json", "oof_predictions.csv", "fold_0", "fold_1"} <= names
    for k in (0, 1):
        fold = finished_run / f"fold_{k}"
        assert (fold / "best.pt").is_file() and (fold / "last.ckpt").is_file()
        assert list(fold.glob("events.out.tfevents.*")), "no TensorBoard event file"
        assert (fold / "csv" / "metrics.csv").is_file()
    assert not list(finished_run.rglob("*.tmp")), "a temporary file was left behind"


def test_config_toml_is_the_resolved_config(finished_run: Path, run_cache: Path) -> None:
    stored = load_config(finished_run / "config.toml")
    assert config_to_dict(stored) == config_to_dict(tiny_config(run_cache))


def test_oof_predictions_cover_every_sequence_once(oof: pl.DataFrame) -> None:
    assert oof.columns == ["sequence_id", "subject", "fold", "gesture", "prediction", *GESTURES]
    assert oof["sequence_id"].n_unique() == len(oof)
    assert set(oof["fold"]) == {0, 1}
    folds_per_subject = oof.group_by("subject").agg(pl.col("fold").n_unique())["fold"]
    assert folds_per_subject.max() == 1, "a subject is in two folds"
    probs = oof.select(GESTURES).to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert list(oof["prediction"]) == [GESTURES[i] for i in probs.argmax(axis=1)]
    assert set(oof["gesture"]) <= set(GESTURES)


def test_summary_scores_are_the_metric_of_the_oof_file(summary: dict, oof: pl.DataFrame) -> None:
    overall = competition_score(list(oof["gesture"]), list(oof["prediction"]))
    assert {key: summary[key] for key in SCORES} == pytest.approx(overall)
    assert summary["n_sequences"] == len(oof)
    assert summary["complete"] is True
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    for record in summary["folds"]:
        rows = oof.filter(pl.col("fold") == record["fold"])
        fold_score = competition_score(list(rows["gesture"]), list(rows["prediction"]))
        assert {key: record[key] for key in SCORES} == pytest.approx(fold_score)
        assert record["n_val"] == len(rows)
        assert record["best_epoch"] in (0, 1)
        assert record["epochs_trained"] == 2
        assert record["wall_time_s"] > 0
        assert tuple(record["weights"]) == TERMS
        assert tuple(record["weighting"]) == tuple(f"s_{t}" for t in TERMS)
        # uncertainty: effective weight exp(-s) of the final raw value s
        for term in TERMS:
            s = record["weighting"][f"s_{term}"]
            assert record["weights"][term] == pytest.approx(np.exp(-s), rel=1e-5)


def test_best_checkpoint_loads_weights_only_and_reproduces_the_oof_rows(
    finished_run: Path, run_cache: Path, oof: pl.DataFrame, summary: dict
) -> None:
    from cmi_core.data.folds import assign_folds
    from cmi_core.train import assemble
    from cmi_core.train.oof import predict_probs

    cfg = tiny_config(run_cache)
    data = load_data(cfg)
    fold_of = assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    for k in (0, 1):
        saved = torch.load(finished_run / f"fold_{k}" / "best.pt", weights_only=True)
        assert saved["fold"] == k
        assert saved["config"] == config_to_dict(cfg)
        assert saved["feature_names"] == list(data.feature_names)
        assert saved["in_channels"] == len(data.feature_names)
        assert saved["epoch"] == summary["folds"][k]["best_epoch"]
        model = assemble.build_model(cfg, saved["in_channels"])
        model.load_state_dict(saved["state_dict"])
        val_idx = np.flatnonzero(fold_of == k)
        _, val_loader = assemble.make_loaders(cfg, data, val_idx, val_idx)
        probs = predict_probs(model, val_loader)
        rows = oof.filter(pl.col("fold") == k).sort("sequence_id")
        order = np.argsort(data.sequence_ids[val_idx])
        assert list(rows["sequence_id"]) == list(data.sequence_ids[val_idx][order])
        np.testing.assert_allclose(rows.select(GESTURES).to_numpy(), probs[order], atol=1e-6)


def test_last_checkpoint_loads_weights_only(finished_run: Path) -> None:
    ckpt = torch.load(finished_run / "fold_0" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1
    assert {"BestWeights", "FoldClock"} <= set(ckpt["callbacks"])


def test_tensorboard_events_hold_the_flat_tags_charts_and_hparams(
    finished_run: Path,
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    fold = finished_run / "fold_0"
    events = EventAccumulator(str(fold), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {f"loss/{t}" for t in TERMS} | {f"weights/{t}" for t in TERMS}
    expected |= {f"weighting/s_{t}" for t in TERMS}
    expected |= {"loss/total", "lr", "val/cmi_score", "val/binary_f1", "val/macro_f1"}
    assert expected <= scalars, sorted(expected - scalars)
    assert len(events.Scalars("weights/multiclass")) == 6  # 3 steps x 2 epochs, every step
    best = torch.load(fold / "best.pt", weights_only=True)["cmi_score"]
    assert events.Scalars("hparams/cmi_score")[-1].value == pytest.approx(best)
    assert events.Tags()["images"] == ["val/confusion"]

    layout = layout_pb2.Layout()
    layout.ParseFromString(events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["learned weights (effective)"] == [r"^weights/"]
    assert charts["losses (raw, unweighted)"] == [r"^loss/"]
    hparams = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams
    assert b"hparams/cmi_score" in hparams["_hparams_/experiment"]
    assert b"optimizer.lr" in hparams["_hparams_/experiment"]


def test_csv_logger_writes_the_same_tags(finished_run: Path) -> None:
    metrics = pl.read_csv(finished_run / "fold_1" / "csv" / "metrics.csv")
    assert {"loss/total", "weights/kl", "val/cmi_score", "hparams/cmi_score"} <= set(
        metrics.columns
    )


def test_default_run_dir_is_the_config_name_and_a_timestamp(run_cache: Path) -> None:
    from cmi_core.runs.run import default_run_dir

    path = default_run_dir(tiny_config(run_cache))
    assert path.parent == Path("runs")
    assert re.fullmatch(r"tiny-\d{8}-\d{6}", path.name)
