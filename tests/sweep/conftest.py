"""The tiny run config as a TOML file for ``cmi sweep`` / ``cmi run`` on the command line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import tomli_w

from tests.run.conftest import TINY, run_cache  # noqa: F401  (run_cache: a fixture)


@pytest.fixture
def tiny_toml(run_cache: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The tiny 2-fold config (data cached once per session) as a config file, written as a
    user would: only the keys it sets, so any weighting strategy can be swept from it."""
    raw = copy.deepcopy(TINY)
    raw["data"]["cache_dir"] = str(run_cache)
    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path
