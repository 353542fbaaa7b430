"""The ``behavior`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

import cmi_core


class BehaviorTask(cmi_core.FrameClassificationTask):
    """Per-frame cross-entropy over the 4 behaviours; validation per-frame accuracy."""

    batch_key = "ybehavior"

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return len(cmi_core.BEHAVIORS)
