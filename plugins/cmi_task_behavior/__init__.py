"""The ``behavior`` task: each frame's behaviour (``BEHAVIORS``, 4 classes), per frame.

Training only: the Kaggle test files do not carry the behaviour, so the head serves as an
auxiliary loss and is not read at prediction time. The 4 behaviours split the phases further
(two ways of moving the hand, the pause at the target, the gesture). A per-frame task: the
backbone must give a per-frame output. Target ``ybehavior`` (``[B, T]``, ``-1`` on padding and
unknown frames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_behavior.task import BehaviorTask

    return BehaviorTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="behavior",
            summary="Behaviour of every frame (4 classes), cross-entropy; training only",
            factory=make_task,
            config_cls=cmi_core.TaskOptions,
            level="frame",
        )
    ]
