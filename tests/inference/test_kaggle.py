"""The Kaggle path: the notebook of docs/kaggle.md, run with a stand-in inference server that
calls ``predict`` the way the gateway does, answers as ``cmi predict`` does."""

from __future__ import annotations

import json
import re
import shlex
import sys
import tomllib
import types
from pathlib import Path

import polars as pl
import pytest
import tomli_w

from cmi_core.cli import main
from cmi_core.predict.notebook import notebook_code
from cmi_core.predict.predictor import predict_file
from tests.inference.gateway import FakeInferenceServer
from tests.inference.test_ensemble import disagreeing_run

DOC = Path(__file__).parents[2] / "docs" / "kaggle.md"


@pytest.fixture(scope="module")
def batched(tiny_run, tmp_path_factory) -> dict[str, str]:
    """``cmi predict`` on the synthetic test files, as ``{sequence_id: gesture}``."""
    run_dir, data_dir = tiny_run
    out = tmp_path_factory.mktemp("submission") / "submission.parquet"
    assert main(["predict", str(run_dir), "--data", str(data_dir), "--out", str(out)]) == 0
    frame = pl.read_parquet(out)
    assert frame.columns == ["sequence_id", "gesture"]
    return dict(frame.iter_rows())


def test_cli_writes_csv_too(tiny_run, batched, tmp_path):
    run_dir, data_dir = tiny_run
    out = predict_file([run_dir], data_dir, tmp_path / "sub" / "submission.csv", batch_size=7)
    assert out == tmp_path / "sub" / "submission.csv"
    assert dict(pl.read_csv(out).iter_rows()) == batched


def _python_cells() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def _notebook_cell() -> str:
    (cell,) = [c for c in _python_cells() if "CMIInferenceServer(predict)" in c]
    return cell


def test_the_docs_notebook_cell_is_the_one_cmi_bundle_writes():
    assert _notebook_cell() == notebook_code(
        ["exp025"], "my-cmi-run", postprocess="subject_assignment"
    )


@pytest.mark.usefixtures("postprocessors")
def test_the_docs_notebook_post_processes_as_cmi_predict_does(
    tiny_run, batched, tmp_path, monkeypatch
):
    """The page's cell (with ``subject_assignment``), run by the stand-in server, answers as
    ``cmi predict --postprocess subject_assignment --order-seed 7`` on the same files."""
    run_dir, data_dir = tiny_run
    code = _notebook_cell().replace('BUNDLE / "runs" / "exp025"', repr(str(run_dir)))
    code = code.replace("/kaggle/input/cmi-detect-behavior-with-sensor-data", str(data_dir))
    _fake_kaggle(monkeypatch)
    exec(compile(code, str(DOC), "exec"), {"__name__": "__main__"})
    (server,) = FakeInferenceServer.instances

    out = tmp_path / "submission.csv"
    argv = ["predict", str(run_dir), "--data", str(data_dir), "--out", str(out)]
    assert main([*argv, "--postprocess", "subject_assignment", "--order-seed", "7"]) == 0
    expected = dict(pl.read_csv(out).iter_rows())
    assert server.answers == expected
    assert expected != batched  # the post-processor changed answers: the equality says something
    assert main([*argv, "--postprocess", "subject_assignment", "--order-seed", "8"]) == 0
    assert dict(pl.read_csv(out).iter_rows()) != expected  # the order matters


def _fake_kaggle(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("kaggle_evaluation")
    server_module = types.ModuleType("kaggle_evaluation.cmi_inference_server")
    server_module.CMIInferenceServer = FakeInferenceServer
    package.cmi_inference_server = server_module
    monkeypatch.setitem(sys.modules, "kaggle_evaluation", package)
    monkeypatch.setitem(sys.modules, "kaggle_evaluation.cmi_inference_server", server_module)
    monkeypatch.delenv("KAGGLE_IS_COMPETITION_RERUN", raising=False)
    monkeypatch.setattr(FakeInferenceServer, "instances", [])
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_the_notebook_of_a_bundle_submits_its_run(tiny_bundle, batched, monkeypatch):
    bundle, data_dir = tiny_bundle
    cells = json.loads((bundle / "submission.ipynb").read_text())["cells"]
    code = "".join(cells[1]["source"])
    for kaggle_path, local in (
        ("/kaggle/input/my-cmi-run", bundle),
        ("/kaggle/input/cmi-detect-behavior-with-sensor-data", data_dir),
    ):
        assert kaggle_path in code
        code = code.replace(kaggle_path, str(local))
    _fake_kaggle(monkeypatch)

    exec(compile(code, "submission.ipynb", "exec"), {"__name__": "__main__"})

    (server,) = FakeInferenceServer.instances
    test_ids = set(pl.read_csv(data_dir / "test.csv", columns=["sequence_id"])["sequence_id"])
    assert set(server.answers) == test_ids
    assert 0 < server.imu_only < len(test_ids)  # both kinds of hidden-test sequence were served
    assert server.answers == batched


def test_the_docs_dry_run_replays_every_test_sequence(tiny_run, batched):
    run_dir, data_dir = tiny_run
    (cell,) = [c for c in _python_cells() if "replay(" in c]
    code = cell.replace('Path("runs/exp025")', repr(str(run_dir))).replace(
        '"/path/to/cmi-detect-behavior-with-sensor-data"', repr(str(data_dir))
    )
    scope: dict[str, object] = {"Path": Path}
    exec(compile(code, str(DOC), "exec"), scope)
    assert scope["answers"] == batched


def _doc_commands() -> list[str]:
    """The ``cmi predict`` and ``cmi ensemble`` lines of the page's shell blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.startswith(("cmi predict", "cmi ensemble"))]


def _other_config(run_dir: Path) -> Path:
    """The run as exp024 is to exp025: fixed weights, so ``--fit-weights`` sees two configs."""
    raw = tomllib.loads((run_dir / "config.toml").read_text())
    raw["loss"]["weighting"]["strategy"] = "none"
    (run_dir / "config.toml").write_text(tomli_w.dumps(raw))
    return run_dir


def test_the_docs_predict_and_ensemble_commands_run(
    tiny_run, tiny_thm_tof_run, postprocessors, tmp_path, monkeypatch, capsys
):
    run_dir, data_dir = tiny_run
    runs = {
        "runs/exp025": run_dir,
        "runs/exp024": _other_config(disagreeing_run(run_dir, tmp_path / "exp024")),
        "runs/exp025_thm_tof": disagreeing_run(run_dir, tmp_path / "exp025_thm_tof", seed=1),
        "runs/best": tiny_thm_tof_run[0],
        "runs/resse_gru": run_dir,
    }
    monkeypatch.chdir(tmp_path)
    commands = _doc_commands()
    assert len(commands) == 8
    for command in commands:
        command = re.sub(r"runs/\w+", lambda m: str(runs[m.group()]), command)
        command = command.replace("/path/to/cmi-detect-behavior-with-sensor-data", str(data_dir))
        assert main(shlex.split(command)[1:]) == 0, command
    out = capsys.readouterr().out
    assert re.search(r"^ensemble +1\.000 +\d\.\d{4}$", out, flags=re.MULTILINE)
    assert "subject_assignment: 20 arrival order(s)" in out
    assert (tmp_path / "submission.csv").is_file()
