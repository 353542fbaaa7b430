"""The ``squeezeformer`` backbone: the CMISqueezeformer encoder of exp024/exp025.

Conformer-style blocks (FFN, self-attention with a key-padding mask, depthwise convolution,
FFN) and a sequence pooling. The defaults are sized for a 2-core CPU (~130k parameters); the
original GPU size is ``d_model = 256, n_layers = 8, n_heads = 8, ff_dim = 1024``.
This module only declares the options; torch is imported when a model is built.
"""

from __future__ import annotations

from typing import Any

import attrs

import cmi_core
from cmi_core import at_least, field, in_range, one_of
from cmi_core.specs import BackboneSpec

POOLINGS = ("mean", "cls", "attention")


def _odd(value: int) -> str | None:
    return None if value >= 1 and value % 2 == 1 else f"must be an odd number >= 1, got {value}"


@attrs.frozen
class SqueezeformerOptions:
    """Options of ``[model.squeezeformer]``, used when ``backbone = "squeezeformer"``."""

    d_model: int = field(64, at_least(8), "width of the encoder")
    n_layers: int = field(2, at_least(1), "number of conformer blocks")
    n_heads: int = field(4, at_least(1), "attention heads (must divide d_model)")
    ff_dim: int = field(128, at_least(1), "hidden width of the feed-forward modules")
    kernel_size: int = field(31, _odd, "depthwise convolution kernel (odd, 'same' padding)")
    dropout: float = field(0.1, in_range(0, 0.9), "dropout on each module's output")
    pooling: str = field("mean", one_of(*POOLINGS), "masked mean | cls | attention")
    pool_layers: int = field(1, at_least(1), "transformer layers over [CLS] + frames (cls)")
    max_positions: int = field(5000, at_least(1), "longest sequence the positional table holds")

    def __attrs_post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")


def make_backbone(in_channels: int, options: SqueezeformerOptions) -> Any:
    from cmi_backbone_squeezeformer.encoder import SqueezeformerEncoder

    return SqueezeformerEncoder(in_channels, options)


@cmi_core.hookimpl
def cmi_register_backbones() -> list[BackboneSpec]:
    return [
        BackboneSpec(
            name="squeezeformer",
            summary="Conformer-style encoder (FFN, masked MHSA, depthwise conv) with pooling",
            factory=make_backbone,
            config_cls=SqueezeformerOptions,
        )
    ]
