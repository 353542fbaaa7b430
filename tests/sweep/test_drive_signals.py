"""Stop signals while trials run: SIGTERM keeps its identity (exit 143, as a sequential run;
docs/running.md, exit codes) for ``cmi run --jobs N`` and ``cmi sweep``, and a second signal
during the clean-up cannot leave workers running."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

import psutil
import pytest

from cmi_core.common.signals import Stopped, stop_signals
from cmi_core.runs.executor import Trial, TrialReply, _stop
from cmi_core.runs.trials import drive


class SignalledExecutor:
    """Receives ``signum`` while its trials run, as from a scheduler or Ctrl-C."""

    default_threads = 1

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialReply]:
        os.kill(os.getpid(), self.signum)
        yield from ()

    def close(self) -> None:
        pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_trials_stops_with_its_own_exit_code(signum: int) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped) as stopped:
        drive([], SignalledExecutor(signum))
    assert stopped.value.signum == signum
    assert stopped.value.exit_code == 128 + signum
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_a_second_signal_during_clean_up_still_stops_every_worker() -> None:
    """A scheduler (or an impatient user) may signal again while the driver terminates its
    workers: the clean-up must finish, or workers train on without a driver."""
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    for _ in range(2):
        pool.submit(time.sleep, 120)
    deadline = time.monotonic() + 60
    while len(pool._processes) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    processes = list(pool._processes.values())
    assert len(processes) == 2, "the pool did not start its two workers"
    workers = [psutil.Process(process.pid) for process in processes]
    armed = [True]

    def signal_then(terminate: Callable[[], None]) -> None:
        # only the driver's own calls, while this test listens: the pool's thread also
        # terminates workers of a broken pool, later, when SIGTERM would end pytest itself
        if armed[0] and threading.current_thread() is threading.main_thread():
            os.kill(os.getpid(), signal.SIGTERM)
        terminate()

    for process in processes:
        process.terminate = functools.partial(signal_then, process.terminate)  # type: ignore[method-assign]
    with stop_signals():
        try:
            _stop(pool, finished=False)
        except Stopped:
            pytest.fail("a second signal cut the clean-up short")
        finally:
            armed[0] = False
    # asked of the OS: the pool's own thread may reap a worker first, which Process.is_alive()
    # then cannot see
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, "workers outlived the clean-up"
