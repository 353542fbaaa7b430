"""The ``resse_gru`` backbone: residual SE convolution blocks, a bidirectional GRU, attention.

The architecture of the strongest public notebooks of the CMI competition (1D residual
convolutions with squeeze-and-excitation, Hu et al. 2018, then a recurrent layer and attention
pooling). Convolutions use 'same' padding and no striding, so any sequence length works.
This module only declares the options; torch is imported when a model is built.
"""

from __future__ import annotations

from typing import Any

import attrs

import cmi_core
from cmi_core import at_least, field, in_range, odd_at_least
from cmi_core.specs import BackboneSpec


@attrs.frozen
class ResSEGRUOptions:
    """Options of ``[model.resse_gru]`` for ``backbone = "resse_gru"``."""

    channels: int = field(64, at_least(4), "width of the convolution blocks")
    n_blocks: int = field(3, at_least(1), "residual SE convolution blocks")
    kernel_size: int = field(5, odd_at_least(1), "convolution kernel (odd, 'same' padding)")
    se_reduction: int = field(4, at_least(1), "squeeze-and-excitation bottleneck: channels / r")
    gru_hidden: int = field(64, at_least(1), "GRU width per direction; embedding = 2 x this")
    gru_layers: int = field(1, at_least(1), "stacked bidirectional GRU layers")
    dropout: float = field(0.1, in_range(0, 0.9), "channel dropout after each block and the GRU")
    input_norm: bool = field(True, None, "standardise each input channel over real frames")

    def __attrs_post_init__(self) -> None:
        if self.se_reduction > self.channels:
            raise ValueError(
                f"se_reduction ({self.se_reduction}) must be <= channels ({self.channels})"
            )


def make_backbone(in_channels: int, options: ResSEGRUOptions) -> Any:
    from cmi_backbone_resse_gru.encoder import ResSEGRUEncoder

    return ResSEGRUEncoder(in_channels, options)


cmi_register_backbones = cmi_core.registering(
    BackboneSpec(
        name="resse_gru",
        summary="Residual SE-CNN blocks + BiGRU + attention pooling (top CMI notebooks)",
        factory=make_backbone,
        config_cls=ResSEGRUOptions,
        frames=True,
    )
)
