"""The parsed-data cache: one ``.npz`` per file pair, keyed by a digest of the source files
and the feature configuration, so a changed file or feature set is parsed again."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from cmi_core.common.atomic import atomic_path
from cmi_core.config import FeatureConfig
from cmi_core.data.sequences import SequenceSet

CACHE_VERSION = "3"  # 2: initial_behaviors; 3: per-frame labels
FINGERPRINT_BLOCK = 1 << 20


def file_digest(path: Path) -> bytes:
    """Size, mtime and three 1 MiB blocks (start, middle, end) of a file.

    A full hash of a 700 MB CSV costs ~1 s, a large part of the cached-load budget; editing
    tools change size or mtime, and the sampled blocks catch a same-size file copied in with
    its timestamps preserved in all but pathological cases.
    """
    stat = path.stat()
    digest = hashlib.blake2b(f"{stat.st_size}:{stat.st_mtime_ns}".encode(), digest_size=16)
    with open(path, "rb") as fh:
        for offset in (
            0,
            max(0, stat.st_size // 2 - FINGERPRINT_BLOCK // 2),
            max(0, stat.st_size - FINGERPRINT_BLOCK),
        ):
            fh.seek(offset)
            digest.update(fh.read(FINGERPRINT_BLOCK))
    return digest.digest()


def cache_path(cache_dir: Path, kind: str, paths: Sequence[Path], features: FeatureConfig) -> Path:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{CACHE_VERSION}:{kind}:{attrs.asdict(features)}".encode())
    for path in paths:
        digest.update(file_digest(path))
    return cache_dir / f"{kind}-{digest.hexdigest()}.npz"


def write_cache(path: Path, data: SequenceSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(v) for v in data.valid], dtype=np.int64)
    arrays = {
        "features": np.concatenate(data.features),
        "valid": np.concatenate(data.valid),
        "lengths": lengths,
        "sequence_ids": data.sequence_ids,
        "subjects": data.subjects,
        "demographics": data.demographics,
        "labels": data.labels,
        "feature_names": np.array(data.feature_names),
    }
    if data.orientations is not None:
        arrays["orientations"] = data.orientations
    if data.initial_behaviors is not None:
        arrays["initial_behaviors"] = data.initial_behaviors
    for column, labels in data.frame_labels.items():
        arrays[f"frame_{column}"] = np.concatenate(labels)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def read_cache(path: Path) -> SequenceSet:
    with np.load(path) as z:
        cuts = np.cumsum(z["lengths"])[:-1]
        return SequenceSet(
            sequence_ids=z["sequence_ids"],
            subjects=z["subjects"],
            features=np.split(z["features"], cuts),
            valid=np.split(z["valid"], cuts),
            demographics=z["demographics"],
            labels=z["labels"],
            orientations=z["orientations"] if "orientations" in z.files else None,
            feature_names=tuple(z["feature_names"].tolist()),
            initial_behaviors=z["initial_behaviors"] if "initial_behaviors" in z.files else None,
            frame_labels={
                name.removeprefix("frame_"): np.split(z[name], cuts)
                for name in z.files
                if name.startswith("frame_")
            },
        )
