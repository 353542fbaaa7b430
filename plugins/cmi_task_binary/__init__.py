"""The ``binary`` task: target vs non-target gesture, BCE, mixup-aware; weight ``1 - alpha``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


@attrs.frozen
class BinaryOptions:
    """No options of its own: the weight is ``1 - [loss] alpha``."""


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_binary.task import BinaryTask

    return BinaryTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="binary",
            summary="Target vs non-target head, BCE (exp024's Lbin)",
            factory=make_task,
            config_cls=BinaryOptions,
        )
    ]
