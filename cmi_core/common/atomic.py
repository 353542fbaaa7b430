"""The one way cmi-trainer writes a file: to a fresh temporary file beside it, then renamed.

A reader sees the old file or the new one, never half of one; an interrupted or failed write
(a full disk, Ctrl-C) leaves the old file and no temporary behind. The temporary file is
created with ``O_EXCL``, so a symbolic link planted under its name (or under the target's: the
rename replaces a link, it does not follow it) never redirects a write outside the directory.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cmi_core.common.paths import output_problem
from cmi_core.errors import CmiError, RunError

TMP_SUFFIX = ".tmp"
FULL_BELOW_BYTES = 1 << 20
"""Free space under which a failed write is blamed on a full disk."""


def temp_name(target: Path) -> Path:
    """A new, unused temporary name beside ``target``: ``.<name>.<token>.tmp``."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def target_of(name: str) -> str | None:
    """The file name a temporary file of :func:`temp_name` was written for, else ``None``."""
    if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
        return None
    stem, _, token = name[1 : -len(TMP_SUFFIX)].rpartition(".")
    return stem if stem and len(token) == 8 else None


@contextmanager
def atomic_path(target: Path, *, commit: bool = True) -> Iterator[Path]:
    """Yield a temporary path for a writer that takes a path (``torch.save``, polars, numpy);
    rename it onto ``target`` when the block ends without error (and ``commit`` is true).

    An ``OSError`` (no space, no permission) becomes a one-line ``RunError`` naming ``target``;
    so does any other error of the writer on a full disk (``torch.save`` raises a
    ``RuntimeError`` about stream positions, polars a ``ComputeError``). Elsewhere another
    error is a bug and keeps its traceback.
    """
    target = Path(target)
    tmp = temp_name(target)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        if commit:
            os.replace(tmp, target)
    except CmiError:
        raise  # already one line (an enclosing atomic_path of the same failed write)
    except OSError as exc:
        raise RunError(f"{target}: cannot write ({os_reason(exc)})") from None
    except Exception:
        if not disk_full(target.parent):
            raise
        raise RunError(f"{target}: cannot write ({os.strerror(errno.ENOSPC)})") from None
    finally:
        tmp.unlink(missing_ok=True)


def os_reason(exc: OSError) -> str:
    """``No space left on device``: the system's words, also for an ``OSError`` raised by a
    Rust library (polars), which has no ``strerror`` and ends its message in ``(os error N)``."""
    if exc.strerror:
        return exc.strerror
    match = re.fullmatch(r"(.*) \(os error (\d+)\)", str(exc))
    return os.strerror(int(match.group(2))) if match else str(exc)


def disk_full(directory: Path) -> bool:
    """Whether the file system of ``directory`` has (next to) no space left for this user."""
    try:
        stat = os.statvfs(directory)
    except (OSError, AttributeError):  # gone, or no statvfs (Windows): cannot tell
        return False
    return stat.f_bavail * stat.f_frsize < FULL_BELOW_BYTES


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def check_writable_file(path: Path, argument: str = "") -> None:
    """Refuse, before any work, an output file that cannot be written where it is named: the
    checks of :func:`cmi_core.common.paths.output_problem`, and a parent that exists (an
    atomic write creates no directories). ``argument`` names the option (``--csv``)."""
    path = Path(path)
    where = f"{argument} {path}".strip()
    problem = output_problem(path, "file")
    if problem is None and not path.parent.is_dir():
        problem = f"{path.parent} does not exist"
    if problem:
        raise RunError(f"{where}: {problem}")
