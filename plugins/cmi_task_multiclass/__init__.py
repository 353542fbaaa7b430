"""The ``multiclass`` task: the 18-class gesture head, the competition's prediction.

Cross-entropy with ``[loss] label_smoothing``, mixup-aware; its fixed weight is ``alpha``. The
validation score (``val/cmi_score``) is computed from this head by the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core.specs import TaskSpec

if TYPE_CHECKING:
    from cmi_core.task import Task, TaskContext


@attrs.frozen
class MulticlassOptions:
    """No options of its own: the weight is ``[loss] alpha``, smoothing ``label_smoothing``."""


def make_task(name: str, options: object, context: TaskContext) -> Task:
    """Build the task; torch is imported here, not when the plugin is registered."""
    from cmi_task_multiclass.task import MulticlassTask

    return MulticlassTask(name, options, context)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="multiclass",
            summary="18-class gesture head, cross-entropy (exp024's L18; the prediction)",
            factory=make_task,
            config_cls=MulticlassOptions,
            predicts=True,
        )
    ]
