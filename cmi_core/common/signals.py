"""Stop signals: Ctrl-C (SIGINT) and a scheduler's or container's SIGTERM are handled alike.

Every command runs inside :func:`stop_signals`, which turns either signal into
:class:`Stopped`; the CLI exits with ``128 + signal number`` (130 for Ctrl-C, 143 for
SIGTERM). A training fold installs its own handler over it (``StopSignals`` in
``cmi_core.train.callbacks``) that stops at the next batch instead, so the run can keep its last
checkpoint and print the resume hint.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], None] | signal.Handlers


class Stopped(KeyboardInterrupt):
    """The user or the system asked the command to stop (a KeyboardInterrupt, so libraries
    that clean up on Ctrl-C, Lightning among them, do the same for SIGTERM)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def raise_stopped(signum: int, frame: FrameType | None) -> None:
    """The default handler: stop at once."""
    raise Stopped(signum)


@contextlib.contextmanager
def stop_signals(handler: Handler = raise_stopped) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``handler`` inside the block; the previous handlers after.

    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def ignoring_stop_signals() -> contextlib.AbstractContextManager[None]:
    """Clean-up after a stop (terminating worker processes) runs to its end: a second Ctrl-C
    or SIGTERM inside it would cut it short and leave workers training without a driver."""
    return stop_signals(signal.SIG_IGN)
