"""Bad runs and bad input: one-line errors naming what is wrong; pickles are never executed."""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomli_w
import torch

from cmi_core.cli import main
from cmi_core.data.schema import GESTURES
from cmi_core.errors import CmiError, DataError, RunError
from cmi_core.predict.predictor import Predictor, predict_file
from tests.inference.gateway import gateway_calls


@contextmanager
def one_line_error(kind: type[CmiError], match: str) -> Iterator[None]:
    with pytest.raises(kind, match=match) as info:
        yield
    assert "\n" not in str(info.value)


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run that a test may damage."""
    return Path(shutil.copytree(tiny_run[0], tmp_path / "run"))


@pytest.fixture(scope="module")
def predictor(tiny_run) -> Predictor:
    return Predictor.from_run(tiny_run[0])


@pytest.fixture(scope="module")
def two_sequences(tiny_run) -> list[tuple[str, pl.DataFrame, pl.DataFrame]]:
    calls = gateway_calls(tiny_run[1], "test")
    first = next(calls)
    second = next(c for c in calls if c[2]["subject"][0] != first[2]["subject"][0])
    return [first, second]


# -- the run directory -----------------------------------------------------------------------


def test_missing_run_directory(tmp_path):
    with one_line_error(RunError, "run directory not found"):
        Predictor.from_run(tmp_path / "nowhere")


def test_run_directory_without_summary(tiny_run, tmp_path):
    shutil.copy(tiny_run[0] / "config.toml", tmp_path / "config.toml")
    shutil.copytree(tiny_run[0] / "fold_0", tmp_path / "fold_0")  # best.pt, but never finished
    with one_line_error(RunError, "no summary.json, so no fold is known to be finished"):
        Predictor.from_run(tmp_path)


def test_truncated_summary(run_copy):
    path = run_copy / "summary.json"
    path.write_text(path.read_text()[:40])
    with one_line_error(
        RunError, r"summary.json: not readable as JSON \(.*\); the file is damaged"
    ):
        Predictor.from_run(run_copy)


@pytest.mark.parametrize("content", ["[1, 2]", '{"folds": [{"score": 1}]}', '{"folds": 3}'])
def test_summary_that_is_not_a_run_summary(run_copy, content):
    (run_copy / "summary.json").write_text(content)
    with one_line_error(RunError, r"summary.json: not a run summary \(no fold records\)"):
        Predictor.from_run(run_copy)


def test_run_directory_without_config(run_copy):
    (run_copy / "config.toml").unlink()
    with one_line_error(RunError, "no config.toml"):
        Predictor.from_run(run_copy)


def test_fold_that_the_run_does_not_have(tiny_run):
    with one_line_error(RunError, re.escape("fold(s) [4] not finished (finished: [0, 1])")):
        Predictor.from_run(tiny_run[0], folds=[4])
    with one_line_error(RunError, re.escape("no folds requested (finished: [0, 1])")):
        Predictor.from_run(tiny_run[0], folds=[])


def test_a_finished_folds_missing_checkpoint_is_an_error_not_a_smaller_ensemble(run_copy):
    (run_copy / "fold_1" / "best.pt").unlink()
    missing = re.escape("fold(s) [1] finished but fold_<k>/best.pt is missing")
    with one_line_error(RunError, missing):
        Predictor.from_run(run_copy)
    assert Predictor.from_run(run_copy, folds=[0]).ensembles[0].folds == (0,)


def _interrupt_after_fold_0(run_dir: Path) -> None:
    """What an interrupted run leaves: fold 1 has a best.pt, but summary.json lists fold 0 only."""
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    summary.update(complete=False, folds=[f for f in summary["folds"] if f["fold"] == 0])
    path.write_text(json.dumps(summary))
    assert (run_dir / "fold_1" / "best.pt").is_file()


def test_an_interrupted_runs_unfinished_fold_is_never_used(run_copy, tiny_run):
    _interrupt_after_fold_0(run_copy)
    unfinished = re.escape("the run is not complete: fold(s) [1] unfinished (finished: [0])")
    with one_line_error(RunError, unfinished):
        Predictor.from_run(run_copy)
    with one_line_error(RunError, re.escape("fold(s) [1] not finished (finished: [0])")):
        Predictor.from_run(run_copy, folds=[0, 1])
    _, sequence, demographics = next(gateway_calls(tiny_run[1], "test"))
    np.testing.assert_array_equal(
        Predictor.from_run(run_copy, folds=[0]).predict_proba(sequence, demographics),
        Predictor.from_run(tiny_run[0], folds=[0]).predict_proba(sequence, demographics),
    )


def test_cli_names_the_unfinished_folds_and_takes_finished_ones(run_copy, tiny_run, capsys):
    _interrupt_after_fold_0(run_copy)
    out = run_copy.parent / "submission.csv"
    args = ["predict", str(run_copy), "--data", str(tiny_run[1]), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fold(s) [1] unfinished" in err
    assert not out.exists()
    assert main([*args, "--folds", "0"]) == 0
    assert out.is_file()


def test_training_only_settings_do_not_stop_inference(run_copy, tiny_run):
    """On Kaggle the training data directory is gone and a logger plugin may be missing."""
    path = run_copy / "config.toml"
    raw = tomllib.loads(path.read_text())
    raw["data"].update(source="kaggle", dir="/nowhere/cmi-data")
    raw["logging"].update(loggers=["not_installed"], not_installed={"x": 1})
    path.write_text(tomli_w.dumps(raw))
    _, sequence, demographics = next(gateway_calls(tiny_run[1], "test"))
    assert Predictor.from_run(run_copy).predict(sequence, demographics) in GESTURES


@pytest.mark.parametrize(
    ("section", "key", "value", "named"),
    [
        ("model", "squeezeformer", {"d_model": 32}, "model"),
        ("data", "features", {"thm_tof": True}, "data.features"),
        ("data", "max_len", 48, "data.max_len"),
    ],
)
def test_checkpoint_from_an_incompatible_config(run_copy, section, key, value, named):
    path = run_copy / "config.toml"
    raw = tomllib.loads(path.read_text())
    current = raw[section][key]
    raw[section][key] = {**current, **value} if isinstance(current, dict) else value
    path.write_text(tomli_w.dumps(raw))
    with one_line_error(
        RunError, rf"fold_0/best.pt: checkpoint from an incompatible config: {named} "
    ):
        Predictor.from_run(run_copy)


def test_checkpoint_features_that_differ_from_the_config(run_copy):
    path = run_copy / "fold_0" / "best.pt"
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "feature_names": ckpt["feature_names"][::-1]}, path)
    with one_line_error(RunError, r"fold_0/best.pt: checkpoint features \(16: angular_distance, "):
        Predictor.from_run(run_copy)


def test_weights_that_do_not_fit_the_model(run_copy):
    path = run_copy / "fold_1" / "best.pt"
    ckpt = torch.load(path, weights_only=True)
    dropped = next(iter(ckpt["state_dict"]))
    del ckpt["state_dict"][dropped]
    torch.save(ckpt, path)
    with one_line_error(RunError, rf"fold_1/best.pt: weights do not fit .*missing {dropped}"):
        Predictor.from_run(run_copy)


def _touch(path: str) -> None:
    Path(path).touch()


class _Payload:
    """Unpickling this would call ``_touch``: the attack a weights-only load must refuse."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return _touch, (self.marker,)


