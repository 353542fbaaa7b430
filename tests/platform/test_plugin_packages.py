"""Every package under plugins/ is registered, packaged and linted: nothing is forgotten when a
plugin is added (docs/architecture.md, "Where do I add ...")."""

from __future__ import annotations

import fnmatch
import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = sorted(p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py"))
CONTRACTS = {c["name"]: c for c in PYPROJECT["tool"]["importlinter"]["contracts"]}
# (contract, the key that must name every plugin package)
PLUGIN_LISTS = [
    ("cmi_core never imports a plugin", "forbidden_modules"),
    ("plugins are independent of each other", "modules"),
    (
        "plugins use only the public API of cmi_core (its top-level modules and testing)",
        "source_modules",
    ),
]


def test_there_are_plugin_packages() -> None:
    assert "cmi_weighting_none" in PACKAGES and "cmi_backbone_squeezeformer" in PACKAGES


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_is_an_entry_point(package: str) -> None:
    targets = {v.split(":")[0].split(".")[0] for v in _entry_points().values()}
    assert package in targets, f'add `<name> = "{package}"` to [project.entry-points."cmi.plugins"]'


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_is_packaged(package: str) -> None:
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    assert "plugins" in find["where"]
    assert any(fnmatch.fnmatch(package, pattern) for pattern in find["include"])


def test_the_contracts_name_the_plugins_by_placeholder_only() -> None:
    """The plugin lists of the import contracts are filled in from the entry points
    (scripts/lint_imports.py): a hand-kept name there would be a second list to forget."""
    lists = {"root_packages": PYPROJECT["tool"]["importlinter"]["root_packages"]}
    lists |= {f"{name}: {key}": CONTRACTS[name][key] for name, key in PLUGIN_LISTS}
    for where, names in lists.items():
        assert "@plugins" in names, f"[tool.importlinter] {where} must hold '@plugins'"
        assert not set(names) & set(PACKAGES), f"[tool.importlinter] {where} names a plugin"


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_is_linted(package: str) -> None:
    config = _lint_script().expanded(PYPROJECT)
    contracts = {c["name"]: c for c in config["contracts"]}
    lists = {"root_packages": config["root_packages"]}
    lists |= {f"{name}: {key}": contracts[name][key] for name, key in PLUGIN_LISTS}
    missing = [where for where, names in lists.items() if package not in names]
    assert not missing, f"{package} not in the expanded [tool.importlinter] {missing}"


def test_every_entry_point_is_a_package_under_plugins() -> None:
    named = {v.split(":")[0].split(".")[0] for v in _entry_points().values()}
    assert named <= set(PACKAGES), (
        f"no such package under plugins/: {sorted(named - set(PACKAGES))}"
    )


def _lint_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lint_imports", ROOT / "scripts" / "lint_imports.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entry_points() -> dict[str, str]:
    return PYPROJECT["project"]["entry-points"]["cmi.plugins"]
