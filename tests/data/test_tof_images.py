"""The ToF images per frame (``data.features.tof_images``): proximity values, the mirror
(sensors 3 <-> 5, every image flipped left to right), and the reader's channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmi_core.config import FeatureConfig
from cmi_core.data import features as feat
from cmi_core.data.reader import load_train
from cmi_core.data.schema import DEMOGRAPHIC_FEATURES


def test_proximity_of_raw_readings() -> None:
    raw = np.array([0.0, 255.0, 127.5, -1.0, np.nan, 300.0])
    np.testing.assert_allclose(feat.tof_proximity(raw), [1.0, 0.0, 0.5, 0.0, 0.0, 0.0])


def images(frame: np.ndarray) -> np.ndarray:
    """(320,) -> (5, 8, 8): sensor, row, column."""
    return frame.reshape(5, 8, 8)


def test_the_mirror_swaps_sensors_3_and_5_and_flips_every_image() -> None:
    frame = np.arange(320, dtype=np.float32)  # every pixel a distinct number
    mirrored = images(frame[feat.tof_image_mirror()])
    original = images(frame)
    for sensor, source in enumerate([0, 1, 4, 3, 2]):
        np.testing.assert_array_equal(mirrored[sensor], original[source][:, ::-1])
    assert mirrored[2, 0, 0] == original[4, 0, 7]  # sensor 3's top left: sensor 5's top right
    np.testing.assert_array_equal(frame[feat.tof_image_mirror()][feat.tof_image_mirror()], frame)


def test_mirror_features_moves_the_image_channels_as_the_raw_mirror_does() -> None:
    names = feat.feature_names(FeatureConfig(thm_tof=True, tof_images=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, len(names))).astype(np.float32)
    mirrored = feat.mirror_features(x, names)
    start = names.index("tof_1_px0")
    np.testing.assert_array_equal(mirrored[:, start:], x[:, start:][:, feat.tof_image_mirror()])
    np.testing.assert_array_equal(feat.mirror_features(mirrored, names), x)


def test_the_reader_gives_320_image_channels_mirrored_for_left_hands(synthetic_dir: Path) -> None:
    config = FeatureConfig(thm_tof=True, tof_images=True)
    plain = load_train(
        synthetic_dir, FeatureConfig(thm_tof=True, tof_images=True, mirror_left_handed=False)
    )
    data = load_train(synthetic_dir, config)
    assert data.feature_names == feat.feature_names(config)
    assert data.features[0].shape[1] == 16 + 16 + 320
    start = data.feature_names.index("tof_1_px0")
    hand = DEMOGRAPHIC_FEATURES.index("handedness")
    left = np.flatnonzero(data.demographics[:, hand] == 0.0)
    right = np.flatnonzero(data.demographics[:, hand] == 1.0)
    assert len(left) and len(right)
    for i in (left[0], right[0]):
        expected = plain.features[i][:, start:]
        if i in left:
            expected = expected[:, feat.tof_image_mirror()]
        np.testing.assert_array_equal(data.features[i][:, start:], expected)
    summaries = load_train(synthetic_dir, FeatureConfig(thm_tof=True))
    np.testing.assert_array_equal(data.features[0][:, :start], summaries.features[0])
