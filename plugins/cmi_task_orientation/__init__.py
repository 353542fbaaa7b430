"""The ``orientation`` task: the body position of the sequence (4 classes, ``ORIENTATIONS``).

Training only: the Kaggle test files do not carry the orientation, so the head serves as an
auxiliary loss and is not read at prediction time (the seed's exp037 trained this head: 0.7775
against exp024's 0.7504 on the real data). Target ``yorient`` (``-1`` where unknown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_orientation.task import OrientationTask

    return OrientationTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="orientation",
            summary="Body position per sequence (4 classes), cross-entropy; training only",
            factory=make_task,
            config_cls=cmi_core.TaskOptions,
        )
    ]