def test_pickle_bearing_checkpoint_is_refused_not_executed(run_copy, tmp_path):
    marker = tmp_path / "executed"
    path = run_copy / "fold_0" / "best.pt"
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "extra": _Payload(marker)}, path)
    refused = r"fold_0/best.pt: refused: the file holds a pickled object \(.*test_errors._touch\)"
    with one_line_error(RunError, refused):
        Predictor.from_run(run_copy)
    assert not marker.exists()


def test_file_that_is_not_a_checkpoint(run_copy):
    (run_copy / "fold_0" / "best.pt").write_bytes(b"not a checkpoint")
    with one_line_error(RunError, "fold_0/best.pt: not a readable checkpoint"):
        Predictor.from_run(run_copy)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("zero-filled", "truncated, damaged or not a torch file"),
        ("truncated", "truncated, damaged or not a torch file"),
        ("cut near its end", "truncated, damaged or not a torch file"),
        ("empty", "the file is empty"),
    ],
)
def test_damaged_checkpoint_never_advises_weights_only_false(run_copy, damage, reason):
    path = run_copy / "fold_1" / "best.pt"
    data = path.read_bytes()
    path.write_bytes(
        {
            "zero-filled": bytes(len(data)),
            "truncated": data[: len(data) // 2],
            "cut near its end": data[:-10],
            "empty": b"",
        }[damage]
    )
    with pytest.raises(RunError) as info:
        Predictor.from_run(run_copy)
    assert "weights_only" not in str(info.value)  # retrying with False would run the file
    assert str(info.value) == f"{path}: not a readable checkpoint ({reason})"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_checkpoint_with_non_finite_weights_is_refused(run_copy, value):
    path = run_copy / "fold_0" / "best.pt"
    ckpt = torch.load(path, weights_only=True)
    key = next(k for k, v in ckpt["state_dict"].items() if k.startswith("heads.") and v.ndim)
    ckpt["state_dict"][key].view(-1)[0] = value
    torch.save(ckpt, path)
    refused = rf"fold_0/best.pt: refused: non-finite weights \(NaN or Inf\) in {key};"
    with one_line_error(RunError, refused):
        Predictor.from_run(run_copy)


def test_checkpoint_missing_its_metadata(run_copy):
    path = run_copy / "fold_0" / "best.pt"
    torch.save({"state_dict": torch.load(path, weights_only=True)["state_dict"]}, path)
    with one_line_error(RunError, "not a cmi fold checkpoint .*missing config, feature_names"):
        Predictor.from_run(run_copy)


# -- the sequences ---------------------------------------------------------------------------


def test_sequence_missing_a_required_column(predictor, two_sequences):
    _, sequence, demographics = two_sequences[0]
    with one_line_error(DataError, "missing column 'acc_y'"):
        predictor.predict(sequence.drop("acc_y"), demographics)


def test_subject_missing_from_demographics(predictor, two_sequences):
    (sid, sequence, _), (_, _, other_demographics) = two_sequences
    subject = sequence["subject"][0]
    with one_line_error(DataError, f"no row for subject '{subject}' \\(sequence '{sid}'\\)"):
        predictor.predict(sequence, other_demographics)


def test_frame_with_two_sequences(predictor, two_sequences):
    (_, first, demo_a), (_, second, demo_b) = two_sequences
    with one_line_error(DataError, "expected one sequence_id, got 2"):
        predictor.predict(pl.concat([first, second]), pl.concat([demo_a, demo_b]))


def test_unknown_output_format(tiny_run, tmp_path):
    run_dir, data_dir = tiny_run
    with one_line_error(RunError, "submission.json: unknown output format"):
        predict_file([run_dir], data_dir, tmp_path / "submission.json")


def test_cli_prints_one_error_line_and_exits_2(tiny_run, tmp_path, capsys):
    code = main(
        ["predict", str(tmp_path), "--data", str(tiny_run[1]), "--out", str(tmp_path / "s.csv")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}: no summary.json") and err.count("\n") == 1


def _read_only_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "read_only"
    directory.mkdir()
    directory.chmod(0o555)
    if os.access(directory, os.W_OK):  # root ignores the mode bits
        pytest.skip("this user can write into a read-only directory")
    return directory


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("read-only directory", "Permission denied"),
        ("sysfs", "Permission denied"),  # refused even to root
        ("below a file", "cannot be created: {out_parent} is a file, not a directory"),
    ],
)
def test_output_that_cannot_be_written_fails_before_predicting(
    tiny_run, tmp_path, capsys, where, reason
):
    if where == "sysfs" and not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here")
    (tmp_path / "a_file").write_text("")
    out = {
        "read-only directory": lambda: _read_only_dir(tmp_path) / "submission.csv",
        "sysfs": lambda: Path("/sys/kernel/submission.csv"),
        "below a file": lambda: tmp_path / "a_file" / "submission.csv",
    }[where]()
    code = main(["predict", str(tiny_run[0]), "--data", str(tiny_run[1]), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    if where == "below a file":  # the CLI's path check, before the predictor is loaded
        expected = f"error: --out {out}: {reason.format(out_parent=out.parent)}\n"
    else:
        expected = f"error: {out}: cannot write there ({reason})\n"
    assert captured.err == expected
    assert "predict" not in captured.out  # failed before the work, not after it


def test_output_that_is_a_directory(tiny_run, tmp_path):
    out = tmp_path / "submission.csv"
    out.mkdir()
    with one_line_error(RunError, "submission.csv: is a directory"):
        predict_file([tiny_run[0]], tiny_run[1], out)


def test_prediction_needs_no_weighting_plugin(tiny_run, two_sequences, predictor, monkeypatch):
    """The tiny run trained with `uncertainty`; a notebook without that plugin predicts alike."""
    from cmi_core.registry.manager import get_plugin_manager, reset_plugin_manager

    monkeypatch.setenv("CMI_DISABLE_PLUGINS", "uncertainty")
    reset_plugin_manager()
    assert "uncertainty" not in get_plugin_manager().names("weighting")
    _, sequence, demographics = two_sequences[0]
    np.testing.assert_array_equal(
        Predictor.from_run(tiny_run[0]).predict_proba(sequence, demographics),
        predictor.predict_proba(sequence, demographics),
    )


@pytest.mark.parametrize("batch_size", [-5, 0])
def test_a_non_positive_batch_size_is_refused(tiny_run, tmp_path, batch_size):
    """Before the fix -5 wrote a submission of uninitialised memory and exited 0 (the batch
    loop ran no step), and 0 was a ValueError traceback from range()."""
    run_dir, data_dir = tiny_run
    out = tmp_path / "submission.csv"
    with one_line_error(RunError, "batch size must be a positive integer"):
        predict_file([run_dir], data_dir, out, batch_size=batch_size)
    assert not out.exists()
