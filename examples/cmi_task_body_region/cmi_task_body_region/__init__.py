"""``body_region``: where on the body the gesture happens (head, face, neck, leg, away), an
auxiliary task of 5 classes derived from the gesture's name (docs/writing-a-plugin.md).

Training only: its head shapes the shared representation and is not read at prediction time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cmi_core
from cmi_core import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


def make_task(name: str, options: cmi_core.TaskOptions, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when ``cmi plugins`` lists the plugin."""
    from cmi_task_body_region.task import BodyRegionTask

    return BodyRegionTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="body_region",
            summary="Body region of the gesture (head, face, neck, leg, away); training only",
            factory=make_task,
            config_cls=cmi_core.TaskOptions,  # its one option: weight (fixed weight for "none")
        )
    ]
