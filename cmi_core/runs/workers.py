"""Worker processes that outlive none of their faults: the pool behind ``LocalExecutor``.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one worker dies
(out of memory, ``kill -9``): every queued trial failed at once and the driver could hang in
its shutdown. Here each worker has its own pipe, so the driver knows which item a dead worker
held: that item alone fails, a new worker takes the queue, and the driver always ends (each
death consumes the item it held).

A worker also ends when its driver dies, however it dies: a Linux parent-death signal, and on
every platform a watchdog thread that notices the worker was re-parented.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import attrs

from cmi_core.common.signals import Stopped, ignoring_stop_signals

PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal a process gets when its parent thread dies."""
WATCHDOG_SECONDS = 1.0
"""How often a worker checks that its driver is still its parent."""
STOP_TIMEOUT = 10.0
"""Seconds a terminated worker gets to exit before it is killed."""


@attrs.define
class Finished:
    """One item's end: its ``result``, or ``died`` saying how its worker died."""

    item: Any
    result: Any = None
    died: str | None = None


@attrs.define
class _Worker:
    process: BaseProcess
    conn: Connection
    item: Any = None
    busy: bool = False


class WorkerPool:
    """``jobs`` spawn-started processes calling ``task(item)``, one item at a time each.

    ``task`` must be a module-level function (spawn pickles it by name); it should catch its
    own errors and return them, as :func:`cmi_core.runs.executor.run_trial` does.
    """

    def __init__(self, jobs: int, task: Callable[[Any], Any]) -> None:
        self.jobs, self.task = jobs, task
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def pids(self) -> list[int]:
        """The live workers' process ids (tests find them here)."""
        return [w.process.pid for w in self.workers if w.process.pid is not None]

    def run(self, items: Sequence[Any]) -> Iterator[Finished]:
        """Yield every item's end as it comes; the caller stops the pool (:meth:`stop`)."""
        queue = deque(items)
        while queue or any(w.busy for w in self.workers):
            self._assign(queue)
            busy = [w for w in self.workers if w.busy]
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                finished = self._collect(worker)
                if finished is not None:
                    yield finished

    def _assign(self, queue: deque[Any]) -> None:
        """Give every idle worker the next item; start workers up to ``jobs`` while items wait
        (a dead worker's place is taken here)."""
        while queue and len(self.workers) < self.jobs:
            self.workers.append(self._start())
        for worker in self.workers:
            if queue and not worker.busy:
                item = queue.popleft()
                try:
                    worker.conn.send(item)
                except OSError:  # died idle: the item goes back, the next round replaces it
                    queue.appendleft(item)
                    self._remove(worker)
                    continue
                worker.item, worker.busy = item, True

    def _start(self) -> _Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=_worker_main, args=(theirs, self.task, os.getpid()), daemon=True
        )
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def _collect(self, worker: _Worker) -> Finished | None:
        """The worker's result if it sent one, its death if it died, else ``None``."""
        if worker.conn.poll():
            try:
                result = worker.conn.recv()
            except (EOFError, OSError):
                pass  # the pipe closed without a result: the worker died
            else:
                worker.busy = False
                return Finished(worker.item, result)
        elif worker.process.is_alive():
            return None
        worker.process.join(timeout=STOP_TIMEOUT)
        self._remove(worker)
        return Finished(worker.item, died=describe_exit(worker.process.exitcode))

    def _remove(self, worker: _Worker) -> None:
        worker.conn.close()
        self.workers.remove(worker)

    def stop(self, *, graceful: bool) -> None:
        """End every worker: idle ones are told to exit; after an interrupt, or with work
        unfinished, they are terminated (deaf to further stop signals until every worker is
        gone, or a second Ctrl-C would leave workers training without a driver)."""
        with ignoring_stop_signals():
            for worker in self.workers:
                if graceful:
                    _send_quietly(worker.conn, None)
                else:
                    worker.process.terminate()
            for worker in self.workers:
                worker.process.join(timeout=STOP_TIMEOUT)
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(timeout=5)
                worker.conn.close()
            self.workers.clear()


def describe_exit(code: int | None) -> str:
    """``killed by SIGKILL`` or ``exit code 3``: why a worker is gone."""
    if code is not None and code < 0:
        return f"its worker process was killed by {signal.Signals(-code).name}"
    return f"its worker process died (exit code {code})"


def _send_quietly(conn: Connection, message: Any) -> None:
    with contextlib.suppress(OSError):  # already gone
        conn.send(message)


# -- inside a worker ----------------------------------------------------------------------------


def _worker_main(conn: Connection, task: Callable[[Any], Any], driver: int) -> None:
    """Take items until told to stop (``None``) or the driver's end of the pipe closes."""
    start_worker(driver)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        try:
            reply = task(item)
        except Stopped as stop:  # a fold's own handler met the driver's SIGTERM: no traceback
            os._exit(stop.exit_code)
        conn.send(reply)


def start_worker(driver: int) -> None:
    """Ctrl-C reaches the whole process group: the driver alone handles it and stops us with
    SIGTERM, which must end this process at once. Lightning's own SIGTERM handler only notes
    the signal (and calls this one): the fit would go on, and so would the next item.
    Exiting mid-epoch loses nothing a resume needs: checkpoints are written atomically.

    The driver's death ends us too (``driver``: its pid), or we would train on unwatched.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))
    # SIGKILL: a fold installs its own SIGTERM handler (stop at the next batch), and nothing
    # of an orphaned worker's work is wanted; its checkpoints are whole (atomic writes)
    _parent_death_signal(signal.SIGKILL)
    if os.getppid() != driver:  # the driver died before the signal was armed
        os._exit(128 + signal.SIGTERM)
    threading.Thread(target=_watch_driver, args=(driver,), daemon=True, name="cmi-watch").start()


def _parent_death_signal(signum: int) -> None:
    """Linux: have the kernel send ``signum`` when the driver dies, even by ``kill -9``."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog below still ends us


def _watch_driver(driver: int) -> None:
    """Portable fallback: a worker whose driver died is re-parented; then exit at once."""
    while os.getppid() == driver:
        time.sleep(WATCHDOG_SECONDS)
    os._exit(128 + signal.SIGTERM)
