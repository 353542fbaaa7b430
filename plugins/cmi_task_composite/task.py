"""The ``composite`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

import cmi_core


class CompositeTask(cmi_core.ClassificationTask):
    """Cross-entropy over the composite classes; validation accuracy."""

    hidden = 128
    batch_key = "ycomposite"

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return len(cmi_core.COMPOSITE_CLASSES)
