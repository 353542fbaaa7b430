"""``cmi bundle``: runs -> a folder ready for ``kaggle datasets create`` (docs/kaggle.md).

What a Kaggle notebook needs and nothing else: each run's ``config.toml``, ``summary.json`` and
``oof_predictions.csv`` (the order of its class probabilities), and every finished fold's
``best.pt`` slimmed to the network's weights; the wheel of cmi-trainer at the version that
trained the runs, the wheels of the plugin distributions the runs' configs name, the
pure-Python packages inference needs that the Kaggle image lacks (pinned to versions that work
with the image's older attrs), a ``dataset-metadata.json`` skeleton and the notebook. Unfinished
folds, ``last.ckpt``, logger files and the weighting strategy's state stay behind.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import Distribution, distribution, distributions
from pathlib import Path
from typing import Any

import attrs
import torch

from cmi_core.common.atomic import atomic_path, write_text_atomic
from cmi_core.errors import RunError
from cmi_core.predict.fold_models import (
    CHECKPOINT_KEYS,
    WEIGHTING_PREFIX,
    fold_checkpoints,
    load_checkpoint,
    run_config,
)
from cmi_core.predict.notebook import notebook_json
from cmi_core.predict.postprocessing import build_postprocessor, run_protocol
from cmi_core.registry.manager import get_plugin_manager
from cmi_core.rundir.layout import CONFIG_FILE, OOF_FILE, SUMMARY_FILE, fold_dir
from cmi_core.rundir.reader import RunDir

PROJECT = "cmi-trainer"
KAGGLE_IMAGE_LACKS = ("cattrs==24.1.2", "tomli-w==1.0.0")
"""Inference imports these and the Kaggle image has no (or too new a) version of them. cattrs
24.1 is the newest that imports under attrs 24.2 (``attrs.NothingType`` came in attrs 25)."""
RUNS_DIR, WHEELS_DIR, NOTEBOOK = "runs", "wheels", "submission.ipynb"
Log = Callable[[str], None]


@attrs.frozen
class Bundle:
    """What ``write_bundle`` wrote: the folder, its runs and wheels, and its size in bytes."""

    out: Path
    runs: tuple[str, ...]
    wheels: tuple[str, ...]
    size: int


def write_bundle(
    run_dirs: Sequence[Path],
    out: Path,
    *,
    slug: str = "my-cmi-run",
    weights: Sequence[float] | None = None,
    by_sensors: bool = False,
    postprocess: str | None = None,
    postprocess_options: Mapping[str, Any] | None = None,
    download: bool = True,
    log: Log = print,
) -> Bundle:
    """Write the upload folder ``out`` (new or empty) for ``run_dirs``; see the module doc.

    ``postprocess``: the notebook's per-subject post-processor, checked here (name, options,
    the outputs it needs) so that a bad one fails before anything is written."""
    runs = {_unique_name(Path(r), i): Path(r) for i, r in enumerate(run_dirs)}
    version = _trained_version(runs.values())
    if postprocess is not None:
        build_postprocessor(postprocess, run_protocol(Path(run_dirs[0])), postprocess_options)
    _check_out(out)
    for name, run_dir in runs.items():
        folds = _copy_run(run_dir, out / RUNS_DIR / name)
        log(f"bundle: run {run_dir} -> {RUNS_DIR}/{name} (folds {folds})")
    wheels = out / WHEELS_DIR
    wheels.mkdir(parents=True, exist_ok=True)
    for dist in _distributions(runs.values(), postprocess):
        log(f"bundle: wheel of {dist.metadata['Name']} {dist.version}")
        _build_wheel(dist, wheels, version if dist.metadata["Name"] == PROJECT else None)
    if download:
        log(f"bundle: downloading {' '.join(KAGGLE_IMAGE_LACKS)}")
        _pip("download", "--no-deps", "--only-binary=:all:", "-d", str(wheels), *KAGGLE_IMAGE_LACKS)
    _write_metadata(out, slug)
    notebook = notebook_json(
        list(runs),
        slug,
        weights=weights,
        by_sensors=by_sensors,
        postprocess=postprocess,
        postprocess_options=postprocess_options,
    )
    write_text_atomic(out / NOTEBOOK, notebook)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    wheel_names = tuple(sorted(p.name for p in wheels.glob("*.whl")))
    return Bundle(out, tuple(runs), wheel_names, size)


def _unique_name(run_dir: Path, index: int) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", run_dir.resolve().name) or "run"
    return name if index == 0 else f"{name}-{index}"


def _trained_version(run_dirs: Sequence[Path] | Any) -> str:
    """The cmi-trainer version every run was trained with, which must be the one installed:
    the wheel is built from it, and another version may read the checkpoints differently."""
    installed = distribution(PROJECT).version
    for run_dir in run_dirs:
        trained = RunDir(run_dir).summary().get("versions", {}).get(PROJECT)
        if trained != installed:
            raise RunError(
                f"{run_dir}: trained with cmi-trainer {trained}, but {installed} is installed; "
                "bundle it with the version that trained it"
            )
    return installed


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"--out {out}: exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)


def _copy_run(run_dir: Path, target: Path) -> list[int]:
    """The run files prediction reads, and each finished fold's network weights only."""
    checkpoints = fold_checkpoints(run_dir)
    cfg = run_config(run_dir)
    if cfg.plugins.modules:
        raise RunError(
            f"{run_dir}: its config registers local modules ({', '.join(cfg.plugins.modules)}); "
            "package them as a distribution with a cmi.plugins entry point to bundle the run"
        )
    target.mkdir(parents=True)
    for name in (CONFIG_FILE, SUMMARY_FILE, OOF_FILE):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, target / name)
    for k, path in checkpoints.items():
        ckpt = load_checkpoint(path)
        slim = {key: ckpt[key] for key in CHECKPOINT_KEYS}
        slim["state_dict"] = {
            key: value
            for key, value in ckpt["state_dict"].items()
            if not key.startswith(WEIGHTING_PREFIX)
        }
        fold_dir(target, k).mkdir()
        with atomic_path(fold_dir(target, k) / path.name) as tmp:
            torch.save(slim, tmp)
    return sorted(checkpoints)


