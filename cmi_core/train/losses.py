"""The named task losses: ``multiclass``, ``binary``, ``nine_class`` and ``kl``.

Each term is the raw (unweighted) loss of one head; a weighting strategy combines them. The KL
term aggregates the 18-class probabilities into the 9 classes through
``schema.GESTURE_TO_NINE``, a map built from the gesture names: the original exp024/exp025 code
summed "the first 8 indices", which in sorted order are not the 8 targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor

from cmi_core.config import LossConfig
from cmi_core.data.schema import GESTURE_TO_NINE, GESTURES, NINE_CLASSES

PerSample = Callable[[Tensor, Tensor], Tensor]


@cache
def nine_class_aggregation(
    device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The ``[18, 9]`` 0/1 matrix that sums 18-class probabilities into the 9 classes.

    Cached per device and dtype, so a training step does not copy it to the GPU again.
    """
    matrix = torch.zeros(len(GESTURES), len(NINE_CLASSES), dtype=dtype)
    matrix[torch.arange(len(GESTURES)), torch.as_tensor(GESTURE_TO_NINE)] = 1.0
    return matrix.to(device)


def kl_consistency(z18: Tensor, z9: Tensor, temperature: float, aggregation: Tensor) -> Tensor:
    """``KL(p9 <- 18 || q9)``: 18-class probabilities summed by name vs the 9-class head.

    No detach: the gradient reaches both heads, as in exp024. ``batchmean`` reduction, no
    ``T^2`` rescaling.
    """
    p9 = F.softmax(z18 / temperature, dim=-1) @ aggregation
    log_q9 = F.log_softmax(z9 / temperature, dim=-1)
    return F.kl_div(log_q9, p9, reduction="batchmean")


def _mixed(per_sample: PerSample, logits: Tensor, target: Tensor, batch: Mapping) -> Tensor:
    """``mean(lam * L(y) + (1 - lam) * L(y[mix_index]))``; plain mean without mixup.

    ``mix_lambda`` may be a scalar or one value per sample.
    """
    loss = per_sample(logits, target)
    if "mix_index" not in batch:
        return loss.mean()
    lam = torch.as_tensor(batch["mix_lambda"], dtype=loss.dtype, device=loss.device)
    other = per_sample(logits, target[batch["mix_index"]])
    return (lam * loss + (1.0 - lam) * other).mean()


def compute_losses(
    outputs: Mapping[str, Tensor],
    batch: Mapping[str, Tensor],
    cfg: LossConfig,
    terms: Sequence[str],
) -> dict[str, Tensor]:
    """The raw loss of every active term, by name.

    ``outputs``: ``multiclass [B, 18]``, ``binary [B]``, ``nine_class [B, 9]`` (head enabled).
    ``batch``: ``y18``, ``ybin``, ``y9`` and, with mixup, ``mix_index`` / ``mix_lambda``.
    """
    smoothing = cfg.label_smoothing

    def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, label_smoothing=smoothing, reduction="none")

    def bce(logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")

    losses: dict[str, Tensor] = {}
    for term in terms:
        if term == "multiclass":
            losses[term] = _mixed(cross_entropy, outputs["multiclass"], batch["y18"], batch)
        elif term == "binary":
            losses[term] = _mixed(bce, outputs["binary"], batch["ybin"], batch)
        elif term == "nine_class":
            losses[term] = _mixed(cross_entropy, outputs["nine_class"], batch["y9"], batch)
        elif term == "kl":
            z18 = outputs["multiclass"]
            aggregation = nine_class_aggregation(z18.device, z18.dtype)
            losses[term] = kl_consistency(
                z18, outputs["nine_class"], cfg.kl_temperature, aggregation
            )
        else:
            raise KeyError(f"unknown loss term {term!r}")
    return losses
