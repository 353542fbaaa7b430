"""Deliberately broken plugins: each passed the contract kit before issue 13.

Registered as a local module (``plugin_modules``); ``test_contract_kit.py`` checks that the
kit fails each one, on the one check that names its fault. Apart from that fault each weighting
is a sound Kendall-style strategy (``sum exp(-s_i) L_i + s_i``) or fixed-weight sum, and the
backbone a sound masked mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import cmi_core
from cmi_core import field, ordered_pair
from cmi_core.backbone import Backbone
from cmi_core.specs import BackboneSpec, TaskSpec, WeightingSpec
from cmi_core.weighting import FixedWeights, LossWeighting, weighted_sum


@attrs.frozen
class NoOptions:
    """The broken plugins have no options, except ``unnamed_clamp``."""


@attrs.frozen
class BoundsOptions:
    """A clamp option that is not called ``clamp``."""

    bounds: list[float] = field([-2.0, 2.0], ordered_pair, "range of every s_i")


class ZeroTotal(LossWeighting):
    """``0 * sum(L)``: finite, with a graph, and trains nothing."""

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return 0.0 * torch.stack([losses[t] for t in self.terms]).sum()


class NanAboveTenMillion(LossWeighting):
    """The fixed formula, but a loss above 1e7 turns into NaN (an overflow in disguise)."""

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        guarded = {t: torch.where(v > 1e7, torch.nan, v) for t, v in losses.items()}
        return weighted_sum(guarded, self.fixed.for_terms(self.terms))


class Kendall(LossWeighting):
    """``sum exp(-s_i) L_i + s_i`` with ``s_i`` in ``[low, high]``: the sound base."""

    learns = True

    def __init__(
        self, terms: Sequence[str], fixed: FixedWeights, low: float = -10.0, high: float = 10.0
    ) -> None:
        super().__init__(terms, fixed)
        self.low, self.high = low, high
        self.s = nn.Parameter(torch.zeros(len(self.terms)))

    def log_variances(self) -> Tensor:
        return self.s.clamp(self.low, self.high)

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        s = self.log_variances()
        values = torch.stack([losses[t] for t in self.terms])
        return (torch.exp(-s) * values + s).sum()

    def after_optimizer_step(self) -> None:
        self.clamp_parameters_(self.low, self.high)

    def parameter_range(self) -> tuple[float, float]:
        return self.low, self.high

    def reference_total(self, losses: Mapping[str, float]) -> float:
        total = 0.0
        for term, raw in zip(self.terms, self.s.tolist(), strict=True):
            s = min(max(raw, self.low), self.high)
            total += math.exp(-s) * losses[term] + s
        return total


class SignError(Kendall):
    """``exp(-s) L - s``: the regulariser's sign is wrong, so the weights collapse."""

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        s = self.log_variances()
        values = torch.stack([losses[t] for t in self.terms])
        return (torch.exp(-s) * values - s).sum()


class UnclampedForward(Kendall):
    """Declares its range (option ``bounds``) but the forward pass never clamps to it."""

    def log_variances(self) -> Tensor:
        return self.s


class BufferLearner(Kendall):
    """Keeps its ``s_i`` in a buffer: it gets no gradient, so the "learned" weights never move."""

    def __init__(self, terms: Sequence[str], fixed: FixedWeights) -> None:
        LossWeighting.__init__(self, terms, fixed)
        self.low, self.high = -10.0, 10.0
        self.register_buffer("s", torch.zeros(len(self.terms)))


class ForgetfulBackbone(Backbone):
    """A masked mean whose scale adapts in training but is a plain attribute: not saved."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.out_dim = 4
        self.proj = nn.Linear(in_channels, self.out_dim)
        self.scale = torch.ones(())

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        weight = mask.unsqueeze(-1).to(x.dtype)
        mean = (self.proj(x) * weight).sum(1) / weight.sum(1).clamp_min(1.0)
        if self.training:
            self.scale = 0.9 * self.scale + 0.1 * mean.detach().abs().mean()
        return mean * self.scale


class LazyStateBackbone(Backbone):
    """A masked mean scaled by statistics whose size is known only at the first step: the
    buffer starts empty, so a fresh module cannot load a trained one's ``state_dict``."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.out_dim = 4
        self.proj = nn.Linear(in_channels, self.out_dim)
        self.register_buffer("scale", torch.empty(0))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        weight = mask.unsqueeze(-1).to(x.dtype)
        mean = (self.proj(x) * weight).sum(1) / weight.sum(1).clamp_min(1.0)
        if self.training and self.scale.numel() == 0:
            self.scale = 1.0 + mean.detach().abs().mean(0)
        return mean * self.scale if self.scale.numel() else mean


