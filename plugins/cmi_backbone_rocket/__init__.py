"""The ``rocket`` backbone: fixed random convolution kernels with PPV-type pooling, in PyTorch.

MiniRocket (Dempster, Schmidt & Webb, KDD 2021) and MultiRocket (Tan, Dempster, Bergmeir &
Webb, DMKD 2022) turn a series into thousands of features with fixed dilated kernels and
pooling over each kernel's output; a linear classifier on top is the strongest classical
baseline family for time-series classification. Here the kernels are buffers, the biases are
fitted once from the first training batch (as MiniRocket fits them from training examples),
and a trainable projection and the usual heads sit on top, so the model trains, predicts and
ensembles like any other backbone. This module only declares the options; torch is imported
when a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

import cmi_core
from cmi_core import at_least, field, in_range
from cmi_core.specs import BackboneSpec

POOLINGS = ("ppv", "mpv", "mipv", "lspv")


def distinct_positive(value: Sequence[int]) -> str | None:
    """Dilations: a non-empty list of distinct integers >= 1 (a repeat only duplicates)."""
    if not value or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in value):
        return f"must be a non-empty list of integers >= 1, got {list(value)!r}"
    return None if len(set(value)) == len(value) else f"has repeats: {list(value)!r}"


def poolings(value: Sequence[str]) -> str | None:
    """A non-empty subset of ``POOLINGS``, each once."""
    unknown = [p for p in value if p not in POOLINGS]
    if not value or unknown:
        return f"must be a non-empty list of {', '.join(POOLINGS)}; got {list(value)!r}"
    return None if len(set(value)) == len(value) else f"has repeats: {list(value)!r}"


@attrs.frozen
class RocketOptions:
    """Options of ``[model.rocket]`` for ``backbone = "rocket"``."""

    dilations: list[int] = field(
        [1, 2, 3, 4, 5, 6, 7], distinct_positive, "kernel dilations (receptive field 8d + 1)"
    )
    biases_per_kernel: int = field(3, at_least(1), "biases (quantiles) per kernel and dilation")
    pooling: list[str] = field(
        ["ppv", "mpv", "mipv", "lspv"], poolings, "features per bias: ppv | mpv | mipv | lspv"
    )
    difference: bool = field(True, None, "also convolve the first difference (MultiRocket)")
    max_channels: int = field(9, at_least(1), "most input channels one kernel sums over")
    ppv_softness: float = field(0.0, in_range(0, 10), "PPV step width / kernel output std; 0: hard")
    projection: int = field(256, at_least(0), "trainable linear projection width; 0: none")
    dropout: float = field(0.1, in_range(0, 0.9), "dropout on the standardised features")
    input_norm: bool = field(True, None, "standardise each input channel (no learned affine)")
    hydra_groups: int = field(
        0, at_least(0), "Hydra: groups of competing kernels per series and dilation; 0: none"
    )
    hydra_kernels: int = field(8, at_least(2), "Hydra: kernels competing in each group")
    hydra_dilations: list[int] = field(
        [1, 2, 4], distinct_positive, "Hydra dilations (Hydra: 2^i up to (length - 1) / 8)"
    )
    levels: int = field(
        0, in_range(0, 16), "per channel, its mean over this many spans of the frames; 0: none"
    )

    def n_series(self) -> int:
        """The series the kernels convolve: the input, and its first difference if asked."""
        return 2 if self.difference else 1

    def n_features(self, in_channels: int) -> int:
        """Per series (2 with the difference): 84 kernels x dilations x biases x poolings, and
        Hydra's groups x kernels x dilations x 2 counts; then channels x level spans."""
        rocket = 84 * len(self.dilations) * self.biases_per_kernel * len(self.pooling)
        hydra = self.hydra_groups * self.hydra_kernels * len(self.hydra_dilations) * 2
        return self.n_series() * (rocket + hydra) + in_channels * self.levels


def make_backbone(in_channels: int, options: RocketOptions) -> Any:
    from cmi_backbone_rocket.encoder import RocketEncoder

    return RocketEncoder(in_channels, options)


cmi_register_backbones = cmi_core.registering(
    BackboneSpec(
        name="rocket",
        summary="MiniRocket/MultiRocket fixed dilated kernels + PPV-type pooling + projection",
        factory=make_backbone,
        config_cls=RocketOptions,
    )
)
