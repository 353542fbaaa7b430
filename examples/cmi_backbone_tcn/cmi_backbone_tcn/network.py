"""The network of the ``tcn`` backbone, built from ``cmi_core.layers`` only.

Padded frames must not reach a real frame's output (the contract kit checks it). A
convolution mixes neighbouring frames, so each block zeroes the padded frames before it
convolves, and normalises with statistics over real frames only; the pooling averages real
frames only.
"""

from __future__ import annotations

from torch import Tensor, nn

from cmi_backbone_tcn import TcnOptions
from cmi_core import Backbone
from cmi_core.layers import ChannelDropout, InputNorm, MaskedBatchNorm1d, MeanPool, real_frames


class Block(nn.Module):
    """``x [B, C, T]`` -> ``[B, C, T]``: dilated convolution, masked batch norm, GELU, dropout,
    plus the input (a residual block)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=padding, dilation=dilation)
        self.norm = MaskedBatchNorm1d(channels)
        self.act = nn.GELU()
        self.dropout = ChannelDropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask.unsqueeze(1).to(x.dtype)  # [B, 1, T]
        h = self.act(self.norm(self.conv(x * keep), mask))
        h = self.dropout(h.transpose(1, 2)).transpose(1, 2)  # ChannelDropout takes [B, T, C]
        return (x + h) * keep


class TemporalConvNet(Backbone):
    """``x [B, T, C_in]``, ``mask [B, T]`` -> ``[B, channels]``."""

    def __init__(self, in_channels: int, options: TcnOptions) -> None:
        super().__init__()
        self.out_dim = options.channels
        self.input_norm = InputNorm(in_channels)
        self.stem = nn.Linear(in_channels, options.channels)
        self.blocks = nn.ModuleList(
            Block(options.channels, options.kernel_size, 2**i, options.dropout)
            for i in range(options.levels)
        )
        self.pool = MeanPool()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = real_frames(mask)
        x = x * mask.unsqueeze(-1).to(x.dtype)  # padding may hold anything: zero it first
        h = self.stem(self.input_norm(x, mask)).transpose(1, 2)  # [B, C, T]
        for block in self.blocks:
            h = block(h, mask)
        return self.pool(h.transpose(1, 2), mask)
