"""Sequences -> fixed-length tensors: one padding rule, labels for the heads (per sequence and
per frame), augmentation.

Training, validation and inference all go through ``pad_or_truncate`` (keep the END of the
sequence, where the gesture is; pad on the left with zeros; mask False on padding and on
frames without usable IMU), so there is no train/inference skew.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from cmi_core.config import AugmentConfig
from cmi_core.data.features import IMU_FEATURES, mirror_features
from cmi_core.data.schema import (
    COMPOSITE_INDEX,
    DEMOGRAPHIC_FEATURES,
    FRAME_LABELS,
    GESTURE_IS_TARGET,
    GESTURE_TO_NINE,
    GESTURES,
    ORIENTATIONS,
)
from cmi_core.data.sequences import SequenceSet

HANDEDNESS = DEMOGRAPHIC_FEATURES.index("handedness")

FRAME_LABEL_KEYS: dict[str, str] = {column: f"y{column}" for column in FRAME_LABELS}
"""The batch key of each per-frame label column: ``yphase``, ``ybehavior`` (``[B, T]``)."""


def pad_or_truncate(
    x: np.ndarray, valid: np.ndarray, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """(T, C), (T,) -> (max_len, C) float32 and (max_len,) bool, keeping the last frames."""
    out = np.zeros((max_len, x.shape[1]), dtype=np.float32)
    mask = np.zeros(max_len, dtype=bool)
    keep = min(len(x), max_len)
    if keep:
        out[max_len - keep :] = x[len(x) - keep :]
        mask[max_len - keep :] = valid[len(x) - keep :]
    out[~mask] = 0.0
    return out, mask


def pad_frame_labels(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(T, K) per-frame labels -> (max_len, K) int64 aligned with :func:`pad_or_truncate`'s
    output (its ``mask``): the last frames kept, ``-1`` on padding and on masked frames, so a
    per-frame loss counts only real frames with a known label."""
    max_len = len(mask)
    out = np.full((max_len, labels.shape[1]), -1, dtype=np.int64)
    keep = min(len(labels), max_len)
    if keep:
        out[max_len - keep :] = labels[len(labels) - keep :]
    out[~mask] = -1
    return out


# -- augmentation (time axis = axis 0 of a (T, C) sequence) ----------------------------------


