"""Per-subject post-processing at prediction time: the online contract of a post-processor.

The Kaggle server hands over one sequence at a time, subjects interleaved (docs/kaggle.md). A
post-processor sees each sequence's model outputs and its subject id, never a label, keeps
per-subject state, and returns the gesture. What it may rely on besides is the recording
protocol, counted from the run's own training data (:class:`Protocol`, docs/data.md
"Protocol counts"): how many sequences of each gesture (and of each composite class,
orientation x gesture x initial behaviour, when counted) one subject performs on average.
Plugins register post-processors with ``cmi_register_postprocessors`` (docs/kaggle.md).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import attrs
import numpy as np

Outputs = Mapping[str, np.ndarray]
"""One sequence's outputs: ``"gesture"`` (the class probabilities in ``Protocol.gestures``
order) and, where a run predicts them, other tasks' probabilities (``"composite"``, ...)."""


def _float_array(value: object) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


@attrs.frozen(eq=False)
class Protocol:
    """What one subject records on average, counted from training data (never constants).

    ``gesture_counts[i]``: the mean number of sequences of ``gestures[i]`` per subject.
    ``composites``: the composite classes ``(orientation, gesture, initial behaviour)`` in the
    order of a ``"composite"`` output, with ``composite_counts`` likewise and
    ``composite_gesture`` the index into ``gestures`` of each; empty when the training data
    counted had no orientation/behaviour columns (an OOF file).
    """

    gestures: tuple[str, ...] = attrs.field(converter=tuple)
    gesture_counts: np.ndarray = attrs.field(converter=_float_array)
    subjects: int
    composites: tuple[tuple[str, str, str], ...] = attrs.field(default=(), converter=tuple)
    composite_counts: np.ndarray = attrs.field(factory=lambda: np.zeros(0), converter=_float_array)

    @property
    def composite_gesture(self) -> np.ndarray:
        """``[K]`` index into ``gestures`` of each composite class."""
        index = {g: i for i, g in enumerate(self.gestures)}
        return np.array([index[c[1]] for c in self.composites], dtype=np.int64)

    @property
    def sequences_per_subject(self) -> float:
        return float(self.gesture_counts.sum())


class Postprocessor(abc.ABC):
    """An online per-subject post-processor (one object per prediction session).

    ``requires``: the outputs it reads; a run that lacks one is refused before any sequence.
    ``__call__`` must be deterministic given the sequence of calls so far, and must keep all
    state per subject, since subjects arrive interleaved.
    """

    requires: ClassVar[tuple[str, ...]] = ("gesture",)

    def needs(self) -> tuple[str, ...]:
        """The outputs this instance reads (options may add some, e.g. ``"composite"``)."""
        return self.requires

    @abc.abstractmethod
    def __call__(self, outputs: Outputs, subject: str) -> str:
        """The gesture for this sequence of ``subject``, given its ``outputs``."""
