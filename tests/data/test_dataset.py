"""Padding keeps the end, labels by name, augmentations act on the time axis, mixup."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cmi_core.config import AugmentConfig
from cmi_core.data import schema
from cmi_core.data.dataset import (
    SequenceDataset,
    augment_sequence,
    mask_span,
    mixup_batch,
    pad_or_truncate,
    time_stretch,
)
from cmi_core.data.features import IMU_FEATURES, mirror_features
from cmi_core.data.sequences import SequenceSet

NO_AUGMENT = AugmentConfig(noise_p=0.0, stretch_p=0.0, mask_p=0.0)


def ramp(length: int, channels: int = 3) -> np.ndarray:
    """x[t, c] = t + 1000 c: time and channel are both readable from a value."""
    return (np.arange(length)[:, None] + 1000.0 * np.arange(channels)).astype(np.float32)


def toy_set(lengths: list[int], gestures: list[str | None]) -> SequenceSet:
    n = len(lengths)
    return SequenceSet(
        sequence_ids=np.array([f"SEQ_{i:06d}" for i in range(n)]),
        subjects=np.array(["SUBJ_000001"] * n),
        features=[ramp(t, 16) for t in lengths],
        valid=[np.ones(t, dtype=bool) for t in lengths],
        demographics=np.tile(np.linspace(0, 1, 7, dtype=np.float32), (n, 1)),
        labels=np.array([schema.GESTURES.index(g) if g else -1 for g in gestures]),
        orientations=None,
        feature_names=IMU_FEATURES,
    )


def test_truncation_keeps_the_end() -> None:
    x, mask = pad_or_truncate(ramp(10), np.ones(10, dtype=bool), 4)
    np.testing.assert_array_equal(x[:, 0], [6, 7, 8, 9])
    assert mask.all()


def test_padding_is_on_the_left_with_zeros_and_mask() -> None:
    valid = np.array([True, False, True])
    x, mask = pad_or_truncate(ramp(3) + 1, valid, 5)
    np.testing.assert_array_equal(mask, [False, False, True, False, True])
    np.testing.assert_array_equal(x[:, 0], [0, 0, 1, 0, 3])  # padding and invalid frame: 0
    assert x.dtype == np.float32 and x.shape == (5, 3)


def test_items_and_labels_by_name() -> None:
    data = toy_set([5, 200, 7], ["Neck - scratch", "Text on phone", None])
    ds = SequenceDataset(data, np.array([0, 1, 2]), max_len=16)
    neck, phone, unlabelled = ds[0], ds[1], ds[2]
    assert neck["x"].shape == (16, 16) and neck["x"].dtype == torch.float32
    assert neck["mask"].dtype == torch.bool and int(neck["mask"].sum()) == 5
    assert neck["y18"].item() == schema.GESTURES.index("Neck - scratch") == 10
    assert neck["y9"].item() == schema.NINE_CLASSES.index("Neck - scratch") == 7
    assert neck["ybin"].item() == 1.0
    assert phone["y9"].item() == 8 and phone["ybin"].item() == 0.0
    assert phone["x"][-1, 0].item() == 199  # the end of the 200-frame sequence
    assert unlabelled["y18"].item() == -1 and unlabelled["y9"].item() == -1
    assert unlabelled["ybin"].item() == -1.0
    assert neck["index"].item() == 0 and neck["demographics"].shape == (7,)


def test_default_collate() -> None:
    data = toy_set([5, 9, 30], ["Wave hello", "Cheek - pinch skin", "Eyelash - pull hair"])
    batch = next(iter(DataLoader(SequenceDataset(data, np.arange(3), max_len=12), batch_size=3)))
    assert batch["x"].shape == (3, 12, 16)
    assert batch["mask"].shape == (3, 12)
    assert batch["y18"].dtype == torch.int64 and batch["ybin"].dtype == torch.float32
    assert batch["demographics"].shape == (3, 7)


def test_time_stretch_acts_on_time_only() -> None:
    x = ramp(10)
    stretched, valid = time_stretch(x, np.ones(10, dtype=bool), 1.5)
    assert stretched.shape == (15, 3) and valid.shape == (15,)
    channel = np.round(stretched / 1000).astype(int)  # which channel each value came from
    np.testing.assert_array_equal(channel, np.tile([0, 1, 2], (15, 1)))
    np.testing.assert_allclose(stretched[:, 0], np.linspace(0, 9, 15), atol=1e-5)
    shrunk, _ = time_stretch(x, np.ones(10, dtype=bool), 0.5)
    assert shrunk.shape == (5, 3)


def test_mask_span_blanks_whole_frames() -> None:
    x, valid = mask_span(ramp(10) + 1, np.ones(10, dtype=bool), 3, 4)
    blank = (x == 0).all(axis=1)
    np.testing.assert_array_equal(np.flatnonzero(blank), [3, 4, 5, 6])
    assert not (x[~blank] == 0).any()
    np.testing.assert_array_equal(valid, ~blank)


def test_augmentation_through_the_dataset() -> None:
    data = toy_set([40] * 4, ["Wave hello"] * 4)
    stretch = attrs.evolve(NO_AUGMENT, stretch_p=1.0, stretch_range=[0.5, 0.6])
    item = SequenceDataset(data, np.arange(4), max_len=64, augment=stretch)[0]
    assert 20 <= int(item["mask"].sum()) <= 24  # 40 frames became 20-24
    masking = attrs.evolve(NO_AUGMENT, mask_p=1.0, mask_max_len=5)
    x = SequenceDataset(data, np.arange(4), max_len=40, augment=masking)[1]["x"].numpy()
    blank = np.flatnonzero((x == 0).all(axis=1))
    assert 1 <= len(blank) <= 5 and np.all(np.diff(blank) == 1)  # one span of whole frames
    assert not (x[np.setdiff1d(np.arange(40), blank)] == 0).all(axis=1).any()


def test_augmentation_is_reproducible_and_changes_per_draw() -> None:
    data = toy_set([40] * 2, ["Wave hello"] * 2)
    noisy = attrs.evolve(NO_AUGMENT, noise_p=1.0, noise_std=0.1)
    ds = SequenceDataset(data, np.arange(2), max_len=40, augment=noisy, seed=3)
    torch.manual_seed(0)
    a, b = ds[0]["x"], ds[0]["x"]
    assert not torch.equal(a, b)  # a new epoch sees new noise
    torch.manual_seed(0)
    torch.testing.assert_close(ds[0]["x"], a)
    clean = SequenceDataset(data, np.arange(2), max_len=40)[0]["x"]
    assert 0.05 < (a - clean).std().item() < 0.15


def test_mirror_augmentation_flips_hand() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 16)).astype(np.float32)
    demo = np.linspace(0, 1, 7, dtype=np.float32)
    mirror = attrs.evolve(NO_AUGMENT, mirror_p=1.0)
    out, _, out_demo, _ = augment_sequence(x, np.ones(6, bool), demo, mirror, IMU_FEATURES, rng)
    np.testing.assert_array_equal(out, mirror_features(x, IMU_FEATURES))
    np.testing.assert_array_equal(out[:, 0], -x[:, 0])  # acc_x
    np.testing.assert_array_equal(out[:, 1], x[:, 1])  # acc_y
    assert out_demo[3] == pytest.approx(1 - demo[3])


def test_mixup_batch() -> None:
    data = toy_set([3, 8, 5, 12], ["Wave hello"] * 4)
    batch = next(iter(DataLoader(SequenceDataset(data, np.arange(4), max_len=8), batch_size=4)))
    mixed = mixup_batch(batch, alpha=0.4, generator=torch.Generator().manual_seed(0))
    again = mixup_batch(batch, alpha=0.4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mixed["x"], again["x"])
    perm, lam = mixed["mix_index"], mixed["mix_lambda"]
    assert perm.dtype == torch.int64 and sorted(perm.tolist()) == [0, 1, 2, 3]
    assert lam.dim() == 0 and 0.0 <= lam.item() <= 1.0
    torch.testing.assert_close(mixed["x"], lam * batch["x"] + (1 - lam) * batch["x"][perm])
    torch.testing.assert_close(mixed["mask"], batch["mask"] | batch["mask"][perm])
    torch.testing.assert_close(mixed["y18"], batch["y18"])  # labels are mixed in the loss