def time_stretch(x: np.ndarray, valid: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample every channel to ``round(T * factor)`` frames by linear interpolation in time."""
    pos = stretch_positions(len(x), factor)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (pos - lo)[:, None].astype(np.float32)
    return x[lo] * (1 - w) + x[hi] * w, valid[nearest_frames(pos)]


def stretch_positions(n: int, factor: float) -> np.ndarray:
    """The source positions (fractional) of the ``round(n * factor)`` stretched frames."""
    return np.linspace(0.0, n - 1, max(1, round(n * factor)))


def nearest_frames(positions: np.ndarray) -> np.ndarray:
    """The source frame nearest each stretched frame: what the mask and the per-frame labels
    of a stretched frame are (labels are classes: they are not interpolated)."""
    return np.rint(positions).astype(np.int64)


def mask_span(
    x: np.ndarray, valid: np.ndarray, start: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blank frames ``start .. start+length`` in every channel, as a sensor dropout would."""
    x, valid = x.copy(), valid.copy()
    x[start : start + length] = 0.0
    valid[start : start + length] = False
    return x, valid


def augment_sequence(
    x: np.ndarray,
    valid: np.ndarray,
    demographics: np.ndarray,
    cfg: AugmentConfig,
    names: tuple[str, ...],
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Random time stretch, span masking, IMU noise, hand mirroring and thm/ToF dropping.

    ``labels`` (per-frame, ``[T, K]``) follow the time stretch; a masked span marks its frames
    invalid, which :func:`pad_frame_labels` turns into ``-1``. They draw nothing from ``rng``,
    so a run augments the same with or without them.
    """
    if rng.random() < cfg.stretch_p:
        factor = rng.uniform(*cfg.stretch_range)
        if labels is not None:
            labels = labels[nearest_frames(stretch_positions(len(x), factor))]
        x, valid = time_stretch(x, valid, factor)
    if rng.random() < cfg.mask_p and len(x) > 1:
        length = int(rng.integers(1, min(cfg.mask_max_len, len(x) - 1) + 1))
        x, valid = mask_span(x, valid, int(rng.integers(0, len(x) - length + 1)), length)
    if rng.random() < cfg.noise_p:
        x = x.copy()
        n_imu = len(IMU_FEATURES)  # noise on IMU channels; thm/ToF zeros mean "absent"
        noise = rng.normal(0.0, cfg.noise_std, (len(x), n_imu)).astype(np.float32)
        x[:, :n_imu] += noise * valid[:, None]
    if rng.random() < cfg.mirror_p:
        x = mirror_features(x, names)
        demographics = demographics.copy()
        demographics[HANDEDNESS] = 1.0 - demographics[HANDEDNESS]
    if len(names) > len(IMU_FEATURES) and rng.random() < cfg.drop_thm_tof_p:
        x = x.copy()
        x[:, len(IMU_FEATURES) :] = 0.0  # summaries, presence flag and any ToF images
    return x, valid, demographics, labels


def auxiliary_labels(data: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: the orientation index (``schema.ORIENTATIONS``) and the composite class
    (``schema.COMPOSITE_CLASSES``: orientation, gesture, initial behaviour); ``-1`` where the
    files do not carry them (test files), so the auxiliary tasks skip those sequences."""
    n = len(data)
    orientations = data.orientations if data.orientations is not None else np.full(n, "")
    behaviors = data.initial_behaviors if data.initial_behaviors is not None else np.full(n, "")
    orientation = np.array(
        [ORIENTATIONS.index(o) if o in ORIENTATIONS else -1 for o in orientations]
    )
    composite = np.array(
        [
            COMPOSITE_INDEX.get((o, GESTURES[y], b), -1) if y >= 0 else -1
            for o, y, b in zip(orientations, data.labels, behaviors, strict=True)
        ]
    )
    return orientation.astype(np.int64), composite.astype(np.int64)


class SequenceDataset(Dataset):
    """Items of a ``SequenceSet`` as padded tensors with 18-class, binary and 9-class labels.

    ``augment`` is for training only. Each item's augmentation comes from a numpy generator
    seeded with (seed, sequence, a draw from torch's global RNG): reproducible under
    ``torch.manual_seed`` / Lightning's ``seed_everything(workers=True)`` (DataLoader workers
    get per-epoch torch seeds), and different in every epoch without any epoch bookkeeping.
    """

    def __init__(
        self,
        data: SequenceSet,
        indices: np.ndarray,
        max_len: int,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ):
        self.data = data
        self.indices = np.asarray(indices, dtype=np.int64)
        self.max_len = max_len
        self.augment = augment
        self.seed = seed
        orientation, composite = auxiliary_labels(data)
        self._labels = _label_tensors(
            data.labels[self.indices],
            self.indices,
            orientation[self.indices],
            composite[self.indices],
        )
        self._stacked: dict[int, np.ndarray] = {}
        self._fixed: dict[int, dict[str, torch.Tensor]] = {}
        """Items without augmentation, built once: validation reads the same items each epoch."""

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self.augment is None:
            item = self._fixed.get(i)
            if item is None:
                item = self._fixed[i] = self._item(i)
            return dict(item)
        return self._item(i)

    def _item(self, i: int) -> dict[str, torch.Tensor]:
        k = int(self.indices[i])
        x, valid = self.data.features[k], self.data.valid[k]
        demographics = self.data.demographics[k]
        labels = self._frame_labels(k)
        if self.augment is not None:
            draw = int(torch.randint(0, 2**62, ()).item())
            rng = np.random.default_rng([self.seed, k, draw])
            x, valid, demographics, labels = augment_sequence(
                x, valid, demographics, self.augment, self.data.feature_names, rng, labels
            )
        x, mask = pad_or_truncate(x, valid, self.max_len)
        padded = torch.from_numpy(pad_frame_labels(labels, mask))
        item = {
            "x": torch.from_numpy(x),
            "mask": torch.from_numpy(mask),
            "demographics": torch.from_numpy(np.array(demographics, dtype=np.float32)),
        }
        item |= {key: padded[:, j] for j, key in enumerate(FRAME_LABEL_KEYS.values())}
        return item | self._labels[i]

    def _frame_labels(self, k: int) -> np.ndarray:
        """Sequence ``k``'s per-frame labels ``[T, K]`` (``FRAME_LABEL_KEYS`` order), ``-1``
        for a column the data does not carry; stacked once per sequence (every epoch reads
        them again)."""
        labels = self._stacked.get(k)
        if labels is None:
            n = len(self.data.valid[k])
            columns = [
                self.data.frame_labels[c][k] if c in self.data.frame_labels else np.full(n, -1)
                for c in FRAME_LABEL_KEYS
            ]
            labels = self._stacked[k] = np.stack(columns, axis=1).astype(np.int8)
        return labels


def _label_tensors(
    y18: np.ndarray, index: np.ndarray, orientation: np.ndarray, composite: np.ndarray
) -> list[dict[str, torch.Tensor]]:
    """``y18``, ``ybin``, ``y9`` (-1 where unlabelled), ``index``, ``yorient`` and
    ``ycomposite`` (:func:`auxiliary_labels`) of every item, made once per dataset instead of
    small tensors per item and epoch (read-only 0-d views)."""
    labelled = y18 >= 0
    known = np.where(labelled, y18, 0)
    ybin = np.where(labelled, np.asarray(GESTURE_IS_TARGET, dtype=np.float32)[known], -1.0)
    y9 = np.where(labelled, np.asarray(GESTURE_TO_NINE, dtype=np.int64)[known], -1)
    columns = {
        "y18": torch.as_tensor(y18, dtype=torch.int64),
        "ybin": torch.as_tensor(ybin, dtype=torch.float32),
        "y9": torch.as_tensor(y9, dtype=torch.int64),
        "index": torch.as_tensor(index, dtype=torch.int64),
        "yorient": torch.as_tensor(orientation, dtype=torch.int64),
        "ycomposite": torch.as_tensor(composite, dtype=torch.int64),
    }
    rows = zip(*(column.unbind() for column in columns.values()), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def mixup_batch(batch: dict, alpha: float, generator: torch.Generator) -> dict:
    """Mix each sequence with a random partner of the batch (Zhang et al. 2018).

    ``x`` and ``demographics`` become ``lam * a + (1 - lam) * b``, the mask is the union;
    labels stay as they are and ``mix_index`` / ``mix_lambda`` tell the loss to compute
    ``lam * L(y) + (1 - lam) * L(y[mix_index])``. ``lam ~ Beta(alpha, alpha)``.
    """
    x = batch["x"]
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    out = dict(batch)
    out["x"] = lam * x + (1 - lam) * x[perm]
    out["demographics"] = lam * batch["demographics"] + (1 - lam) * batch["demographics"][perm]
    out["mask"] = batch["mask"] | batch["mask"][perm]
    out["mix_index"] = perm
    out["mix_lambda"] = torch.tensor(lam, dtype=x.dtype, device=x.device)
    return out


class MixupCollate:
    """Collate a training batch, then mix it with :func:`mixup_batch`; seeded per worker."""

    def __init__(self, alpha: float, seed: int) -> None:
        self.alpha, self.seed = alpha, seed
        self.generator: torch.Generator | None = None

    def __call__(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if self.generator is None:
            worker = get_worker_info()
            seed = self.seed if worker is None else worker.seed
            self.generator = torch.Generator().manual_seed(seed)
        return mixup_batch(default_collate(items), self.alpha, self.generator)
