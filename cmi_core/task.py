"""The task interface every task plugin implements: a head, its target, its raw loss.

A task turns the shared representation into logits (its head, on the pooled embedding
``[B, D]``, or for a per-frame task on the backbone's per-frame output ``[B, T, D_f]``), reads
its target from the batch, and computes its raw (unweighted) loss; a
weighting strategy combines the raw losses of all tasks. Tasks without a head (``kl``) read
the outputs of the tasks they depend on. The network stores each head under the task's name in
``heads``, so the state-dict keys of a head are ``heads.<task>.*`` (docs/writing-a-plugin.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import ClassVar

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmi_core.options import TaskOptions  # noqa: F401  (re-exported: torch-free home)

PerSample = Callable[[Tensor, Tensor], Tensor]


@attrs.frozen
class TaskContext:
    """The ``[loss]`` keys shared by the built-in tasks (one place, as before tasks were
    plugins): label smoothing of the cross-entropy terms, the KL temperature."""

    label_smoothing: float = 0.1
    kl_temperature: float = 1.0


def head_mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    """LN -> Dropout -> Linear -> SiLU -> Dropout -> Linear, as in exp024."""
    return nn.Sequential(
        nn.LayerNorm(in_dim),
        nn.Dropout(dropout),
        nn.Linear(in_dim, hidden),
        nn.SiLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, out_dim),
    )


def mixed_loss(per_sample: PerSample, logits: Tensor, target: Tensor, batch: Mapping) -> Tensor:
    """``mean(lam * L(y) + (1 - lam) * L(y[mix_index]))``; plain mean without mixup.

    ``mix_lambda`` may be a scalar or one value per sample.
    """
    loss = per_sample(logits, target)
    if "mix_index" not in batch:
        return loss.mean()
    lam = torch.as_tensor(batch["mix_lambda"], dtype=loss.dtype, device=loss.device)
    other = per_sample(logits, target[batch["mix_index"]])
    return (lam * loss + (1.0 - lam) * other).mean()


def masked_cross_entropy(smoothing: float) -> PerSample:
    """Per-sample cross-entropy that gives 0 where the target is missing (``-1``), so a task
    whose label is unknown for some sequences (test files) skips them."""

    def per_sample(logits: Tensor, target: Tensor) -> Tensor:
        known = target >= 0
        loss = F.cross_entropy(
            logits, target.clamp(min=0), label_smoothing=smoothing, reduction="none"
        )
        return loss * known.to(loss.dtype)

    return per_sample


def masked_frame_cross_entropy(smoothing: float) -> PerSample:
    """Per-sample cross-entropy of per-frame logits ``[B, T, K]`` against ``[B, T]`` targets:
    each sequence's mean over its frames with a known label (``>= 0``; padding and masked
    frames are ``-1``), 0 for a sequence without one. Per sample, so :func:`mixed_loss` mixes
    it like a sequence loss."""

    def per_sample(logits: Tensor, target: Tensor) -> Tensor:
        known = (target >= 0).to(logits.dtype)
        loss = F.cross_entropy(
            logits.transpose(1, 2),
            target.clamp(min=0),
            label_smoothing=smoothing,
            reduction="none",
        )
        return (loss * known).sum(dim=1) / known.sum(dim=1).clamp(min=1.0)

    return per_sample


class Task:
    """Base class of tasks. Subclasses set :attr:`name` (by the factory) and implement
    :meth:`loss`; a task with a head implements :meth:`build_head` and :meth:`target`.

    ``level`` (as its ``TaskSpec``): ``"sequence"``, the head gets the pooled ``[B, D]``, or
    ``"frame"``, it gets the per-frame ``[B, T, D_f]`` and returns per-frame logits.
    ``metric`` (optional): a validation metric over the epoch's logits and targets, logged as
    ``val/task/<name>/<metric_name>`` (:func:`cmi_core.tags.task_metric_tag`).
    """

    level: ClassVar[str] = "sequence"
    metric_name: ClassVar[str | None] = None

    def __init__(self, name: str, options: object, context: TaskContext) -> None:
        self.name, self.options, self.context = name, options, context

    def build_head(self, in_dim: int, dropout: float) -> nn.Module | None:
        """The head on the pooled representation ``[B, in_dim]`` (per-frame tasks: on each
        frame's ``[B, T, in_dim]``); None for a head-less term."""
        return None

    def logits(self, head_output: Tensor) -> Tensor:
        """The head's output as the task's logits (the binary head squeezes ``[B, 1]``)."""
        return head_output

    def target(self, batch: Mapping[str, Tensor]) -> Tensor | None:
        """The task's target, read from the batch; None for a term without one."""
        return None

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        """The raw loss, a scalar, mixup-aware (:func:`mixed_loss`) where the batch is mixed."""
        raise NotImplementedError

    def metric(self, logits: Tensor, target: Tensor) -> float | None:
        """The validation metric over the epoch (None: the task logs none)."""
        return None


@functools.cache
def aggregation_matrix(
    mapping: tuple[int, ...], n_out: int, device: torch.device | None, dtype: torch.dtype
) -> Tensor:
    """The ``[len(mapping), n_out]`` 0/1 matrix that sums class probabilities into coarser
    classes (``mapping[i]`` is the coarse class of class ``i``).

    Cached per device and dtype, so a training step does not copy it to the GPU again.
    """
    matrix = torch.zeros(len(mapping), n_out, dtype=dtype)
    matrix[torch.arange(len(mapping)), torch.as_tensor(mapping)] = 1.0
    return matrix.to(device)


def kl_consistency(z18: Tensor, z9: Tensor, temperature: float, aggregation: Tensor) -> Tensor:
    """``KL(p9 <- 18 || q9)``: 18-class probabilities summed by name vs the 9-class head.

    No detach: the gradient reaches both heads, as in exp024. ``batchmean`` reduction, no
    ``T^2`` rescaling.
    """
    p9 = F.softmax(z18 / temperature, dim=-1) @ aggregation
    log_q9 = F.log_softmax(z9 / temperature, dim=-1)
    return F.kl_div(log_q9, p9, reduction="batchmean")


class ClassificationTask(Task):
    """A per-sequence classification head with cross-entropy (``[loss] label_smoothing``),
    mixup-aware, on an integer target of the batch where ``-1`` means unknown; its validation
    metric is the accuracy over the known targets. Subclasses set the three class attributes.
    """

    batch_key: ClassVar[str]
    n_classes: ClassVar[int]
    hidden: ClassVar[int] = 64
    metric_name: ClassVar[str | None] = "accuracy"

    def build_head(self, in_dim: int, dropout: float) -> nn.Module:
        return head_mlp(in_dim, self.hidden, self.n_classes, dropout)

    def target(self, batch: Mapping[str, Tensor]) -> Tensor:
        return batch[self.batch_key]

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        per_sample = masked_cross_entropy(self.context.label_smoothing)
        return mixed_loss(per_sample, outputs[self.name], self.target(batch), batch)

    def metric(self, logits: Tensor, target: Tensor) -> float | None:
        known = target >= 0
        if not known.any():
            return None
        return float((logits[known].argmax(dim=-1) == target[known]).float().mean())


class FrameClassificationTask(ClassificationTask):
    """A per-frame classification head (the same MLP, applied to every frame) with the masked
    per-frame cross-entropy (:func:`masked_frame_cross_entropy`), mixup-aware; its target is a
    ``[B, T]`` batch key (``-1`` on padding and unknown frames), its metric the accuracy over
    the known frames. Subclasses set ``batch_key`` and ``n_classes``."""

    level: ClassVar[str] = "frame"

    def loss(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        per_sample = masked_frame_cross_entropy(self.context.label_smoothing)
        return mixed_loss(per_sample, outputs[self.name], self.target(batch), batch)
