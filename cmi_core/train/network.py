"""The network: backbone + demographics embedding + three heads, an ``nn.Module`` without
Lightning. Training wraps it in the LightningModule (:mod:`cmi_core.train.model`); prediction
builds and loads only this (:mod:`cmi_core.predict.fold_models`).

Its state-dict keys (``backbone.*``, ``demographics.*``, ``heads.*``) are those of every fold
checkpoint, so runs written before the network was split from the training module still load.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cmi_core.backbone import Backbone
from cmi_core.config import Config
from cmi_core.data.schema import GESTURES, NINE_CLASSES

DEMOGRAPHICS_DIM = 16


def head(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    """LN -> Dropout -> Linear -> SiLU -> Dropout -> Linear, as in exp024."""
    return nn.Sequential(
        nn.LayerNorm(in_dim),
        nn.Dropout(dropout),
        nn.Linear(in_dim, hidden),
        nn.SiLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, out_dim),
    )


class CMINetwork(nn.Module):
    """Predicts the 18-class gesture (argmax of the 18-class head); the binary and 9-class heads
    serve the auxiliary tasks."""

    def __init__(
        self,
        backbone: Backbone,
        *,
        nine_class_head: bool = True,
        n_demographics: int = 7,
        use_demographics: bool = True,
        head_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.demographics = (
            nn.Sequential(
                nn.Linear(n_demographics, 32),
                nn.Mish(),
                nn.Dropout(head_dropout),
                nn.Linear(32, DEMOGRAPHICS_DIM),
                nn.Mish(),
                nn.Dropout(head_dropout),
            )
            if use_demographics
            else None
        )
        features = backbone.out_dim + (DEMOGRAPHICS_DIM if use_demographics else 0)
        self.heads = nn.ModuleDict(
            {
                "multiclass": head(features, 128, len(GESTURES), head_dropout),
                "binary": head(features, 64, 1, head_dropout),
            }
        )
        if nine_class_head:
            self.heads["nine_class"] = head(features, 128, len(NINE_CLASSES), head_dropout)

    def forward(
        self, x: Tensor, mask: Tensor, demographics: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Logits by head: ``multiclass [B, 18]``, ``binary [B]``, ``nine_class [B, 9]``."""
        return self.heads_forward(self.shared_representation(x, mask, demographics))

    def shared_representation(
        self, x: Tensor, mask: Tensor, demographics: Tensor | None = None
    ) -> Tensor:
        """The heads' input ``[B, D]``: backbone embedding + demographics embedding."""
        features = self.backbone(x, mask)
        if self.demographics is not None:
            if demographics is None:  # as exp024: missing demographics count as zeros
                in_features = self.demographics[0].in_features
                demographics = features.new_zeros(features.shape[0], in_features)
            features = torch.cat([features, self.demographics(demographics)], dim=-1)
        return features

    def heads_forward(self, features: Tensor) -> dict[str, Tensor]:
        outputs = {name: layer(features) for name, layer in self.heads.items()}
        outputs["binary"] = outputs["binary"].squeeze(-1)
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every task shares: the backbone and the demographics MLP."""
        shared = list(self.backbone.parameters())
        if self.demographics is not None:
            shared += list(self.demographics.parameters())
        return [p for p in shared if p.requires_grad]


def network_for(cfg: Config, backbone: Backbone) -> CMINetwork:
    """The configured network around an already built ``backbone`` (the caller builds it first,
    so the random initialisation runs in the order every earlier run used)."""
    return CMINetwork(
        backbone,
        nine_class_head=cfg.loss.nine_class_head_enabled,
        use_demographics=cfg.model.demographics,
        head_dropout=cfg.model.head_dropout,
    )
