"""Each channel's level over spans of the real frames: what the fixed kernels cannot see.

Every MiniRocket kernel sums to zero, Hydra's kernels are demeaned and the first difference
drops the mean, so a constant added to a channel changes a kernel's output only where it
reaches past the sequence's edge into zero padding: the sensor's orientation against gravity
(a posture: sitting, standing, lying) is all but invisible to them. ``levels`` spans split
each sequence's real frames into equal parts in time order and give the mean of every
(standardised) channel over each part, so a transition's posture before and after is a
feature. Padding never counts; a sequence shorter than the spans leaves the spans it cannot
fill at 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LevelFeatures(nn.Module):
    """``x [B, T, C]``, ``mask [B, T]`` (bool) -> ``[B, C * spans]``: channel means per span."""

    def __init__(self, spans: int) -> None:
        super().__init__()
        self.spans = spans

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        length = mask.sum(dim=1, keepdim=True).clamp(min=1)
        rank = mask.cumsum(dim=1) - 1  # each real frame's place among the real frames
        span = torch.div(rank * self.spans, length, rounding_mode="floor").clamp(0, self.spans - 1)
        weight = F.one_hot(span, self.spans).to(x.dtype) * mask.unsqueeze(-1).to(x.dtype)
        sums = torch.einsum("btc,bts->bcs", x, weight)
        return (sums / weight.sum(dim=1).clamp(min=1).unsqueeze(1)).flatten(1)
