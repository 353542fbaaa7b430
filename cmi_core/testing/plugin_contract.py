"""Fixtures every contract shares: which plugin, with which options, from which modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from cmi_core.registry.manager import get_plugin_manager
from cmi_core.specs import PluginSpec

if TYPE_CHECKING:
    from torch import nn


@pytest.mark.cmi_contract
class PluginContract:
    """Base of the contract classes; ``kind`` is ``weighting``, ``backbone`` or ``logger``."""

    kind = ""

    @pytest.fixture
    def plugin_name(self) -> str:
        """Override: the name the plugin registers (e.g. ``"uncertainty"``)."""
        raise NotImplementedError("override the plugin_name fixture with the plugin's name")

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        """Override to check the plugin with these options (a config table, as a dict)."""
        return {}

    @pytest.fixture
    def plugin_modules(self) -> Sequence[str]:
        """Override to register local modules first (a plugin that is not installed)."""
        return ()

    @pytest.fixture
    def spec(self, plugin_name: str, plugin_modules: Sequence[str]) -> PluginSpec:
        return get_plugin_manager(plugin_modules).get(self.kind, plugin_name)


def reloaded(trained: nn.Module, fresh: nn.Module) -> nn.Module:
    """``fresh`` after loading ``trained``'s state_dict through ``torch.save`` and
    ``torch.load(weights_only=True)``, as a checkpoint would carry it."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    ours = fresh.state_dict()
    resized = [k for k in state if k in ours and state[k].shape != ours[k].shape]
    try:
        fresh.load_state_dict(state)
    except RuntimeError:
        if not resized:
            raise
        raise AssertionError(
            f"state {', '.join(resized)} has shape {tuple(state[resized[0]].shape)} after "
            f"training but {tuple(ours[resized[0]].shape)} when built, so a checkpoint cannot "
            "load it: state sized at the first step must be resized in _load_from_state_dict "
            "(docs/writing-a-plugin.md, 'State sized at the first step')"
        ) from None
    return fresh
