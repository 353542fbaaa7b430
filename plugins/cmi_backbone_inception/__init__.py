"""The ``inception`` backbone: InceptionTime (Ismail Fawaz et al. 2020).

"InceptionTime: Finding AlexNet for time series classification", Data Mining and Knowledge
Discovery 34 (2020): stacked inception modules (a bottleneck, three convolutions of
decreasing kernel size and a max-pool branch, concatenated), a residual connection every
three modules, global pooling. The paper's network: 32 filters per branch, bottleneck 32,
kernels 40/20/10 (here odd, 39/19/9), depth 6. The defaults are smaller for a 2-core CPU.
All layers use 'same' padding and no striding, so any sequence length works.
This module only declares the options; torch is imported when a model is built.
"""

from __future__ import annotations

from typing import Any

import attrs

import cmi_core
from cmi_core import at_least, field, in_range, odd_at_least, one_of
from cmi_core.specs import BackboneSpec

POOLINGS = ("mean", "attention")


@attrs.frozen
class InceptionOptions:
    """Options of ``[model.inception]`` for ``backbone = "inception"``."""

    n_filters: int = field(24, at_least(1), "filters per branch; a module outputs 4 x this")
    bottleneck: int = field(24, at_least(1), "1x1 bottleneck width before the convolutions")
    kernel_size: int = field(19, odd_at_least(5), "largest kernel; the others are ~k/2, ~k/4")
    depth: int = field(6, at_least(1), "inception modules; a residual spans every 3")
    dropout: float = field(0.1, in_range(0, 0.9), "channel dropout after each residual stage")
    pooling: str = field("mean", one_of(*POOLINGS), "global mean (the paper) | attention")
    input_norm: bool = field(True, None, "standardise each input channel over real frames")

    def kernel_sizes(self) -> tuple[int, ...]:
        """The three branch kernels, each made odd so that 'same' padding is symmetric."""
        k = self.kernel_size
        return tuple(size // 2 * 2 + 1 for size in (k, k // 2, k // 4))


def make_backbone(in_channels: int, options: InceptionOptions) -> Any:
    from cmi_backbone_inception.encoder import InceptionTimeEncoder

    return InceptionTimeEncoder(in_channels, options)


cmi_register_backbones = cmi_core.registering(
    BackboneSpec(
        name="inception",
        summary="InceptionTime (Ismail Fawaz et al. 2020): multi-kernel inception modules",
        factory=make_backbone,
        config_cls=InceptionOptions,
        frames=True,
    )
)
