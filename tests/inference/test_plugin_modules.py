"""A run directory cannot make prediction import code (issue 19, fault 9): its ``[plugins]
modules`` are imported only when the user names them."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmi_core.errors import RunError
from cmi_core.predict.predictor import Predictor
from cmi_core.registry.manager import reset_plugin_manager
from tests.run.conftest import finished_run  # noqa: F401  (a fixture)

MODULE = "cmi_planted_module"


@pytest.fixture
def planted(finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:  # noqa: F811
    """A copy of a finished run whose config names a module that, imported, leaves a mark."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    config = run_dir / "config.toml"
    text = config.read_text()
    assert "[plugins]\nmodules = []" in text
    config.write_text(text.replace("[plugins]\nmodules = []", f'[plugins]\nmodules = ["{MODULE}"]'))
    code = tmp_path / "code"
    code.mkdir()
    (code / f"{MODULE}.py").write_text(  # a plugin module (it registers a hook) with a mark
        f"from pathlib import Path\nimport cmi_core\nPath({str(tmp_path / 'imported')!r}).touch()\n"
        "import attrs\n@attrs.frozen\nclass Options:\n    pass\n"
        "@cmi_core.hookimpl\ndef cmi_register_backbones():\n"
        "    return [cmi_core.BackboneSpec(name='planted', summary='a mark', factory=print,"
        " config_cls=Options)]\n"
    )
    monkeypatch.syspath_prepend(str(code))
    reset_plugin_manager()
    yield run_dir
    sys.modules.pop(MODULE, None)
    reset_plugin_manager()


def test_a_run_directorys_plugin_module_is_not_imported(planted: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_run(planted)  # the run's built-in backbone needs no module
    assert predictor.ensembles[0].folds == (0, 1)
    assert not (tmp_path / "imported").exists(), "the run directory made prediction import code"


def test_a_named_plugin_module_is_imported(planted: Path, tmp_path: Path) -> None:
    Predictor.from_run(planted, plugin_modules=[MODULE])
    assert (tmp_path / "imported").exists()


def test_a_run_that_needs_its_module_says_how_to_allow_it(planted: Path, tmp_path: Path) -> None:
    config = planted / "config.toml"
    config.write_text(config.read_text().replace('backbone = "squeezeformer"', 'backbone = "own"'))
    with pytest.raises(RunError) as caught:
        Predictor.from_run(planted)
    message = str(caught.value)
    assert "\n" not in message
    assert f"the run names [plugins] modules ['{MODULE}']" in message
    assert f"cmi predict --plugin-module {MODULE}" in message
    assert f"Predictor.from_run(run, plugin_modules=['{MODULE}'])" in message
    assert not (tmp_path / "imported").exists()
