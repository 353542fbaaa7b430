"""The ``tcn`` backbone: a small dilated temporal convolution network (the worked example of
docs/writing-a-plugin.md, "A new backbone").

This module only declares the plugin, so ``cmi plugins`` and ``cmi check`` never import torch;
the network lives in ``network.py`` and is imported when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import BackboneSpec, at_least, field, in_range, odd_at_least

if TYPE_CHECKING:
    from cmi_core import Backbone


@attrs.frozen
class TcnOptions:
    """Options of ``[model.tcn]``."""

    channels: int = field(64, at_least(1), "channels of every convolution")
    kernel_size: int = field(5, odd_at_least(3), "kernel size (odd: centred, no shift)")
    levels: int = field(3, at_least(1), "residual blocks; block i is dilated 2**i")
    dropout: float = field(0.1, in_range(0.0, 0.9), "channel dropout inside each block")


def make_backbone(in_channels: int, options: TcnOptions) -> Backbone:
    from cmi_backbone_tcn.network import TemporalConvNet

    return TemporalConvNet(in_channels, options)


@cmi_core.hookimpl
def cmi_register_backbones() -> list[BackboneSpec]:
    return [
        BackboneSpec(
            name="tcn",
            summary="dilated temporal convolutions with masked batch norm, mean pooled",
            factory=make_backbone,
            config_cls=TcnOptions,
        )
    ]
