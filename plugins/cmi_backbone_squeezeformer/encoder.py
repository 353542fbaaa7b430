"""The CMISqueezeformer encoder (docs/architecture.md), honouring the padding mask everywhere.

Padded frames (``mask == False``) never reach a real frame's output: attention ignores them as
keys, they are zeroed before the depthwise convolution (so a real frame next to padding sees
the same zeros as at the sequence edge), batch-norm statistics skip them, pooling skips them,
and positions count real frames only. Hence an embedding does not move when padding is added.

Dropout is cheap by design: drawing one random number per element was ~18 % of a CPU step
(docs/benchmarks.md; 2.5 ms per [64, 128, 64] mask on 2 cores). Each module's output gets channel
dropout instead (one mask per sequence and channel, shared over time, like Keras'
SpatialDropout1D, common in this competition's public models): 128x fewer random numbers.
There is none inside the wide feed-forward layer or on the attention weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmi_backbone_squeezeformer import SqueezeformerOptions
from cmi_core.backbone import Backbone


class ChannelDropout(nn.Module):
    """Zero whole channels of ``[B, T, C]`` per sequence (the same frames-wide mask)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, h: Tensor) -> Tensor:
        if not self.training:
            return h
        keep = torch.empty(h.shape[0], 1, h.shape[2], device=h.device, dtype=h.dtype)
        return h * keep.bernoulli_(1.0 - self.p).div_(1.0 - self.p)


def _dropout(p: float) -> nn.Module:
    return ChannelDropout(p) if p > 0 else nn.Identity()


def sinusoidal_table(positions: int, d_model: int) -> Tensor:
    """The fixed sinusoidal positional encoding ``[positions, d_model]``."""
    position = torch.arange(positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(positions, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : d_model // 2]
    return table


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over ``[B, C, T]`` whose training statistics use real frames only.

    Plain BatchNorm would count padded frames, so its statistics would depend on how much
    padding a batch has. Evaluation uses the running statistics, frame by frame.
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        if not self.training:
            return super().forward(x)
        weight = mask.unsqueeze(1).to(x.dtype)  # [B, 1, T]
        count = weight.sum().clamp(min=1.0)
        mean = (x * weight).sum(dim=(0, 2)) / count
        centred = x - mean[:, None]
        var = (centred.square() * weight).sum(dim=(0, 2)) / count
        self._update_running_stats(mean, var, count)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return centred * scale[:, None] + self.bias[:, None]

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        self.num_batches_tracked += 1
        momentum = self.momentum or 1.0 / float(self.num_batches_tracked)  # None: cumulative
        unbiased = var * count / (count - 1).clamp(min=1.0)
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(unbiased, momentum)


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
        h = F.silu(self.batch_norm(self.depthwise(h), mask))
        return self.pointwise_out(h.transpose(1, 2))


class ConformerBlock(nn.Module):
    """FFN -> MHSA -> conv -> FFN, each with a full residual (as in the original)."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, kernel: int, p: float) -> None:
        super().__init__()
        self.ff1 = FeedForward(d_model, ff_dim)
        self.attention = SelfAttention(d_model, n_heads)
        self.conv = ConvModule(d_model, kernel)
        self.ff2 = FeedForward(d_model, ff_dim)
        self.dropout = _dropout(p)

    def forward(self, h: Tensor, mask: Tensor, attn_mask: Tensor) -> Tensor:
        h = h + self.dropout(self.ff1(h))
        h = h + self.dropout(self.attention(h, attn_mask))
        h = h + self.dropout(self.conv(h, mask))
        return h + self.dropout(self.ff2(h))


class MeanPool(nn.Module):
    """Mean over real frames."""

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        weight = mask.unsqueeze(-1).to(h.dtype)
        return (h * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1.0)


class AttentionPool(nn.Module):
    """A learned score per frame, softmax over real frames, weighted sum."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = nn.Linear(d_model, 1)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        return torch.einsum("bt,btd->bd", scores.softmax(dim=1), h)


class ClsPool(nn.Module):
    """A learned [CLS] token in front, a small transformer over it and the real frames.

    Replaces the original's HuggingFace BERT (whose 7.8M-parameter word-embedding table was
    never used); the encoder has already added positions, so none are added here.
    """

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, layers: int, p: float) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.attention = nn.ModuleList(SelfAttention(d_model, n_heads) for _ in range(layers))
        self.feed_forward = nn.ModuleList(FeedForward(d_model, ff_dim) for _ in range(layers))
        self.dropout = _dropout(p)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1)
        mask = F.pad(mask, (1, 0), value=True)
        attn_mask = mask[:, None, None, :]
        for attention, feed_forward in zip(self.attention, self.feed_forward, strict=True):
            h = h + self.dropout(attention(h, attn_mask))
            h = h + self.dropout(feed_forward(h))
        return self.norm(h[:, 0])


class SqueezeformerEncoder(Backbone):
    """``x [B, T, C]``, ``mask [B, T]`` (True = real frame) -> ``[B, d_model]``."""

    def __init__(self, in_channels: int, o: SqueezeformerOptions) -> None:
        super().__init__()
        self.out_dim = o.d_model
        self.projection = nn.Linear(in_channels, o.d_model)
        self.register_buffer(
            "positional", sinusoidal_table(o.max_positions, o.d_model), persistent=False
        )
        self.input_dropout = _dropout(o.dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(o.d_model, o.n_heads, o.ff_dim, o.kernel_size, o.dropout)
            for _ in range(o.n_layers)
        )
        self.norm = nn.LayerNorm(o.d_model)
        self.pool = _pooling(o)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        mask = mask | ~mask.any(dim=1, keepdim=True)  # no real frame: use all, avoid NaN
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # NaN or Inf in padding cannot leak
        positions = (mask.cumsum(dim=1) - 1).clamp(0, self.positional.shape[0] - 1)
        h = self.input_dropout(self.projection(x) + F.embedding(positions, self.positional))
        attn_mask = mask[:, None, None, :]
        for block in self.blocks:
            h = block(h, mask, attn_mask)
        return self.pool(self.norm(h), mask)


def _pooling(o: SqueezeformerOptions) -> nn.Module:
    if o.pooling == "cls":
        return ClsPool(o.d_model, o.n_heads, o.ff_dim, o.pool_layers, o.dropout)
    if o.pooling == "attention":
        return AttentionPool(o.d_model)
    return MeanPool()
