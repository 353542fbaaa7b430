"""The ``nine_class`` task: the 8 target gestures + non-target, cross-entropy with
``[loss] label_smoothing``, mixup-aware; weight ``[loss] nine_class_loss_weight``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


@attrs.frozen
class NineClassOptions:
    """No options of its own: the weight is ``[loss] nine_class_loss_weight``."""


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_nine_class.task import NineClassTask

    return NineClassTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="nine_class",
            summary="9-class head (8 targets + non-target), cross-entropy (exp024's L9)",
            factory=make_task,
            config_cls=NineClassOptions,
        )
    ]
