"""A test-only backbone without BatchNorm or dropout, registered through ``plugins.modules``.

Every shipped backbone normalises with batch statistics, which DDP computes per process, so a
run split over processes is not the same arithmetic as one process on the union batch. This
per-frame linear layer with a masked mean is, which lets the multi-node test compare weights.
"""

from __future__ import annotations

from typing import Any

import attrs

import cmi_core
from cmi_core import BackboneSpec, at_least, field


@attrs.frozen
class FlatOptions:
    width: int = field(16, at_least(1), "embedding width")


def make_backbone(in_channels: int, options: FlatOptions) -> Any:
    """A frame-wise ``Linear -> tanh`` and a mean over real frames (mask-safe, no batch stats)."""
    from torch import Tensor, nn

    from cmi_core.backbone import Backbone
    from cmi_core.layers import MeanPool

    class Flat(Backbone):
        def __init__(self) -> None:
            super().__init__()
            self.out_dim = options.width
            self.frame = nn.Linear(in_channels, options.width)
            self.pool = MeanPool()

        def forward(self, x: Tensor, mask: Tensor) -> Tensor:
            return self.pool(self.frame(x).tanh(), mask)

    return Flat()


@cmi_core.hookimpl
def cmi_register_backbones() -> list[BackboneSpec]:
    return [
        BackboneSpec(
            name="flat",
            summary="test only: frame-wise linear layer and a masked mean",
            factory=make_backbone,
            config_cls=FlatOptions,
        )
    ]
