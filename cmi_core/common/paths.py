"""Checks of the paths a command is given, made before any work starts.

One helper for every command (and for the paths of a config), so that a missing input, a
file where a directory is expected (or the reverse), an unreadable input or an unwritable
target is one line naming the argument, not a traceback from deep inside a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from cmi_core.errors import PathError

Kind = Literal["file", "dir"]
_NAMES = {"file": "a file", "dir": "a directory"}


def _kind_of(path: Path) -> Kind | None:
    """``file``, ``dir`` or ``None`` for a path that does not exist (a dangling link counts as
    missing: nothing can be read through it)."""
    if path.is_dir():
        return "dir"
    return "file" if path.exists() else None


def _nearest_existing(path: Path) -> Path:
    """The path itself or its closest ancestor that exists (where a new target is created)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable_dir(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def input_problem(path: Path, kind: Kind) -> str | None:
    """Why ``path`` cannot be read as ``kind``, or ``None`` when it can."""
    found = _kind_of(path)
    if found is None:
        return "not found"
    if found != kind:
        return f"is {_NAMES[found]}, expected {_NAMES[kind]}"
    mode = os.R_OK | (os.X_OK if kind == "dir" else 0)
    return None if os.access(path, mode) else "cannot be read (permission denied)"


def output_problem(path: Path, kind: Kind) -> str | None:
    """Why ``path`` cannot be written (or created) as ``kind``, or ``None`` when it can."""
    found = _kind_of(path)
    if found is not None and found != kind:
        return f"is {_NAMES[found]}, expected {_NAMES[kind]}"
    if found == "dir":
        return None if _writable_dir(path) else "cannot be written (permission denied)"
    base = _nearest_existing(path if found is None else path.parent)
    if not base.is_dir():
        return f"cannot be created: {base} is a file, not a directory"
    if not _writable_dir(base):
        return f"cannot be written: {base} is read-only (permission denied)"
    return None


def require_input(argument: str, path: Path, kind: Kind) -> Path:
    """``path`` if it can be read as ``kind``, else a one-line ``PathError`` naming
    ``argument`` (``RUN_DIR``, ``--data``)."""
    problem = input_problem(Path(path), kind)
    if problem:
        raise PathError(f"{argument} {path}: {problem}")
    return Path(path)


def require_output(argument: str, path: Path, kind: Kind) -> Path:
    """``path`` if it can be written or created as ``kind``, else a one-line ``PathError``."""
    problem = output_problem(Path(path), kind)
    if problem:
        raise PathError(f"{argument} {path}: {problem}")
    return Path(path)
