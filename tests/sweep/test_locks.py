"""One writer per run or sweep directory (issue 19, fault 4): while another process holds a
directory, ``cmi run`` (fresh, ``--resume``, ``--overwrite``) and ``cmi sweep`` are refused in
one line naming that process, before any work; the lock dies with its holder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmi_core.cli import main
from cmi_core.common.lock import LOCK_FILE, directory_lock
from cmi_core.errors import RunError
from cmi_core.rundir.checks import check_run_dir
from cmi_core.runs import sweep
from cmi_core.runs.run import run_experiment
from tests.run.conftest import finished_run, tiny_config  # noqa: F401  (a fixture)

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cmi_core.common.lock import directory_lock
    with directory_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    """Start another process holding the lock of a directory: ``holder(directory)``."""
    processes: list[subprocess.Popen] = []

    def hold(directory: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(directory)], stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline() == "locked\n"
        return process

    yield hold  # type: ignore[misc]
    for process in processes:
        process.kill()
        process.wait()


def _refusal(directory: Path, process: subprocess.Popen) -> str:
    return f"{directory}: in use by another cmi process (pid {process.pid}); wait for it to end"


def test_a_run_into_a_locked_directory_is_refused_before_any_work(
    run_cache: Path, tmp_path: Path, holder
) -> None:
    run_dir = tmp_path / "run"
    other = holder(run_dir)
    with pytest.raises(RunError, match="^" + re.escape(_refusal(run_dir, other))):
        run_experiment(tiny_config(run_cache), run_dir, progress=False)
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_resume_or_overwrite_of_a_live_run_is_refused(
    finished_run: Path,  # noqa: F811
    tmp_path: Path,
    holder,
    capsys: pytest.CaptureFixture[str],
    flag: str,
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    before = (run_dir / "summary.json").read_bytes()
    other = holder(run_dir)
    argv = ["run", "--resume", str(run_dir)] if flag == "--resume" else []
    argv = argv or ["run", str(run_dir / "config.toml"), "--out", str(run_dir), "--overwrite"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + _refusal(run_dir, other)) and err.count("\n") == 1, err
    assert (run_dir / "summary.json").read_bytes() == before


def test_a_second_sweep_into_a_live_sweep_is_refused(
    tiny_toml: Path, tmp_path: Path, holder, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    other = holder(out)
    argv = ["sweep", str(tiny_toml), "--jobs", "1", "--seed-list", "0", "--out", str(out)]
    argv += ["--grid", "loss.weighting.strategy=none"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + _refusal(out, other)) and err.count("\n") == 1, err


def test_a_live_sweep_holds_its_run_directories_too(
    tiny_toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the sweep trains, ``cmi run --resume`` of one of its runs is refused. (A second
    ``open`` + ``flock`` conflicts even within one process, so the check can run inside.)"""
    out = tmp_path / "sweep"
    tried: list[str] = []

    def training(plan: object, out: Path, executor: object, state: dict) -> dict:
        for directory in (out, out / "none-seed0"):
            with (
                pytest.raises(RunError, match="in use by another cmi process") as refused,
                directory_lock(directory),
            ):
                pass
            tried.append(str(refused.value))
        return state

    monkeypatch.setattr(sweep, "_run_locked", training)
    argv = ["sweep", str(tiny_toml), "--jobs", "1", "--seed-list", "0", "--out", str(out)]
    main([*argv, "--grid", "loss.weighting.strategy=none"])  # the stub trains nothing
    assert len(tried) == 2
    with directory_lock(out / "none-seed0"):  # released when the sweep ends
        pass


def test_the_lock_dies_with_its_holder_and_its_file_blocks_nothing(
    run_cache: Path, tmp_path: Path, holder
) -> None:
    run_dir = tmp_path / "run"
    other = holder(run_dir)
    other.kill()  # kill -9: no clean-up ran
    other.wait()
    with directory_lock(run_dir):
        pass
    # the lock file an interrupted first attempt left is not "a directory holding something"
    check_run_dir(tiny_config(run_cache), run_dir, resume=False, overwrite=False)
