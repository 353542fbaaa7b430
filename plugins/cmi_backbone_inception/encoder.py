"""InceptionTime (Ismail Fawaz et al. 2020), honouring the padding mask everywhere.

Padded frames (``mask == False``) never reach a real frame's output: they are zeroed before
every convolution (a real frame next to padding sees the same zeros as at the sequence edge),
they are ``-inf`` for the max-pool branch (as its own edge padding is), batch-norm statistics
skip them and the global pooling skips them. Hence an embedding does not move when padding
is added.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmi_backbone_inception import InceptionOptions
from cmi_core.backbone import PooledFrames
from cmi_core.layers import AttentionPool, InputNorm, MaskedBatchNorm1d, MeanPool, real_frames


class InceptionModule(nn.Module):
    """Bottleneck -> three convolutions, max-pool -> 1x1; concatenated -> BN -> ReLU."""

    def __init__(self, c_in: int, o: InceptionOptions) -> None:
        super().__init__()
        # the paper skips the bottleneck of a one-channel input; it has nothing to squeeze
        self.bottleneck = nn.Conv1d(c_in, o.bottleneck, 1, bias=False) if c_in > 1 else None
        width = o.bottleneck if c_in > 1 else c_in
        self.convs = nn.ModuleList(
            nn.Conv1d(width, o.n_filters, k, padding=k // 2, bias=False) for k in o.kernel_sizes()
        )
        self.pool_conv = nn.Conv1d(c_in, o.n_filters, 1, bias=False)
        self.norm = MaskedBatchNorm1d(4 * o.n_filters)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        padding = ~mask.unsqueeze(1)
        x = x.masked_fill(padding, 0.0)
        squeezed = x if self.bottleneck is None else self.bottleneck(x)  # no bias: 0 stays 0
        branches = [conv(squeezed) for conv in self.convs]
        pooled = F.max_pool1d(x.masked_fill(padding, float("-inf")), 3, stride=1, padding=1)
        branches.append(self.pool_conv(pooled.masked_fill(padding, 0.0)))
        return F.relu(self.norm(torch.cat(branches, dim=1), mask))


class Shortcut(nn.Module):
    """The residual path around three modules: 1x1 convolution -> BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.norm = MaskedBatchNorm1d(c_out)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.norm(self.conv(x), mask)


class InceptionTimeEncoder(PooledFrames):
    """``x [B, T, C]``, ``mask [B, T]`` (True = real frame) -> ``[B, 4 * n_filters]``."""

    def __init__(self, in_channels: int, o: InceptionOptions) -> None:
        super().__init__()
        self.out_dim = self.frame_dim = 4 * o.n_filters
        self.input_norm = InputNorm(in_channels) if o.input_norm else None
        widths = [in_channels] + [self.out_dim] * o.depth
        self.inception = nn.ModuleList(InceptionModule(c_in, o) for c_in in widths[:-1])
        stage_inputs = widths[0 : o.depth - o.depth % 3 : 3]  # one shortcut per 3 modules
        self.shortcuts = nn.ModuleList(Shortcut(c_in, self.out_dim) for c_in in stage_inputs)
        self.dropout = nn.Dropout1d(o.dropout)  # whole channels of [B, C, T]
        self.pool = AttentionPool(self.out_dim) if o.pooling == "attention" else MeanPool()

    def frames(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The last module's output ``[B, T, 4 * n_filters]`` and the real-frame mask."""
        mask = real_frames(mask)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # NaN or Inf in padding cannot leak
        if self.input_norm is not None:
            x = self.input_norm(x, mask)
        h = residual = x.transpose(1, 2)
        for i, module in enumerate(self.inception):
            h = module(h, mask)
            if i % 3 == 2:
                h = F.relu(h + self.shortcuts[i // 3](residual, mask))
                h = residual = self.dropout(h)
        return h.transpose(1, 2), mask
