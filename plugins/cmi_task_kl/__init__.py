"""The ``kl`` task: consistency between the 18-class and 9-class heads, no head of its own.

``KL(p9 <- 18 || q9)`` with ``[loss] kl_temperature``: the 18-class probabilities summed into
the 9 classes by name (``GESTURE_TO_NINE``; the original exp024/exp025 code summed "the first
8 indices", which in sorted order are not the 8 targets). Not mixup-aware by design: it
compares two heads on the same (mixed) input. Weight ``[loss] kl_weight``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


@attrs.frozen
class KLOptions:
    """No options of its own: weight ``[loss] kl_weight``, temperature ``kl_temperature``."""


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_kl.task import KLTask

    return KLTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="kl",
            summary="KL between the 18-class head summed to 9 classes and the 9-class head",
            factory=make_task,
            config_cls=KLOptions,
            depends_on=("multiclass", "nine_class"),
        )
    ]
