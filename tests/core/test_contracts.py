"""The contract kit run on every built-in weighting and backbone plugin."""

from __future__ import annotations

from typing import Any

import pytest

from cmi_core.registry.manager import get_plugin_manager
from cmi_core.testing import (
    BackboneContract,
    GradientWeightingContract,
    TaskContract,
    WeightingContract,
)

TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32}


def _strategies(level: str) -> list[str]:
    """Every registered strategy at ``level``: a new plugin is checked without naming it here."""
    manager = get_plugin_manager()
    return [n for n in manager.names("weighting") if manager.get("weighting", n).level == level]


LOSS_LEVEL, GRADIENT_LEVEL = _strategies("loss"), _strategies("gradient")


def test_the_registry_holds_strategies_of_both_levels() -> None:
    assert "none" in LOSS_LEVEL and "upgrad" in GRADIENT_LEVEL, (LOSS_LEVEL, GRADIENT_LEVEL)


@pytest.mark.parametrize("plugin_name", LOSS_LEVEL)
class TestLossWeightings(WeightingContract):
    pass


@pytest.mark.parametrize("plugin_name", get_plugin_manager().names("task"))
class TestTasks(TaskContract):
    """Every registered task: a new one is checked without naming it here."""


class TestUncertaintyLiebelWeighting(WeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "uncertainty"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"variant": "liebel", "clamp": [-3.0, 4.0], "init_value": 0.5}


@pytest.mark.parametrize("plugin_name", GRADIENT_LEVEL)
class TestGradientWeightings(GradientWeightingContract):
    pass


class TestGradNormOnParameters(GradientWeightingContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "gradnorm"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"where": "parameters", "asymmetry": 0.5}


class TestSqueezeformerBackbone(BackboneContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "squeezeformer"


@pytest.mark.parametrize("pooling", ["cls", "attention"])
class TestSqueezeformerPoolings(BackboneContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "squeezeformer"

    @pytest.fixture
    def plugin_options(self, pooling: str) -> dict[str, Any]:
        return {**TINY, "pooling": pooling}


@pytest.mark.parametrize(
    "options",
    [
        {"positions": "end", "dropout_kind": "element"},
        {"positions": "none", "input_norm": True},
    ],
)
class TestSqueezeformerOptions(BackboneContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "squeezeformer"

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**TINY, **options}


class TestResSEGRUBackbone(BackboneContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "resse_gru"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"channels": 16, "n_blocks": 2, "gru_hidden": 8, "gru_layers": 2, "input_norm": True}


@pytest.mark.parametrize(
    ("pooling", "depth", "input_norm"), [("mean", 6, True), ("attention", 4, False)]
)
class TestInceptionBackbone(BackboneContract):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "inception"

    @pytest.fixture
    def plugin_options(self, pooling: str, depth: int, input_norm: bool) -> dict[str, Any]:
        return {
            "n_filters": 4,
            "bottleneck": 4,
            "kernel_size": 9,
            "depth": depth,
            "pooling": pooling,
            "input_norm": input_norm,
        }
