"""Tiny synthetic data sets shared by the data tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cmi_core.config import FeatureConfig
from cmi_core.data.reader import load_train
from cmi_core.data.sequences import SequenceSet
from cmi_core.data.synthetic import generate


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 train subjects (~400 sequences) and 2 test subjects, seed 0."""
    return generate(tmp_path_factory.mktemp("synthetic"), subjects=4, seed=0)


@pytest.fixture(scope="session")
def imu_train(synthetic_dir: Path) -> SequenceSet:
    """The synthetic train set read with the default 16 IMU features."""
    return load_train(synthetic_dir, FeatureConfig())


@pytest.fixture(scope="session")
def train_frame(synthetic_dir: Path) -> pl.DataFrame:
    return pl.read_csv(synthetic_dir / "train.csv", infer_schema_length=None)


@pytest.fixture(scope="session")
def test_frame(synthetic_dir: Path) -> pl.DataFrame:
    return pl.read_csv(synthetic_dir / "test.csv", infer_schema_length=None)


@pytest.fixture(scope="session")
def demographics(synthetic_dir: Path) -> pl.DataFrame:
    return pl.read_csv(synthetic_dir / "train_demographics.csv")


@pytest.fixture
def mini_dir(tmp_path: Path, train_frame: pl.DataFrame, demographics: pl.DataFrame) -> Path:
    """A small, valid data directory: the first 6 sequences of the synthetic train set."""
    keep = train_frame["sequence_id"].unique(maintain_order=True).head(6).to_list()
    train_frame.filter(pl.col("sequence_id").is_in(keep)).write_csv(tmp_path / "train.csv")
    demographics.write_csv(tmp_path / "train_demographics.csv")
    return tmp_path
