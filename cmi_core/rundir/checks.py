"""The checks before a run writes its directory: the directory itself, and on ``--resume`` the
config and the data of the run being continued.

Everything here refuses in one line before any training, so a mistake never costs a fold.
"""

from __future__ import annotations

from pathlib import Path

from cmi_core.config import Config
from cmi_core.data.fingerprint import DataFingerprint
from cmi_core.errors import RunError
from cmi_core.rundir.layout import (
    CONFIG_FILE,
    RESUMABLE_KEYS,
    check_writable,
    flat_config_of,
    has_entries,
    write_data_fingerprint,
)
from cmi_core.rundir.reader import RunDir


def check_run_dir(cfg: Config, out_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, to mix two runs in one directory or to resume nothing."""
    holds_run = (out_dir / CONFIG_FILE).is_file()
    if resume:
        if not holds_run:
            raise RunError(f"{out_dir}: nothing to resume (no {CONFIG_FILE})")
        _check_same_config(cfg, RunDir(out_dir))
        check_writable(out_dir)
    elif holds_run and not overwrite:
        raise RunError(
            f"{out_dir} already holds a run; continue it with --resume or replace it with "
            "--overwrite"
        )
    elif not holds_run and out_dir.exists() and has_entries(out_dir):
        raise RunError(f"{out_dir} is not empty and holds no run; choose another --out")


def _check_same_config(cfg: Config, run: RunDir) -> None:
    # the given config imports its modules to train: the stored one may use them too
    stored, given = run.flat_config(cfg.plugins.modules), flat_config_of(cfg)
    changed = sorted(
        key
        for key in stored.keys() | given.keys()
        if stored.get(key) != given.get(key) and key not in RESUMABLE_KEYS
    )
    if changed:
        raise RunError(
            f"{run.path / CONFIG_FILE}: the config differs from the run being resumed at "
            f"{', '.join(changed)}; resume with the run's own config.toml"
        )


def check_same_data(out_dir: Path, data: DataFingerprint, *, resume: bool) -> None:
    """Record the data a run trains on; on resume, refuse data that differ from it."""
    stored = RunDir(out_dir).data_fingerprint() if resume else None
    if stored is None:
        write_data_fingerprint(out_dir, data)
        return
    differs = stored.differences(data)
    if differs:
        raise RunError(
            f"{out_dir}: the training data differ from the data the run was trained on "
            f"({', '.join(differs)}); resume with the run's own data (data.dir, "
            "data.synthetic) or start a new run"
        )
