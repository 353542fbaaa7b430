"""Stop signals while trials run: SIGTERM keeps its identity (exit 143, as a sequential run;
docs/running.md, exit codes) for ``cmi run --jobs N`` and ``cmi sweep``. A second signal during
the clean-up, and workers that die, are in test_workers.py."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence

import pytest

from cmi_core.common.signals import Stopped
from cmi_core.runs.executor import Trial, TrialReply
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
