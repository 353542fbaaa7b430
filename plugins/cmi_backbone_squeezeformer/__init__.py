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
from cmi_core import at_least, field, in_range, odd_at_least, one_of
from cmi_core.specs import BackboneSpec

POOLINGS = ("mean", "cls", "attention")
DROPOUT_KINDS = ("channel", "element")
POSITIONS = ("start", "end", "none")


@attrs.frozen
class SqueezeformerOptions:
    """Options of ``[model.squeezeformer]``, used when ``backbone = "squeezeformer"``."""

    d_model: int = field(64, at_least(8), "width of the encoder")
    n_layers: int = field(2, at_least(1), "number of conformer blocks")
    n_heads: int = field(4, at_least(1), "attention heads (must divide d_model)")
    ff_dim: int = field(128, at_least(1), "hidden width of the feed-forward modules")
    kernel_size: int = field(
        31, odd_at_least(1), "depthwise convolution kernel (odd, 'same' padding)"
    )
    dropout: float = field(0.1, in_range(0, 0.9), "dropout on each module's output")
    dropout_kind: str = field(
        "channel", one_of(*DROPOUT_KINDS), "channel (one mask per sequence and channel) | element"
    )
    pooling: str = field("mean", one_of(*POOLINGS), "masked mean | cls | attention")
    pool_layers: int = field(1, at_least(1), "transformer layers over [CLS] + frames (cls)")
    positions: str = field(
        "start", one_of(*POSITIONS), "sinusoidal positions from the first real frame | end | none"
    )
    max_positions: int = field(5000, at_least(1), "longest sequence the positional table holds")
    input_norm: bool = field(False, None, "standardise each input channel over real frames")

    def __attrs_post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")


def make_backbone(in_channels: int, options: SqueezeformerOptions) -> Any:
    from cmi_backbone_squeezeformer.encoder import SqueezeformerEncoder

    return SqueezeformerEncoder(in_channels, options)


cmi_register_backbones = cmi_core.registering(
    BackboneSpec(
        name="squeezeformer",
        summary="Conformer-style encoder (FFN, masked MHSA, depthwise conv) with pooling",
        factory=make_backbone,
        config_cls=SqueezeformerOptions,
        frames=True,
    )
)
