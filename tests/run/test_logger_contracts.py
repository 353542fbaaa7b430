"""The contract kit run on both built-in logger plugins."""

from __future__ import annotations

import pytest

from cmi_core.testing import LoggerContract


class TestTensorBoardLogger(LoggerContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "tensorboard"


class TestCSVLogger(LoggerContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "csv"
