"""What ``cmi check`` refuses so that ``cmi run`` never meets it later, across keys: the
``[trainer]`` combinations Lightning's ``Trainer`` refuses, feature keys that need each other,
and the paths a config names (the
single values are checked by their fields, :mod:`cmi_core.config.lightning_values`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

from cmi_core.common.paths import input_problem, output_problem
from cmi_core.config.lightning_values import devices_problem
from cmi_core.config.structure import Problem
from cmi_core.config.tree import Config

SPAWN_REFUSAL = (
    "{strategy!r} is not supported (a crashed child process can leave the run waiting for it,"
    " issue 19); use 'ddp', which starts the same processes"
)
"""Issue 19 found ``ddp_spawn`` hanging after a child process crashed; ``ddp`` trains the same
way (one process per rank, one gloo/NCCL group) and is the strategy the tests exercise
(tests/run/test_ddp.py)."""


def check_trainer(cfg: Config) -> Iterable[Problem]:
    """Combinations of ``[trainer]`` keys that Lightning's ``Trainer`` refuses."""
    t = cfg.trainer
    if t.accelerator == "cpu":
        if devices_problem(t.devices) is None and not _a_count(t.devices):
            yield ("trainer", "devices"), f"must be a count >= 1 on a CPU, got {t.devices!r}"
        if t.strategy.startswith("fsdp"):
            yield ("trainer", "strategy"), f"{t.strategy!r} needs a GPU (trainer.accelerator)"
    if t.strategy.startswith("ddp_spawn"):
        yield ("trainer", "strategy"), SPAWN_REFUSAL.format(strategy=t.strategy)
    if t.strategy.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        yield ("trainer", "strategy"), f"{t.strategy!r} needs the deepspeed package, not installed"


def _a_count(devices: object) -> bool:
    """``"auto"`` or a number of processes: all a CPU accelerator takes (no device indices)."""
    if isinstance(devices, str):
        return devices == "auto" or (devices.isdigit() and int(devices) >= 1)
    return isinstance(devices, int) and devices >= 1


def check_features(cfg: Config) -> Iterable[Problem]:
    """The image branch reads the ToF images beside the summaries' presence flag."""
    if cfg.data.features.tof_images and not cfg.data.features.thm_tof:
        yield ("data", "features", "tof_images"), "needs data.features.thm_tof = true"


def check_paths(cfg: Config) -> Iterable[Problem]:
    """The directories a run reads (``data.dir``) and writes (``data.cache_dir``)."""
    if cfg.data.source == "kaggle" and cfg.data.dir:
        problem = input_problem(Path(cfg.data.dir), "dir")
        if problem is None and input_problem(Path(cfg.data.dir) / "train.csv", "file"):
            problem = "holds no readable train.csv"
        if problem == "not found":
            yield ("data", "dir"), f"directory not found: {cfg.data.dir}"
        elif problem:
            yield ("data", "dir"), f"{cfg.data.dir}: {problem}"
    problem = output_problem(Path(cfg.data.cache_dir), "dir")
    if problem:
        yield ("data", "cache_dir"), f"{cfg.data.cache_dir}: {problem}"
