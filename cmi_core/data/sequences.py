"""``SequenceSet``: sequences ready for a model, the one record every layer above passes around."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np


@attrs.frozen(eq=False)
class SequenceSet:
    """Sequences ready for a model: one entry per sequence, all arrays aligned."""

    sequence_ids: np.ndarray  # str [N]
    subjects: np.ndarray  # str [N]
    features: list[np.ndarray]  # float32 [T_i, C] each, never NaN/Inf
    valid: list[np.ndarray]  # bool [T_i] each: False where the frame had no usable IMU
    demographics: np.ndarray  # float32 [N, 7], DEMOGRAPHIC_FEATURES scaled to [0, 1]
    labels: np.ndarray  # int64 [N], index into GESTURES; -1 when unlabelled
    orientations: np.ndarray | None  # str [N] (train only)
    feature_names: tuple[str, ...]
    initial_behaviors: np.ndarray | None = None  # str [N]: the first frame's behaviour (train only)
    frame_labels: dict[str, list[np.ndarray]] = attrs.field(factory=dict)
    """Per-frame labels by column (``phase``, ``behavior``; :data:`~cmi_core.data.schema.
    FRAME_LABELS`): int8 ``[T_i]`` each, aligned with ``features``, ``-1`` where unknown. Empty
    for files that do not carry them (test files)."""

    def __len__(self) -> int:
        return len(self.sequence_ids)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SequenceSet:
        """The sequences at ``indices`` (ints or a boolean mask), in that order."""
        idx = np.asarray(indices)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64)
        return SequenceSet(
            sequence_ids=self.sequence_ids[idx],
            subjects=self.subjects[idx],
            features=[self.features[i] for i in idx],
            valid=[self.valid[i] for i in idx],
            demographics=self.demographics[idx],
            labels=self.labels[idx],
            orientations=None if self.orientations is None else self.orientations[idx],
            feature_names=self.feature_names,
            initial_behaviors=None
            if self.initial_behaviors is None
            else self.initial_behaviors[idx],
            frame_labels={k: [v[i] for i in idx] for k, v in self.frame_labels.items()},
        )