def _distributions(run_dirs: Sequence[Path] | Any, postprocess: str | None) -> list[Distribution]:
    """cmi-trainer and the distribution of every plugin that prediction of the runs needs
    (their backbones and the post-processor: the weighting and the loggers play no part)."""
    names = {PROJECT}
    info = {(i.kind, i.name): i for i in get_plugin_manager().infos()}
    for run_dir in run_dirs:
        backbone = run_config(run_dir).model.backbone
        names.add(info[("backbone", backbone)].distribution)
    if postprocess is not None:
        names.add(info[("postprocessor", postprocess)].distribution)
    return [distribution(name) for name in sorted(names)]


def _build_wheel(dist: Distribution, wheels: Path, version: str | None) -> None:
    """A wheel of an installed distribution, built from the source tree it was installed from
    (a copy of it, so nothing is written into that tree)."""
    source = _source_dir(dist)
    with tempfile.TemporaryDirectory(prefix="cmi-bundle-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(source, copy, ignore=_IGNORED)
        built = Path(tmp) / "wheel"
        _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(built), str(copy))
        (wheel,) = built.glob("*.whl")
        if version is not None and f"-{version}-" not in wheel.name:
            raise RunError(f"{wheel.name}: built from {source}, not version {version}")
        shutil.copyfile(wheel, wheels / wheel.name)


_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "runs", ".cache", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


def _source_dir(dist: Distribution) -> Path:
    """The local directory an installed distribution came from (``pip install -e .`` or
    ``pip install ./dir``), from its ``direct_url.json`` (PEP 610). A source tree's own
    ``*.egg-info`` may shadow the installed metadata, so every copy of the name is asked."""
    name = dist.metadata["Name"]
    texts = [d.read_text("direct_url.json") for d in distributions(name=name)]
    urls = [json.loads(text).get("url", "") for text in texts if text]
    url = next((u for u in urls if u.startswith("file://")), "")
    if not url or not Path(url.removeprefix("file://")).is_dir():
        raise RunError(
            f"{dist.metadata['Name']} {dist.version} was not installed from a local source "
            "tree, so its wheel cannot be rebuilt; add its wheel to the bundle's wheels/ by hand"
        )
    return Path(url.removeprefix("file://"))


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RunError(f"pip {args[0]} failed: {last}")


def _write_metadata(out: Path, slug: str) -> None:
    metadata = {
        "title": slug,
        "id": f"<your-kaggle-username>/{slug}",
        "licenses": [{"name": "CC0-1.0"}],
    }
    write_text_atomic(out / "dataset-metadata.json", json.dumps(metadata, indent=2) + "\n")
