"""The driver's progress line: its ETA must not trust trials resumed near their end."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cmi_core.runs import trials
from cmi_core.runs.executor import Trial, TrialReply
from cmi_core.runs.trials import Progress


def _outcome(fold: int) -> TrialReply:
    result = SimpleNamespace(record=SimpleNamespace(cmi_score=0.9))
    return TrialReply(Trial("runs/sweep/a-seed0", fold, {}, 1), result=result)  # type: ignore[arg-type]


def _lines(clock: list[float], progress: Progress, finished: list[tuple[float, int]], capsys):
    for at, fold in finished:
        clock[0] = at
        progress.report(_outcome(fold))
    return capsys.readouterr().err.splitlines()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [0.0]
    monkeypatch.setattr(trials.time, "monotonic", lambda: now[0])
    return now


def test_eta_is_time_per_trial_times_trials_left(clock: list[float], capsys) -> None:
    progress = Progress(total=5, to_run=4)
    lines = _lines(clock, progress, [(60.0, 0), (120.0, 1), (180.0, 2), (240.0, 3)], capsys)
    assert lines[0] == "[2/5 trials] a-seed0 fold 0: cmi_score 0.9000 | ETA 3m00s"
    assert lines[2].endswith("| ETA 1m00s")
    assert lines[3] == "[5/5 trials] a-seed0 fold 3: cmi_score 0.9000"


def test_a_resumed_trial_does_not_set_the_pace(clock: list[float], capsys) -> None:
    """Fold 0 resumed from its last.ckpt and finished after 5 s; fresh folds take 60 s."""
    progress = Progress(total=4, to_run=4, resumed={"a-seed0 fold 0"})
    lines = _lines(clock, progress, [(5.0, 0), (65.0, 1), (125.0, 2)], capsys)
    assert "ETA" not in lines[0]  # 5 s per trial would promise 15 s for the three left
    assert lines[1].endswith("| ETA 2m10s")  # 65 s per fresh trial, 2 left
    assert lines[2].endswith("| ETA 1m02s")
