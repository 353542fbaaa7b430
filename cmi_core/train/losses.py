"""The raw loss of every configured task, by name.

Each task plugin (``multiclass``, ``binary``, ``nine_class``, ``kl``, ``orientation``, ...)
computes the raw (unweighted) loss of its head; a weighting strategy combines them. The KL
term aggregates the 18-class probabilities into the 9 classes through
``schema.GESTURE_TO_NINE``, a map built from the gesture names: the original exp024/exp025 code
summed "the first 8 indices", which in sorted order are not the 8 targets.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from cmi_core.builders import build_task
from cmi_core.config import LossConfig
from cmi_core.data.schema import GESTURE_TO_NINE, NINE_CLASSES
from cmi_core.task import Task, TaskContext, aggregation_matrix


def nine_class_aggregation(
    device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The ``[18, 9]`` 0/1 matrix that sums 18-class probabilities into the 9 classes."""
    return aggregation_matrix(
        tuple(int(i) for i in GESTURE_TO_NINE), len(NINE_CLASSES), device, dtype
    )


def task_losses(
    tasks: Sequence[Task], outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """The raw loss of each task, by name, in the tasks' order (the weighting's terms)."""
    return {task.name: task.loss(outputs, batch) for task in tasks}


@functools.cache
def _built_tasks(terms: tuple[str, ...], context: TaskContext) -> tuple[Task, ...]:
    return tuple(build_task(name, context) for name in terms)


def compute_losses(
    outputs: Mapping[str, Tensor],
    batch: Mapping[str, Tensor],
    cfg: LossConfig,
    terms: Sequence[str],
) -> dict[str, Tensor]:
    """The raw loss of every term named in ``terms``, by the installed task plugins with the
    label smoothing and KL temperature of ``cfg`` (for callers that hold no built tasks).

    ``outputs``: ``multiclass [B, 18]``, ``binary [B]``, ``nine_class [B, 9]`` (head enabled).
    ``batch``: ``y18``, ``ybin``, ``y9`` and, with mixup, ``mix_index`` / ``mix_lambda``.
    """
    context = TaskContext(cfg.label_smoothing, cfg.kl_temperature)
    return task_losses(_built_tasks(tuple(terms), context), outputs, batch)
