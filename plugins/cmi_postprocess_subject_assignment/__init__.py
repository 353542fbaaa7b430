"""``subject_assignment``: re-solved assignment over a subject's sequences so far.

2nd and 16th place (docs/kaggle.md, "Post-processing"): every subject performs each class a
known number of times, so two sequences of one subject should rarely share a composite label.
At each call the subject's sequences so far are assigned to class slots (as many slots per
class as the protocol's per-subject count, rounded up, plus ``extra_slots``) by
``scipy.optimize.linear_sum_assignment`` maximising the summed log-probability; the current
sequence's label is the class its slot belongs to. Earlier answers are not revisited (they are
already submitted), but their probabilities keep shaping the assignment.

``target = "auto"`` (default) assigns composite classes (orientation x gesture x initial
behaviour, each mapped to its gesture) when the run has a ``"composite"`` output and the
protocol counted them, else gestures; ``"gesture"`` and ``"composite"`` force one (a run
without a composite output, or a protocol without composite counts, is then refused when the
post-processor is set up).
"""

from __future__ import annotations

import math
from collections import defaultdict

import attrs
import numpy as np

import cmi_core
from cmi_core.postprocess import Outputs, Postprocessor, Protocol
from cmi_core.specs import PostprocessorSpec

EPS = 1e-9


@attrs.frozen
class AssignmentOptions:
    """Options of ``subject_assignment``."""

    target: str = cmi_core.field(
        default="auto", check=cmi_core.one_of("auto", "gesture", "composite")
    )
    extra_slots: int = cmi_core.field(default=0, check=cmi_core.non_negative)


class SubjectAssignment(Postprocessor):
    """See the module doc."""

    def __init__(self, protocol: Protocol, options: AssignmentOptions) -> None:
        self.target = options.target
        self._gestures = protocol.gestures
        self._tables = {"gesture": (protocol.gesture_counts, np.arange(len(protocol.gestures)))}
        if protocol.composites:
            self._tables["composite"] = (protocol.composite_counts, protocol.composite_gesture)
        self._slots = {
            name: np.repeat(np.arange(len(counts)), _capacity(counts, options.extra_slots))
            for name, (counts, _) in self._tables.items()
        }
        self._seen: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)

    def needs(self) -> tuple[str, ...]:
        return ("gesture", "composite") if self.target == "composite" else ("gesture",)

    def __call__(self, outputs: Outputs, subject: str) -> str:
        from scipy.optimize import linear_sum_assignment

        target = self._target(outputs)
        if len(outputs[target]) != len(self._tables[target][0]):
            raise cmi_core.RunError(
                f"subject_assignment: the run's {target!r} output has {len(outputs[target])} "
                f"classes, the protocol counted {len(self._tables[target][0])}; they must be "
                "the same classes in the same order"
            )
        history = self._seen[(target, subject)]
        history.append(np.log(np.clip(np.asarray(outputs[target], dtype=np.float64), EPS, None)))
        logp = np.stack(history)
        slots = self._slots[target]
        slots = np.tile(slots, math.ceil(len(history) / len(slots)))  # more sequences than slots
        rows, cols = linear_sum_assignment(logp[:, slots], maximize=True)
        current = int(slots[cols[rows == len(history) - 1][0]])
        return self._gestures[int(self._tables[target][1][current])]

    def _target(self, outputs: Outputs) -> str:
        """Composite classes where asked for, or (``auto``) where the run and protocol have them."""
        if self.target != "auto":
            return self.target
        return "composite" if "composite" in outputs and "composite" in self._tables else "gesture"


def _capacity(counts: np.ndarray, extra: int) -> np.ndarray:
    """Slots per class: the per-subject count rounded up, plus ``extra``, at least one."""
    return np.maximum(np.ceil(counts - 1e-9).astype(np.int64) + extra, 1)


cmi_register_postprocessors = cmi_core.registering(
    PostprocessorSpec(
        name="subject_assignment",
        summary="Per-subject assignment under the protocol's class counts (2nd/16th place)",
        factory=SubjectAssignment,
        config_cls=AssignmentOptions,
    )
)
