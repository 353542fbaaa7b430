"""The fold Trainer takes the config's settings (``trainer.deterministic``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cmi_core.errors import ConfigError
from cmi_core.train.assemble import make_trainer
from tests.run.conftest import tiny_config


@pytest.fixture
def torch_flags() -> Iterator[None]:
    """Lightning sets torch's process-wide deterministic flags; put them back afterwards."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.mark.parametrize(
    ("value", "enabled", "warn_only"),
    [(True, True, False), ("warn", True, True), (False, False, False)],
)
def test_trainer_deterministic_reaches_torch(
    run_cache: Path,
    tmp_path: Path,
    torch_flags: None,
    value: object,
    enabled: bool,
    warn_only: bool,
) -> None:
    cfg = tiny_config(run_cache, trainer={"deterministic": value}, logging={"loggers": []})
    make_trainer(cfg, tmp_path, [], progress=False)
    assert torch.are_deterministic_algorithms_enabled() is enabled
    assert torch.is_deterministic_algorithms_warn_only_enabled() is warn_only


def test_trainer_deterministic_takes_only_lightnings_values(run_cache: Path) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.deterministic: must be true, false or 'warn'"):
        tiny_config(run_cache, trainer={"deterministic": "sometimes"})
