"""The plugin contract kit: subclass one class, override one fixture, get every check.

Example, in a plugin's test file::

    import pytest
    from cmi_core.testing import WeightingContract

    class TestMyWeighting(WeightingContract):
        @pytest.fixture
        def plugin_name(self):
            return "my_weighting"

Optional fixtures: ``plugin_options`` (a dict of the plugin's options, as in a config table)
and ``plugin_modules`` (local modules to register, for a plugin that is not installed).
The classes are imported lazily: this package is also the ``cmi_contract`` pytest plugin,
loaded in every pytest session, and must not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "WeightingContract": "cmi_core.testing.weighting_contract",
    "GradientWeightingContract": "cmi_core.testing.gradient_contract",
    "BackboneContract": "cmi_core.testing.backbone_contract",
    "LoggerContract": "cmi_core.testing.logger_contract",
    "TaskContract": "cmi_core.testing.task_contract",
    "PluginContract": "cmi_core.testing.plugin_contract",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cmi_core.testing' has no attribute {name!r}")