class LazyStateLoaded(LazyStateBackbone):
    """The same, with the pattern of docs/writing-a-plugin.md: resize before loading."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        stored = state_dict.get(prefix + "scale")
        if stored is not None and stored.shape != self.scale.shape:
            self.scale = torch.empty_like(stored)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


BROKEN = {
    "zero_total": lambda terms, fixed, options: ZeroTotal(terms, fixed),
    "buffer_learner": lambda terms, fixed, options: BufferLearner(terms, fixed),
    "nan_above_1e7": lambda terms, fixed, options: NanAboveTenMillion(terms, fixed),
    "unnamed_clamp": lambda terms, fixed, options: UnclampedForward(terms, fixed, *options.bounds),
    "sign_error": lambda terms, fixed, options: SignError(terms, fixed),
}


@cmi_core.hookimpl
def cmi_register_weightings() -> list[WeightingSpec]:
    return [
        WeightingSpec(
            name=name,
            summary=f"broken on purpose: {name}",
            factory=factory,
            config_cls=BoundsOptions if name == "unnamed_clamp" else NoOptions,
        )
        for name, factory in BROKEN.items()
    ]


@cmi_core.hookimpl
def cmi_register_backbones() -> list[BackboneSpec]:
    return [
        BackboneSpec(
            name="forgetful",
            summary="broken on purpose: state outside the state_dict",
            factory=lambda in_channels, options: ForgetfulBackbone(in_channels),
            config_cls=NoOptions,
        ),
        BackboneSpec(
            name="lazy_state",
            summary="broken on purpose: state sized at the first step, not loadable",
            factory=lambda in_channels, options: LazyStateBackbone(in_channels),
            config_cls=NoOptions,
        ),
        BackboneSpec(
            name="lazy_state_loaded",
            summary="state sized at the first step, resized on loading (sound)",
            factory=lambda in_channels, options: LazyStateLoaded(in_channels),
            config_cls=NoOptions,
        ),
    ]


# -- tasks: each a sound 4-class orientation task (or a head-less term) but for one fault ------


class SoundOrientation(cmi_core.ClassificationTask):
    """Sound: 4 orientations, masked cross-entropy, mixup-aware."""

    batch_key = "yorient"
    n_classes = 4


class IgnoresMixup(SoundOrientation):
    """Fault: the loss of a mixed batch uses the batch's own targets only."""

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        plain = {k: v for k, v in batch.items() if k not in ("mix_index", "mix_lambda")}
        return super().loss(outputs, plain)


class DetachedLoss(SoundOrientation):
    """Fault: the loss is computed from detached logits, so the head never trains."""

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        detached = {self.name: outputs[self.name].detach()}
        return super().loss(detached, batch).requires_grad_()


class UndeclaredDependency(cmi_core.Task):
    """Fault: reads the ``multiclass`` logits without ``depends_on=("multiclass",)``."""

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        return outputs["multiclass"].logsumexp(dim=-1).mean()


class SoundPhase(cmi_core.FrameClassificationTask):
    """Sound: 2 phases per frame, masked per-frame cross-entropy, mixup-aware."""

    batch_key = "yphase"
    n_classes = 2


class CountsUnknownFrames(SoundPhase):
    """Fault: the per-frame loss averages over every frame, padding and unknown ones too."""

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        def per_sample(logits: Tensor, target: Tensor) -> Tensor:
            loss = F.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
            return loss.mean(dim=1)

        return cmi_core.mixed_loss(per_sample, outputs[self.name], self.target(batch), batch)


BROKEN_FRAME_TASKS = {"counts_unknown_frames": CountsUnknownFrames, "sound_frame_task": SoundPhase}

BROKEN_TASKS = {
    "ignores_mixup": IgnoresMixup,
    "detached_loss": DetachedLoss,
    "undeclared_dependency": UndeclaredDependency,
}


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return (
        [
            TaskSpec(
                name=name,
                summary=f"broken on purpose: {name}",
                factory=factory,
                config_cls=cmi_core.TaskOptions,
            )
            for name, factory in BROKEN_TASKS.items()
        ]
        + [
            TaskSpec(
                name="sound_task",
                summary="the broken tasks without their faults (sound)",
                factory=SoundOrientation,
                config_cls=cmi_core.TaskOptions,
            )
        ]
        + [
            TaskSpec(
                name=name,
                summary=f"per-frame: {name}",
                factory=factory,
                config_cls=cmi_core.TaskOptions,
                level="frame",
            )
            for name, factory in BROKEN_FRAME_TASKS.items()
        ]
    )
