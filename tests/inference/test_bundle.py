"""``cmi bundle``: what the upload folder holds, what it refuses, and ``--verify``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cmi_core.cli import main
from cmi_core.errors import RunError
from cmi_core.predict.bundle import KAGGLE_IMAGE_LACKS, write_bundle
from cmi_core.predict.fold_models import CHECKPOINT_KEYS, WEIGHTING_PREFIX
from cmi_core.predict.notebook import notebook_code

QUIET = {"download": False, "log": lambda line: None}


def test_the_bundle_holds_what_prediction_reads_and_nothing_else(tiny_bundle, tiny_run):
    bundle, _ = tiny_bundle
    run_dir, _ = tiny_run
    (run,) = (bundle / "runs").iterdir()
    assert sorted(p.name for p in run.iterdir()) == [
        "config.toml",
        "fold_0",
        "fold_1",
        "oof_predictions.csv",
        "summary.json",
    ]
    for k in (0, 1):
        assert [p.name for p in (run / f"fold_{k}").iterdir()] == ["best.pt"]
        slim = torch.load(run / f"fold_{k}" / "best.pt", weights_only=True)
        full = torch.load(run_dir / f"fold_{k}" / "best.pt", weights_only=True)
        assert set(slim) == CHECKPOINT_KEYS
        assert not [key for key in slim["state_dict"] if key.startswith(WEIGHTING_PREFIX)]
        assert [key for key in full["state_dict"] if key.startswith(WEIGHTING_PREFIX)]
        for key, value in slim["state_dict"].items():
            assert torch.equal(value, full["state_dict"][key]), key
    (wheel,) = (bundle / "wheels").glob("*.whl")
    assert wheel.name.startswith("cmi_trainer-")
    metadata = json.loads((bundle / "dataset-metadata.json").read_text())
    assert metadata["id"].endswith("/my-cmi-run")


def test_the_notebook_is_the_docs_notebook_for_these_runs(tiny_bundle):
    bundle, _ = tiny_bundle
    cells = json.loads((bundle / "submission.ipynb").read_text())["cells"]
    assert "".join(cells[0]["source"]).startswith("!pip install --no-index --no-deps")
    assert "".join(cells[1]["source"]) == notebook_code(["run"], "my-cmi-run")


def test_weights_and_routing_are_written_into_the_notebook():
    code = notebook_code(["best", "resse_gru"], "x", weights=[2, 1], by_sensors=True)
    assert 'RUN_DIRS = [BUNDLE / "runs" / "best", BUNDLE / "runs" / "resse_gru"]' in code
    assert "WEIGHTS = [2.0, 1.0]" in code
    assert "BY_SENSORS = True" in code


def test_an_unfinished_run_is_refused(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    summary = json.loads((copy / "summary.json").read_text())
    summary["complete"] = False
    summary["folds"] = summary["folds"][:1]
    (copy / "summary.json").write_text(json.dumps(summary))
    assert main(["bundle", str(copy), "--out", str(tmp_path / "up"), "--no-download"]) == 2
    assert "the run is not complete: fold(s) [1] unfinished" in capsys.readouterr().err


def test_a_run_of_another_version_is_refused(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    summary = json.loads((copy / "summary.json").read_text())
    summary["versions"]["cmi-trainer"] = "0.0.1"
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(RunError, match=r"trained with cmi-trainer 0\.0\.1, but .* is installed"):
        write_bundle([copy], tmp_path / "up", **QUIET)
    assert not (tmp_path / "up").exists()


def test_a_non_empty_out_is_refused(tiny_run, tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "keep.txt").write_text("mine")
    with pytest.raises(RunError, match="exists and is not an empty directory"):
        write_bundle([tiny_run[0]], tmp_path / "up", **QUIET)
    assert (tmp_path / "up" / "keep.txt").read_text() == "mine"


def test_pinned_wheels_name_exact_versions():
    assert all("==" in requirement for requirement in KAGGLE_IMAGE_LACKS)


@pytest.mark.install
def test_verify_runs_the_notebook_in_a_fresh_venv(tiny_run, tmp_path, capsys):
    run_dir, data_dir = tiny_run
    out = tmp_path / "upload"
    args = ["bundle", str(run_dir), "--out", str(out), "--no-download", "--verify"]
    assert main([*args, "--data", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    assert "verify: all 204 answers equal cmi predict (fresh venv" in printed
    assert Path(out / "submission.ipynb").is_file()
