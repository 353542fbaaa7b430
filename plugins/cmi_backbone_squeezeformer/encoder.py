"""The CMISqueezeformer encoder (docs/backbones.md), honouring the padding mask everywhere.

Padded frames (``mask == False``) never reach a real frame's output: attention ignores them as
keys, they are zeroed before the depthwise convolution (so a real frame next to padding sees
the same zeros as at the sequence edge), batch-norm statistics skip them, pooling skips them,
and positions count real frames only. Hence an embedding does not move when padding is added.

Dropout is cheap by design: each module's output gets channel dropout (``cmi_core.layers``;
one mask per sequence and channel, shared over time, like Keras' SpatialDropout1D, common in
this competition's public models). There is none inside the wide feed-forward layer or on the
attention weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmi_backbone_squeezeformer import SqueezeformerOptions
from cmi_core.backbone import PooledFrames
from cmi_core.layers import (
    AttentionPool,
    ChannelDropout,
    InputNorm,
    MaskedBatchNorm1d,
    MeanPool,
    real_frames,
)


def _dropout(o: SqueezeformerOptions) -> nn.Module:
    if o.dropout == 0:
        return nn.Identity()
    return ChannelDropout(o.dropout) if o.dropout_kind == "channel" else nn.Dropout(o.dropout)


def sinusoidal_table(positions: int, d_model: int) -> Tensor:
    """The fixed sinusoidal positional encoding ``[positions, d_model]``."""
    position = torch.arange(positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(positions, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : d_model // 2]
    return table


def frame_positions(mask: Tensor, origin: str, limit: int) -> Tensor:
    """Each frame's index among the real frames, from the first (``start``) or last (``end``).

    Counting real frames only makes positions independent of padding; counting from the end
    gives the gesture, which ends every sequence, the same positions whatever came before.
    """
    counted = mask.cumsum(dim=1) if origin == "start" else mask.flip(1).cumsum(dim=1).flip(1)
    return (counted - 1).clamp(0, limit - 1)


class FeedForward(nn.Module):
    """Pre-LN feed-forward module: LN -> Linear -> SiLU -> Linear."""

    def __init__(self, d_model: int, ff_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, ff_dim),
            nn.SiLU(),
            nn.Linear(ff_dim, d_model),
        )

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class SelfAttention(nn.Module):
    """Pre-LN multi-head self-attention; ``attn_mask [B, 1, 1, T]`` is True for real keys."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, h: Tensor, attn_mask: Tensor) -> Tensor:
        batch, length, width = h.shape
        qkv = self.qkv(self.norm(h)).view(batch, length, 3, self.n_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, heads, T, head_dim]
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(context.transpose(1, 2).reshape(batch, length, width))


