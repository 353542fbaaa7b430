"""Run ensembles: ``Predictor.from_runs``, ``cmi predict RUN [RUN ...]`` and ``cmi ensemble``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import attrs
import numpy as np
import polars as pl
import pytest
import tomli_w
import torch

from cmi_core.analysis.ensemble import ensemble_report
from cmi_core.cli import main
from cmi_core.config import Config, config_to_dict, config_to_toml
from cmi_core.data.features import feature_names
from cmi_core.data.schema import GESTURES
from cmi_core.errors import RunError
from cmi_core.metrics import competition_score
from cmi_core.predict.fold_models import inference_model, run_config
from cmi_core.predict.predictor import Predictor
from cmi_core.rundir.records import FoldRecord
from tests.inference.gateway import gateway_calls
from tests.inference.test_errors import one_line_error


@pytest.fixture(scope="module")
def sequence(tiny_run) -> tuple[pl.DataFrame, pl.DataFrame]:
    _, frame, demographics = next(gateway_calls(tiny_run[1], "test", seed=3))
    return frame, demographics


def _one_fold_run(run_dir: Path, k: int, out: Path) -> Path:
    """A complete one-fold run cut from a finished run: its config, fold and summary."""
    out.mkdir()
    shutil.copy(run_dir / "config.toml", out)
    shutil.copytree(run_dir / f"fold_{k}", out / f"fold_{k}")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(folds_requested=[k], folds=[f for f in summary["folds"] if f["fold"] == k])
    (out / "summary.json").write_text(json.dumps(summary))
    return out


def _with_max_len(run_dir: Path, max_len: int, out: Path) -> Path:
    """A copy of a run that pads/truncates to ``max_len`` (same weights: the backbone has no
    absolute positions), standing in for a run trained with another ``data.max_len``."""
    shutil.copytree(run_dir, out)
    raw = tomllib.loads((out / "config.toml").read_text())
    raw["data"]["max_len"] = max_len
    (out / "config.toml").write_text(tomli_w.dumps(raw))
    for path in out.glob("fold_*/best.pt"):
        ckpt = torch.load(path, weights_only=True)
        ckpt["config"]["data"]["max_len"] = max_len
        torch.save(ckpt, path)
    return out


def test_an_ensemble_of_runs_averages_each_runs_fold_mean(tiny_run, sequence, tmp_path):
    halves = [_one_fold_run(tiny_run[0], k, tmp_path / f"fold{k}_only") for k in (0, 1)]
    np.testing.assert_allclose(
        Predictor.from_runs(halves).predict_proba(*sequence),
        Predictor.from_run(tiny_run[0]).predict_proba(*sequence),
        atol=1e-6,
    )


def test_weights_scale_each_runs_fold_mean(tiny_run, sequence, tmp_path):
    halves = [_one_fold_run(tiny_run[0], k, tmp_path / f"fold{k}_only") for k in (0, 1)]
    per_fold = [Predictor.from_run(tiny_run[0], folds=[k]).predict_proba(*sequence) for k in (0, 1)]
    weighted = Predictor.from_runs(halves, weights=[3, 1]).predict_proba(*sequence)
    np.testing.assert_allclose(weighted, 0.75 * per_fold[0] + 0.25 * per_fold[1], atol=1e-6)
    assert np.abs(weighted - (per_fold[0] + per_fold[1]) / 2).max() > 1e-6


def test_runs_of_different_features_and_lengths_mix(tiny_run, tiny_thm_tof_run, sequence, tmp_path):
    """Each run gets the inputs of its own feature set and max_len from the same raw rows."""
    short = _with_max_len(tiny_run[0], 12, tmp_path / "short")
    runs = [tiny_run[0], tiny_thm_tof_run[0], short]
    singles = [Predictor.from_run(run).predict_proba(*sequence) for run in runs]
    mixed = Predictor.from_runs(runs, weights=[1, 2, 1])
    assert len(mixed.feature_sets) == 2
    np.testing.assert_allclose(
        mixed.predict_proba(*sequence),
        (singles[0] + 2 * singles[1] + singles[2]) / 4,
        atol=1e-6,
    )
    assert np.abs(singles[0] - singles[2]).max() > 1e-6  # max_len 12 saw fewer frames


def _untrained_run(cfg: Config, out: Path) -> Path:
    """A complete one-fold run of ``cfg``'s model with random weights: a stand-in for a run of
    another architecture, without training one."""
    names = feature_names(cfg.data.features)
    (out / "fold_0").mkdir(parents=True)
    (out / "config.toml").write_text(config_to_toml(cfg))
    torch.manual_seed(0)
    ckpt = {
        "state_dict": inference_model(cfg, len(names)).state_dict(),
        "config": config_to_dict(cfg),
        "feature_names": list(names),
        "in_channels": len(names),
        "fold": 0,
    }
    torch.save(ckpt, out / "fold_0" / "best.pt")
    record = FoldRecord(0, 0.0, 0.0, 0.0, 0, 0, False, 0.0, 0, 0, {}, {})  # never trained
    summary = {"complete": True, "folds_requested": [0], "folds": [record.to_dict()]}
    (out / "summary.json").write_text(json.dumps(summary))
    return out


def test_runs_of_different_models_mix(tiny_run, sequence, tmp_path):
    cfg = run_config(tiny_run[0])
    other = attrs.evolve(
        cfg,
        model=attrs.evolve(cfg.model, demographics=False),  # no demographics branch at all
        data=attrs.evolve(cfg.data, max_len=24),
    )
    runs = [tiny_run[0], _untrained_run(other, tmp_path / "other")]
    singles = [Predictor.from_run(run).predict_proba(*sequence) for run in runs]
    np.testing.assert_allclose(
        Predictor.from_runs(runs).predict_proba(*sequence), (singles[0] + singles[1]) / 2, atol=1e-6
    )
    assert np.abs(singles[0] - singles[1]).max() > 1e-3


def test_a_run_with_its_gestures_in_another_order_is_reordered(tiny_run, sequence, tmp_path):
    run = Path(shutil.copytree(tiny_run[0], tmp_path / "run"))
    oof = pl.read_csv(run / "oof_predictions.csv")
    keys = [c for c in oof.columns if c not in GESTURES]
    swapped = {GESTURES[0]: GESTURES[1], GESTURES[1]: GESTURES[0]}  # the head's order, renamed
    oof.rename(swapped).select(*keys, *[swapped.get(g, g) for g in GESTURES]).write_csv(
        run / "oof_predictions.csv"
    )
    expected = Predictor.from_run(tiny_run[0]).predict_proba(*sequence)[[1, 0, *range(2, 18)]]
    np.testing.assert_allclose(Predictor.from_run(run).predict_proba(*sequence), expected)


def test_runs_whose_gestures_cannot_be_mixed(tiny_run, tmp_path):
    run = Path(shutil.copytree(tiny_run[0], tmp_path / "run"))
    oof = pl.read_csv(run / "oof_predictions.csv")
    oof.rename({GESTURES[3]: "Juggle"}).write_csv(run / "oof_predictions.csv")
    cannot = r"oof_predictions.csv: its gesture list cannot be mixed .*unknown: \['Juggle'\]"
    with one_line_error(RunError, cannot):
        Predictor.from_runs([tiny_run[0], run])
    with one_line_error(RunError, cannot):
        ensemble_report([tiny_run[0], run])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0], "1 weights given for 2 runs; give one per run"),
        ([1.0, 0.0], re.escape("weights must be positive numbers, got [1.0, 0.0]")),
        ([1.0, float("nan")], "weights must be positive numbers"),
    ],
)
def test_bad_weights(tiny_run, weights, message):
    with one_line_error(RunError, message):
        Predictor.from_runs([tiny_run[0], tiny_run[0]], weights=weights)
    with one_line_error(RunError, message):
        ensemble_report([tiny_run[0], tiny_run[0]], weights)
    with one_line_error(RunError, "no run directories given"):
        Predictor.from_runs([])


def test_cli_predicts_with_a_weighted_ensemble(tiny_run, tiny_thm_tof_run, tmp_path):
    run_dir, data_dir = tiny_run
    out = tmp_path / "submission.csv"
    args = ["predict", str(run_dir), str(tiny_thm_tof_run[0]), "--data", str(data_dir)]
    assert main([*args, "--weights", "1,3", "--out", str(out)]) == 0
    predictor = Predictor.from_runs([run_dir, tiny_thm_tof_run[0]], weights=[1, 3])
    expected = {
        sid: predictor.predict(frame, demographics)
        for sid, frame, demographics in gateway_calls(data_dir, "test")
    }
    assert dict(pl.read_csv(out).iter_rows()) == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "1,x"], "error: --weights 1,x: expected comma-separated numbers"),
        (["--folds", "0"], "error: --folds picks the folds of one run; give a single run"),
    ],
)
def test_cli_ensemble_errors(tiny_run, tmp_path, capsys, extra, message):
    out = tmp_path / "submission.csv"
    runs = [str(tiny_run[0])] * 2
    assert main(["predict", *runs, "--data", str(tiny_run[1]), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not out.exists()


# -- cmi ensemble: the OOF score of an ensemble ------------------------------------------------


def disagreeing_run(run_dir: Path, out: Path, seed: int = 0) -> Path:
    """A run over the same sequences and folds whose probabilities disagree with ``run_dir``
    (and with another ``seed``'s)."""
    shutil.copytree(run_dir, out)
    oof = pl.read_csv(out / "oof_predictions.csv")
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(GESTURES)), size=len(oof)).astype(np.float32)
    oof = oof.with_columns(pl.Series(g, probs[:, i]) for i, g in enumerate(GESTURES))
    oof.with_columns(prediction=pl.Series([GESTURES[i] for i in probs.argmax(1)])).write_csv(
        out / "oof_predictions.csv"
    )
    return out


