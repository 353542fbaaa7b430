"""The ``orientation`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

import cmi_core


class OrientationTask(cmi_core.ClassificationTask):
    """Cross-entropy over the 4 orientations; validation accuracy."""

    hidden = 64
    batch_key = "yorient"

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return len(cmi_core.ORIENTATIONS)