class ConvModule(nn.Module):
    """LN -> pointwise + GLU -> zero padding -> depthwise conv -> masked BN -> SiLU -> pointwise."""

    def __init__(self, d_model: int, kernel_size: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(
            d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model, bias=False
        )
        self.batch_norm = MaskedBatchNorm1d(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        h = F.glu(self.pointwise_in(self.norm(h)), dim=-1)
        h = (h * mask.unsqueeze(-1).to(h.dtype)).transpose(1, 2)  # [B, C, T], padding = 0
        h = F.silu(self.batch_norm(self._depthwise(h), mask))
        return self.pointwise_out(h.transpose(1, 2))

    def _depthwise(self, h: Tensor) -> Tensor:
        """``self.depthwise`` as a 2-D convolution on a ``[B, C, 1, T]`` view of ``h``.

        ``h`` is a transposed ``[B, T, C]`` tensor, so this view is channels-last: oneDNN takes
        it as it is, where ``Conv1d`` copies it to ``[B, C, T]`` first and runs a slower kernel.
        The same sums in the same order: bit-identical outputs and gradients, 2.4x faster
        forward + backward on a CPU (docs/benchmarks.md, "Fold time").
        """
        conv = self.depthwise
        weight = conv.weight.unsqueeze(2)  # [C, 1, K] -> [C, 1, 1, K]
        padding = (0, conv.padding[0])
        out = F.conv2d(h.unsqueeze(2), weight, conv.bias, padding=padding, groups=conv.groups)
        return out.squeeze(2).contiguous()


class ConformerBlock(nn.Module):
    """FFN -> MHSA -> conv -> FFN, each with a full residual (as in the original)."""

    def __init__(self, o: SqueezeformerOptions) -> None:
        super().__init__()
        self.ff1 = FeedForward(o.d_model, o.ff_dim)
        self.attention = SelfAttention(o.d_model, o.n_heads)
        self.conv = ConvModule(o.d_model, o.kernel_size)
        self.ff2 = FeedForward(o.d_model, o.ff_dim)
        self.dropout = _dropout(o)

    def forward(self, h: Tensor, mask: Tensor, attn_mask: Tensor) -> Tensor:
        h = h + self.dropout(self.ff1(h))
        h = h + self.dropout(self.attention(h, attn_mask))
        h = h + self.dropout(self.conv(h, mask))
        return h + self.dropout(self.ff2(h))


class ClsPool(nn.Module):
    """A learned [CLS] token in front, a small transformer over it and the real frames.

    Replaces the original's HuggingFace BERT (whose 7.8M-parameter word-embedding table was
    never used); the encoder has already added positions, so none are added here.
    """

    def __init__(self, o: SqueezeformerOptions) -> None:
        super().__init__()
        layers = range(o.pool_layers)
        self.cls = nn.Parameter(torch.randn(1, 1, o.d_model) * 0.02)
        self.attention = nn.ModuleList(SelfAttention(o.d_model, o.n_heads) for _ in layers)
        self.feed_forward = nn.ModuleList(FeedForward(o.d_model, o.ff_dim) for _ in layers)
        self.dropout = _dropout(o)
        self.norm = nn.LayerNorm(o.d_model)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1)
        mask = F.pad(mask, (1, 0), value=True)
        attn_mask = mask[:, None, None, :]
        for attention, feed_forward in zip(self.attention, self.feed_forward, strict=True):
            h = h + self.dropout(attention(h, attn_mask))
            h = h + self.dropout(feed_forward(h))
        return self.norm(h[:, 0])


class SqueezeformerEncoder(PooledFrames):
    """``x [B, T, C]``, ``mask [B, T]`` (True = real frame) -> ``[B, d_model]``."""

    def __init__(self, in_channels: int, o: SqueezeformerOptions) -> None:
        super().__init__()
        self.out_dim = self.frame_dim = o.d_model
        self.input_norm = InputNorm(in_channels) if o.input_norm else None
        self.projection = nn.Linear(in_channels, o.d_model)
        self.register_buffer(
            "positional", sinusoidal_table(o.max_positions, o.d_model), persistent=False
        )
        self.positions, self.limit = o.positions, o.max_positions
        self.input_dropout = _dropout(o)
        self.blocks = nn.ModuleList(ConformerBlock(o) for _ in range(o.n_layers))
        self.norm = nn.LayerNorm(o.d_model)
        self.pool = _pooling(o)

    def frames(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The normalised per-frame output ``[B, T, d_model]`` and the real-frame mask."""
        mask = real_frames(mask)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # NaN or Inf in padding cannot leak
        if self.input_norm is not None:
            x = self.input_norm(x, mask)
        h = self.projection(x)
        if self.positions != "none":
            h = h + F.embedding(frame_positions(mask, self.positions, self.limit), self.positional)
        h = self.input_dropout(h)
        attn_mask = mask[:, None, None, :]
        for block in self.blocks:
            h = block(h, mask, attn_mask)
        return self.norm(h), mask


def _pooling(o: SqueezeformerOptions) -> nn.Module:
    if o.pooling == "cls":
        return ClsPool(o)
    if o.pooling == "attention":
        return AttentionPool(o.d_model)
    return MeanPool()
