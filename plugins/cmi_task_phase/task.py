"""The ``phase`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

import cmi_core


class PhaseTask(cmi_core.FrameClassificationTask):
    """Per-frame cross-entropy over the 2 phases; validation per-frame accuracy."""

    batch_key = "yphase"

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return len(cmi_core.PHASES)
