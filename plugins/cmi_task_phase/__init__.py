"""The ``phase`` task: each frame's phase (``PHASES``: Transition / Gesture), per frame.

Training only: the Kaggle test files do not carry the phase, so the head serves as an
auxiliary loss (it teaches the backbone where the gesture is in the sequence) and is not read
at prediction time. A per-frame task: its head runs on the backbone's per-frame output, so the
backbone must give one (``cmi check`` says so otherwise). Target ``yphase`` (``[B, T]``,
``-1`` on padding and unknown frames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_phase.task import PhaseTask

    return PhaseTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="phase",
            summary="Phase of every frame (Transition / Gesture), cross-entropy; training only",
            factory=make_task,
            config_cls=cmi_core.TaskOptions,
            level="frame",
        )
    ]
