"""The ``orientation`` task: the body position of the sequence (4 classes, ``ORIENTATIONS``).

Training only: the Kaggle test files do not carry the orientation, so the head serves as an
auxiliary loss and is not read at prediction time (the seed's exp037 trained this head: 0.7775
against exp024's 0.7504 on the real data). Target ``yorient`` (``-1`` where unknown).
"""

from __future__ import annotations

import cmi_core
from cmi_core.specs import TaskSpec


class OrientationTask(cmi_core.ClassificationTask):
    """Cross-entropy over the 4 orientations; validation accuracy."""

    hidden = 64
    batch_key = "yorient"

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return len(cmi_core.ORIENTATIONS)


@cmi_core.hookimpl
def cmi_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="orientation",
            summary="Body position per sequence (4 classes), cross-entropy; training only",
            factory=OrientationTask,
            config_cls=cmi_core.TaskOptions,
        )
    ]
