"""Shared fixtures: a clean plugin manager per test and helpers to fake installed plugins."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmi_core.registry.manager import reset_plugin_manager

pytest_plugins = ("pytester",)  # the contract kit is run on broken plugins in sessions of its own


@pytest.fixture(autouse=True)
def _fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees freshly loaded plugins and no plugin environment variables."""
    monkeypatch.delenv("CMI_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("CMI_STRICT_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path where tests install fake distributions and modules."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def install_fake_distribution(
    site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    """Install ``modules`` and a ``.dist-info`` declaring ``cmi.plugins`` entry points.

    This is what ``pip install`` leaves behind, so ``importlib.metadata`` discovers it exactly
    as it discovers a real third-party plugin.
    """
    for name, source in modules.items():
        sys.modules.pop(name, None)  # an earlier test may have imported another version
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[cmi.plugins]\n{lines}\n")
