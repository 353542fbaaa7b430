"""The worked example of docs/writing-a-plugin.md, installed and checked as a user would.

A fresh virtual environment sees the project's packages (cmi-trainer, torch, pytest) through a
``.pth`` file, the example package is pip-installed into it, and its own test file (a
``WeightingContract`` subclass) runs there: the plugin is found through its entry point only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import install_fake_distribution

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cmi_weighting_normalized"
BACKBONE_EXAMPLE = ROOT / "examples" / "cmi_backbone_tcn"
TASK_EXAMPLE = ROOT / "examples" / "cmi_task_body_region"
EXTRA_BACKBONE = {
    "cmi_backbone_extra": """
    import attrs
    import cmi_core
    from cmi_core import BackboneSpec

    @attrs.frozen
    class Options:
        width: int = 8

    def factory(in_channels, options):
        raise NotImplementedError("listed, never built")

    @cmi_core.hookimpl
    def cmi_register_backbones():
        return [BackboneSpec(name="zz_extra", summary="A third-party backbone",
                             factory=factory, config_cls=Options)]
    """
}


def _run(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _venv_with(example: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """``(python, site_packages, package)``: a fresh venv that sees the project's packages
    through a ``.pth`` file, with a copy of ``example`` pip-installed into it."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # pip and setuptools come from the project below
    python = env_dir / "bin" / "python"
    site_packages = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).strip()
    )
    project = sysconfig.get_paths()["purelib"]
    (site_packages / "cmi_project.pth").write_text(f"import site; site.addsitedir({project!r})\n")
    package = shutil.copytree(example, tmp_path / example.name)  # build files stay out
    _run(
        python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", ".", cwd=package
    )
    where = _run(
        python, "-P", "-c", f"import {example.name}; print({example.name}.__file__)", cwd=package
    )
    assert Path(where.strip()).is_relative_to(site_packages)  # the installed copy, not the source
    return python, site_packages, package


def _passed(output: str) -> int:
    passed = re.search(r"(\d+) passed", output)
    assert passed and "failed" not in output, output
    return int(passed.group(1))


@pytest.mark.install
def test_the_backbone_example_installs_and_passes_the_contract_kit(tmp_path: Path) -> None:
    python, _, package = _venv_with(BACKBONE_EXAMPLE, tmp_path)
    listing = _run(python, "-P", "-m", "cmi_core.cli", "plugins", cwd=package)
    assert "tcn" in listing and "cmi-backbone-tcn" in listing
    output = _run(python, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)
    assert _passed(output) >= 15, output  # two kit runs and the example's own test


@pytest.mark.install
def test_the_task_example_installs_and_passes_the_contract_kit(tmp_path: Path) -> None:
    python, _, package = _venv_with(TASK_EXAMPLE, tmp_path)
    listing = _run(python, "-P", "-m", "cmi_core.cli", "plugins", cwd=package)
    assert "body_region" in listing and "cmi-task-body-region" in listing
    output = _run(python, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)
    assert _passed(output) >= 6, output  # the kit's checks and the example's own test


def test_the_docs_task_code_is_the_example_package():
    blocks = [b for b in _doc_blocks() if "BodyRegionTask" in b]
    package = TASK_EXAMPLE / "cmi_task_body_region"
    source = "".join((package / name).read_text() for name in ("__init__.py", "task.py"))
    assert len(blocks) == 2
    for piece in "\n\n\n".join(blocks).strip().split("\n\n\n"):
        assert piece.strip() in source, piece


@pytest.mark.install
def test_the_example_installs_and_passes_the_contract_kit(tmp_path: Path) -> None:
    python, site_packages, package = _venv_with(EXAMPLE, tmp_path)
    listing = _run(python, "-P", "-m", "cmi_core.cli", "plugins", cwd=package)
    assert "normalized" in listing and "cmi-weighting-normalized" in listing

    output = _run(python, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)
    assert _passed(output) >= 10, output  # the kit's checks and the example's

    # A plugin author develops in this environment: the project's tests of messages that list
    # the installed plugins must hold with the example weighting and a third-party backbone.
    install_fake_distribution(
        site_packages, "cmi-backbone-extra", {"extra": "cmi_backbone_extra"}, EXTRA_BACKBONE
    )
    listing = _run(python, "-P", "-m", "cmi_core.cli", "plugins", cwd=tmp_path)
    assert "zz_extra" in listing and "normalized" in listing, listing
    output = _run(
        python,
        "-P",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "plugin_listing",
        ROOT / "tests",
        cwd=ROOT,
    )
    assert _passed(output) >= 6, output


def _doc_blocks() -> list[str]:
    text = (ROOT / "docs" / "writing-a-plugin.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_docs_backbone_code_is_the_example_package():
    (block,) = [b for b in _doc_blocks() if "class TcnOptions" in b]
    source = (BACKBONE_EXAMPLE / "cmi_backbone_tcn" / "__init__.py").read_text()
    for piece in block.strip().split("\n\n\n"):
        assert piece.strip() in source, piece


def test_the_docs_lazy_state_pattern_is_the_one_the_kit_passes():
    (block,) = [b for b in _doc_blocks() if "_load_from_state_dict" in b]
    fixture = (ROOT / "tests" / "core" / "broken_plugins.py").read_text()
    method = block[block.index("    def _load_from_state_dict") :]
    code = [line.split("#")[0].strip() for line in method.strip().splitlines()]
    fixture_lines = [line.split("#")[0].strip() for line in fixture.splitlines()]
    start = fixture_lines.index(code[0])
    assert fixture_lines[start : start + len(code)] == code