def _score(frame: pl.DataFrame, probs: np.ndarray) -> float:
    return competition_score(frame["gesture"].to_list(), [GESTURES[i] for i in probs.argmax(1)])[
        "cmi_score"
    ]


def test_cmi_ensemble_scores_each_run_and_the_weighted_mean(tiny_run, tmp_path, capsys):
    run_dir = tiny_run[0]
    other = disagreeing_run(run_dir, tmp_path / "other")
    a, b = (pl.read_csv(r / "oof_predictions.csv").sort("sequence_id") for r in (run_dir, other))
    pa, pb = (f.select(GESTURES).to_numpy().astype(np.float64) for f in (a, b))
    expected = _score(a, 0.25 * pa + 0.75 * pb)
    report = ensemble_report([run_dir, other], [1, 3])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert report.scores[0] == pytest.approx(summary["cmi_score"])
    assert report.scores[1] == pytest.approx(_score(b, pb))
    assert report.ensemble == pytest.approx(expected)
    assert report.weights == [0.25, 0.75] and report.n_sequences == len(a)

    assert main(["ensemble", str(run_dir), str(other), "--weights", "1,3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "weight", "oof", "cmi_score"]
    assert lines[1].split() == [str(run_dir), "0.250", f"{report.scores[0]:.4f}"]
    assert lines[3].split() == ["ensemble", "1.000", f"{expected:.4f}"]


def test_cmi_ensemble_needs_the_same_sequences_and_folds(tiny_run, tiny_thm_tof_run, capsys):
    code = main(["ensemble", str(tiny_run[0]), str(tiny_thm_tof_run[0])])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "do not cover the same sequences and folds" in err and "folds [0] against" in err


def test_cmi_ensemble_of_a_directory_without_oof(tiny_run, tmp_path, capsys):
    assert main(["ensemble", str(tiny_run[0]), str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path}: no oof_predictions.csv (not a run directory, or no fold finished)\n"
    )


def test_batch_inputs_must_cover_every_feature_set(tiny_run, tiny_thm_tof_run):
    predictor = Predictor.from_runs([tiny_run[0], tiny_thm_tof_run[0]])
    imu_only = {
        predictor.feature_sets[0]: predictor.load_test(tiny_run[1])[predictor.feature_sets[0]]
    }
    with one_line_error(RunError, "no inputs for the feature set FeatureConfig\\(thm_tof=True"):
        predictor.predict_batch(imu_only)


def cli_without_torch(args: list[str]) -> list[str]:
    """Run ``cmi ARGS`` in a fresh interpreter; its stdout lines, after checking that neither
    torch nor Lightning was imported (OOF scoring is a quick command)."""
    code = (
        "import sys\nfrom cmi_core.cli import main\n"
        f"code = main({args!r})\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[-1] == "HEAVY="
    return lines


def test_cmi_ensemble_does_not_import_torch(tiny_run):
    lines = cli_without_torch(["ensemble", str(tiny_run[0])])
    assert lines[1].split()[0] == str(tiny_run[0])


def _without_thm_tof(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows as an IMU-only device writes them: every thermopile/ToF value empty."""
    sensors = [c for c in frame.columns if c.startswith(("thm_", "tof_"))]
    return frame.with_columns(pl.lit(None, dtype=frame.schema[c]).alias(c) for c in sensors)


def test_by_sensors_sends_each_sequence_to_the_runs_of_its_sensors(
    tiny_run, tiny_thm_tof_run, sequence
):
    frame, demographics = sequence
    imu_only = _without_thm_tof(frame)
    imu, thm = (Predictor.from_run(run[0]) for run in (tiny_run, tiny_thm_tof_run))
    routed = Predictor.from_runs([tiny_run[0], tiny_thm_tof_run[0]], by_sensors=True)
    full_proba = thm.predict_proba(frame, demographics)
    np.testing.assert_allclose(routed.predict_proba(frame, demographics), full_proba, atol=1e-6)
    np.testing.assert_allclose(
        routed.predict_proba(imu_only, demographics),
        imu.predict_proba(imu_only, demographics),
        atol=1e-6,
    )
    assert np.abs(thm.predict_proba(imu_only, demographics) - full_proba).max() > 1e-6


def test_by_sensors_needs_both_kinds_of_run(tiny_run, tmp_path):
    short = _with_max_len(tiny_run[0], 12, tmp_path / "short")
    with one_line_error(RunError, "routing by sensors needs both kinds of run"):
        Predictor.from_runs([tiny_run[0], short], by_sensors=True)


def test_cli_predicts_by_sensors(tiny_run, tiny_thm_tof_run, tmp_path):
    run_dir, data_dir = tiny_run
    out = tmp_path / "submission.csv"
    args = ["predict", str(run_dir), str(tiny_thm_tof_run[0]), "--data", str(data_dir)]
    assert main([*args, "--by-sensors", "--out", str(out)]) == 0
    routed = Predictor.from_runs([run_dir, tiny_thm_tof_run[0]], by_sensors=True)
    calls = list(gateway_calls(data_dir, "test"))
    kinds = {frame.select(pl.col("thm_1").is_not_null().any()).item() for _, frame, _ in calls}
    assert kinds == {True, False}  # the test set has both kinds of sequence, as Kaggle's
    expected = {sid: routed.predict(frame, demographics) for sid, frame, demographics in calls}
    assert dict(pl.read_csv(out).iter_rows()) == expected
