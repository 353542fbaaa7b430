"""One writer per output directory: a run or sweep directory is locked while a process fills it.

Two processes writing one directory (a second identical ``cmi sweep``, a ``--resume`` of a run
that is still training) would train the same folds into the same files. The lock is an
``flock`` on :data:`LOCK_FILE` inside the directory: the OS releases it when its process ends,
however it ends (``kill -9`` included), so a stale lock never needs deleting by hand. The file
holds the holder's pid, named when a second process is refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cmi_core.errors import RunError

try:
    import fcntl
except ImportError:  # not POSIX: no lock, as before
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".cmi.lock"


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s lock inside the block (creating the directory); a directory
    another process holds is a one-line ``RunError`` naming that process. A directory the
    lock created and nothing filled (the run refused its data, say) is removed again."""
    if fcntl is None:
        yield
        return
    directory = Path(directory)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise RunError(f"{directory}: cannot lock the directory ({exc.strerror or exc})") from None
    try:
        _acquire(fd, directory)
        yield
    finally:
        if created:
            _remove_if_unused(directory)
        os.close(fd)  # releases the lock; the file stays (deleting it would race a new holder)


def _remove_if_unused(directory: Path) -> None:
    """Remove a directory that holds nothing but our lock file, while we still hold it."""
    with contextlib.suppress(OSError):
        if [path.name for path in directory.iterdir()] == [LOCK_FILE]:
            (directory / LOCK_FILE).unlink()
            directory.rmdir()


def _acquire(fd: int, directory: Path) -> None:
    """Lock without waiting, then record our pid for whoever is refused next."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        raise RunError(
            f"{directory}: in use by another cmi process (pid {holder}); wait for it to end "
            "or stop it"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
