"""The tiny run config as a TOML file for ``cmi sweep`` / ``cmi run`` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from cmi_core.config import config_to_dict
from tests.run.conftest import run_cache, tiny_config  # noqa: F401  (run_cache: a fixture)


@pytest.fixture
def tiny_toml(run_cache: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The tiny 2-fold config (data cached once per session) written as a config file."""
    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(config_to_dict(tiny_config(run_cache))), encoding="utf-8")
    return path
