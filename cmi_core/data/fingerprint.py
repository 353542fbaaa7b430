"""A fingerprint of a run's training data, so ``--resume`` cannot silently mix two data sets.

It hashes the parsed sequences (ids, labels, sensor features, demographics), not the files'
path or time stamps: the same files moved or copied elsewhere are the same data, and a changed
value anywhere is a different fingerprint. Hashing the arrays costs about as much as one pass
over them (well under a second for the full Kaggle train set).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from cmi_core.data.sequences import SequenceSet


@attrs.frozen
class DataFingerprint:
    """Per-part digests of a training set; :meth:`differences` names the parts that differ."""

    n_sequences: int
    sequence_ids: str
    subjects: str
    labels: str
    features: str
    demographics: str

    @classmethod
    def of(cls, data: SequenceSet) -> DataFingerprint:
        return cls(
            n_sequences=len(data),
            sequence_ids=_digest([data.sequence_ids.astype(str)]),
            subjects=_digest([data.subjects.astype(str)]),
            labels=_digest([data.labels]),
            features=_digest([*data.features, *data.valid, np.array(data.feature_names)]),
            demographics=_digest([data.demographics]),
        )

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DataFingerprint:
        return cls(**raw)

    def differences(self, other: DataFingerprint) -> list[str]:
        """Human-readable parts in which ``other`` differs from this fingerprint."""
        if self.n_sequences != other.n_sequences:
            return [f"{other.n_sequences} sequences instead of {self.n_sequences}"]
        return [
            name.replace("_", " ")
            for name in ("sequence_ids", "subjects", "labels", "features", "demographics")
            if getattr(self, name) != getattr(other, name)
        ]


def _digest(arrays: Iterable[np.ndarray]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes() if array.dtype != object else str(array.tolist()).encode())
    return digest.hexdigest()
