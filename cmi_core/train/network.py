"""The network: backbone + demographics embedding + three heads, an ``nn.Module`` without
Lightning. Training wraps it in the LightningModule (:mod:`cmi_core.train.model`); prediction
builds and loads only this (:mod:`cmi_core.predict.fold_models`).

Its state-dict keys (``backbone.*``, ``demographics.*``, ``heads.*``) are those of every fold
checkpoint, so runs written before the network was split from the training module still load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cmi_core.backbone import Backbone
from cmi_core.builders import build_task, make_tasks
from cmi_core.config import Config
from cmi_core.data.features import feature_names
from cmi_core.errors import ConfigError
from cmi_core.task import Task
from cmi_core.train.tof_branch import backbone_channels, image_branch
from cmi_core.weighting import active_terms

DEMOGRAPHICS_DIM = 16


class CMINetwork(nn.Module):
    """Predicts the 18-class gesture (argmax of the ``multiclass`` head); the other tasks'
    heads serve auxiliary losses or, for prediction-time tasks, extra outputs.

    ``tasks``: the configured tasks, whose heads are built in their order (so a seed
    initialises the same weights as before tasks were plugins); left out, exp025's
    ``multiclass``, ``binary`` and (with ``nine_class_head``) ``nine_class`` and ``kl``; the
    model computes the losses of its weighting's terms among them.
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        tasks: Sequence[Task] | None = None,
        nine_class_head: bool = True,
        n_demographics: int = 7,
        use_demographics: bool = True,
        head_dropout: float = 0.2,
        image_branch: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.image_branch = image_branch
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
        if tasks is None:
            tasks = [build_task(name) for name in active_terms(nine_class_head, kl_weight=1.0)]
        self.tasks: tuple[Task, ...] = tuple(tasks)
        self.pooled_dim = features
        self.frame_dim = _frame_dim(backbone, self.tasks)
        self.heads = nn.ModuleDict()
        for task in self.tasks:
            in_dim = self.frame_dim if task.level == "frame" else features
            layer = task.build_head(in_dim, head_dropout)
            if layer is not None:
                self.heads[task.name] = layer

    def forward(
        self, x: Tensor, mask: Tensor, demographics: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Logits by task head: ``multiclass [B, 18]``, ``binary [B]``, ``nine_class [B, 9]``,
        ..."""
        return self.heads_forward(self.shared_representation(x, mask, demographics))

    def shared_representation(
        self, x: Tensor, mask: Tensor, demographics: Tensor | None = None
    ) -> Tensor:
        """The heads' input ``[B, D]``: backbone embedding + demographics embedding (the
        ToF images, where the run reads them, through the image branch first).

        With per-frame tasks, ``[B, D + T * frame_dim]``: the per-frame output flattened after
        it, so the shared representation stays one tensor (what gradient-level strategies
        differentiate at); :meth:`heads_forward` splits it again.
        """
        if self.image_branch is not None:
            x = self.image_branch(x, mask)
        frames = None
        if self.frame_dim is None:
            features = self.backbone(x, mask)
        else:
            features, frames = self.backbone.encode(x, mask)
        if self.demographics is not None:
            if demographics is None:  # as exp024: missing demographics count as zeros
                in_features = self.demographics[0].in_features
                demographics = features.new_zeros(features.shape[0], in_features)
            features = torch.cat([features, self.demographics(demographics)], dim=-1)
        if frames is None:
            return features
        return torch.cat([features, frames.flatten(1)], dim=-1)

    def heads_forward(self, features: Tensor) -> dict[str, Tensor]:
        pooled, frames = self._split(features)
        return {
            task.name: task.logits(
                self.heads[task.name](frames if task.level == "frame" else pooled)
            )
            for task in self.tasks
            if task.name in self.heads
        }

    def _split(self, features: Tensor) -> tuple[Tensor, Tensor | None]:
        """:meth:`shared_representation`'s tensor as ``([B, D], [B, T, frame_dim] | None)``."""
        if self.frame_dim is None:
            return features, None
        pooled, flat = features.split([self.pooled_dim, features.shape[1] - self.pooled_dim], 1)
        return pooled, flat.view(features.shape[0], -1, self.frame_dim)

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every task shares: the backbone and the demographics MLP."""
        shared = list(self.backbone.parameters())
        if self.image_branch is not None:
            shared += list(self.image_branch.parameters())
        if self.demographics is not None:
            shared += list(self.demographics.parameters())
        return [p for p in shared if p.requires_grad]


def backbone_in_channels(cfg: Config, in_channels: int) -> int:
    """The channels the backbone receives: the input's, with the ToF images (if the config
    reads them) replaced by the image branch's embedding."""
    names = feature_names(cfg.data.features)
    return in_channels - len(names) + backbone_channels(names, cfg.model.tof_embed_dim)


def _frame_dim(backbone: Backbone, tasks: Sequence[Task]) -> int | None:
    """The per-frame width the frame tasks' heads get; None without frame tasks."""
    frame_tasks = [t.name for t in tasks if t.level == "frame"]
    if not frame_tasks:
        return None
    if getattr(backbone, "frame_dim", None) is None:
        raise ConfigError(
            [
                f"task {frame_tasks[0]!r} needs a per-frame output; "
                f"backbone {type(backbone).__name__} gives none"
            ]
        )
    return int(backbone.frame_dim)


def network_for(cfg: Config, backbone: Backbone) -> CMINetwork:
    """The configured network around an already built ``backbone`` (the caller builds it first,
    so the random initialisation runs in the order every earlier run used)."""
    return CMINetwork(
        backbone,
        tasks=make_tasks(cfg.loss, modules=cfg.plugins.modules),
        use_demographics=cfg.model.demographics,
        head_dropout=cfg.model.head_dropout,
        image_branch=image_branch(feature_names(cfg.data.features), cfg.model.tof_embed_dim),
    )
