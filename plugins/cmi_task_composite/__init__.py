"""The ``composite`` task: (orientation, gesture, initial behaviour) as one class.

144 classes in the fixed layout of ``COMPOSITE_CLASSES`` (4 orientations x 18 gestures x 2
initial behaviours; the training data holds about 102 of them). Used at prediction time:
``Predictor.predict_outputs`` returns its probabilities under ``"composite"`` for the
per-subject post-processing. Target ``ycomposite`` (``-1`` where unknown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_composite.task import CompositeTask

    return CompositeTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="composite",
            summary="Orientation x gesture x initial behaviour (144 classes); predicted",
            factory=make_task,
            config_cls=cmi_core.TaskOptions,
            predicts=True,
        )
    ]
