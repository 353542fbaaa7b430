"""The ``composite`` task: (orientation, gesture, initial behaviour) as one class.

144 classes in the fixed layout of ``COMPOSITE_CLASSES`` (4 orientations x 18 gestures x 2
initial behaviours; the training data holds about 102 of them). Used at prediction time:
``Predictor.predict_outputs`` returns its probabilities under ``"composite"`` for the
per-subject post-processing. Target ``ycomposite`` (``-1`` where unknown).
"""

from __future__ import annotations

import cmi_core
from cmi_core.specs import TaskSpec


class CompositeTask(cmi_core.ClassificationTask):
    """Cross-entropy over the composite classes; validation accuracy."""

    hidden = 128
    batch_key = "ycomposite"

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return len(cmi_core.COMPOSITE_CLASSES)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="composite",
            summary="Orientation x gesture x initial behaviour (144 classes); predicted",
            factory=CompositeTask,
            config_cls=cmi_core.TaskOptions,
            predicts=True,
        )
    ]
