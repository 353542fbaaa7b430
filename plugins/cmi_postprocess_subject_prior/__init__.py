"""``subject_prior``: boost the classes a subject is still under-predicted in (7th place).

Each subject performs every gesture a known number of times (the protocol's per-subject
counts). After ``n`` answers for a subject, a class expected ``n * share`` times but answered
fewer times is still owed: its probability is multiplied by ``exp(strength * ramp * owed)``
where ``owed = (expected - answered) / (expected + 1)`` (only positive parts count) and
``ramp = min(1, n / ramp_sequences)`` makes the correction grow as sequences accumulate.
"""

from __future__ import annotations

from collections import defaultdict

import attrs
import numpy as np

import cmi_core
from cmi_core.postprocess import Outputs, Postprocessor, Protocol
from cmi_core.specs import PostprocessorSpec


@attrs.frozen
class PriorOptions:
    """Options of ``subject_prior``."""

    strength: float = cmi_core.field(default=1.0, check=cmi_core.non_negative)
    ramp_sequences: int = cmi_core.field(default=20, check=cmi_core.positive)


class SubjectPrior(Postprocessor):
    """See the module doc."""

    def __init__(self, protocol: Protocol, options: PriorOptions) -> None:
        self._gestures = protocol.gestures
        self._share = protocol.gesture_counts / protocol.gesture_counts.sum()
        self.options = options
        self._answered: dict[str, np.ndarray] = defaultdict(
            lambda: np.zeros(len(protocol.gestures))
        )

    def __call__(self, outputs: Outputs, subject: str) -> str:
        probs = np.asarray(outputs["gesture"], dtype=np.float64)
        answered = self._answered[subject]
        n = answered.sum()
        expected = n * self._share
        owed = np.clip((expected - answered) / (expected + 1.0), 0.0, None)
        ramp = min(1.0, n / self.options.ramp_sequences)
        choice = int(np.argmax(probs * np.exp(self.options.strength * ramp * owed)))
        answered[choice] += 1
        return self._gestures[choice]


cmi_register_postprocessors = cmi_core.registering(
    PostprocessorSpec(
        name="subject_prior",
        summary="Boost the classes still under-predicted for a subject (7th place)",
        factory=SubjectPrior,
        config_cls=PriorOptions,
    )
)
