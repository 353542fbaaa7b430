"""The run tests' tiny 2-fold run (tests/run/conftest.py), plus a thm/ToF variant of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmi_core.config import Config
from tests.run.conftest import finished_run, run_cache, tiny_config

__all__ = ["finished_run", "run_cache"]  # fixtures shared with the run tests


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: these tests predict one tiny sequence at a time, where a second thread
    only adds synchronisation (bench/bench_predict.py), and much more so on shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data_dir(cfg: Config) -> Path:
    from cmi_core.data.source import resolve_data_dir

    return resolve_data_dir(cfg.data)


@pytest.fixture(scope="session")
def tiny_run(finished_run: Path, run_cache: Path) -> tuple[Path, Path]:
    """``(run_dir, data_dir)``: a finished 2-fold IMU-only run and its synthetic Kaggle files."""
    return finished_run, _data_dir(tiny_config(run_cache))


@pytest.fixture(scope="session")
def tiny_thm_tof_run(
    run_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Like ``tiny_run`` with the thermopile/ToF channels, fold 0 only."""
    from cmi_core.runs.run import run_experiment

    cfg = tiny_config(run_cache, data={"features": {"thm_tof": True}}, cv={"folds": [0]})
    run_dir = tmp_path_factory.mktemp("thm_tof") / "run"
    run_experiment(cfg, run_dir, progress=False)
    return run_dir, _data_dir(cfg)


@pytest.fixture(scope="session")
def tiny_downsampled_run(
    run_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Like ``tiny_run`` with every 2 frames averaged into one (``downsample = 2``), fold 0."""
    from cmi_core.runs.run import run_experiment

    cfg = tiny_config(run_cache, data={"features": {"downsample": 2}}, cv={"folds": [0]})
    run_dir = tmp_path_factory.mktemp("downsampled") / "run"
    run_experiment(cfg, run_dir, progress=False)
    return run_dir, _data_dir(cfg)


@pytest.fixture(scope="session")
def tiny_tof_images_run(
    run_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Like ``tiny_thm_tof_run`` with the ToF images and the image branch, fold 0 only."""
    from cmi_core.runs.run import run_experiment

    features = {"thm_tof": True, "tof_images": True}
    cfg = tiny_config(run_cache, data={"features": features}, cv={"folds": [0]})
    run_dir = tmp_path_factory.mktemp("tof_images") / "run"
    run_experiment(cfg, run_dir, progress=False)
    return run_dir, _data_dir(cfg)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(bundle_dir, data_dir)``: ``cmi bundle`` of ``tiny_run`` (no download of pinned wheels)."""
    from cmi_core.predict.bundle import write_bundle

    run_dir, data_dir = tiny_run
    out = tmp_path_factory.mktemp("bundle") / "upload"
    write_bundle([run_dir], out, download=False, log=lambda line: None)
    return out, data_dir


POSTPROCESSORS = {
    "subject_assignment": "cmi_postprocess_subject_assignment",
    "subject_prior": "cmi_postprocess_subject_prior",
}


@pytest.fixture
def postprocessors(site_dir: Path) -> None:
    """The built-in post-processors as entry points even where the installed metadata predates
    them (an editable install made before they were added; ``pip install -e .`` refreshes
    it): a stand-in distribution declares the missing ones, pointing at the real packages."""
    from importlib import metadata

    from tests.conftest import install_fake_distribution

    declared = {ep.name for ep in metadata.entry_points(group="cmi.plugins")}
    missing = {name: target for name, target in POSTPROCESSORS.items() if name not in declared}
    if missing:
        install_fake_distribution(site_dir, "cmi-postprocessors-dev", missing, {})
