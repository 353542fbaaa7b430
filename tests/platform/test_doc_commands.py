"""Every ``cmi ...`` command in the shell code blocks of README.md and docs/*.md runs.

Commands are found anew on every run, so a command added to the docs is tested without
touching this file. Each runs as a user would type it (a subprocess of the installed ``cmi``,
in a temporary directory holding ``configs/``), made small: ``run`` gets the smoke overrides
below (a later ``-o`` wins over the docs' own), placeholder paths point at a tiny synthetic
data set in the Kaggle format, and one tiny run at ``runs/exp025`` (the README's own command)
serves the commands that read a run directory.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cmi_core.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CMI = Path(sys.executable).with_name("cmi")
SHELL = {"bash", "sh", "shell", "console", ""}
SMOKE = {
    "run": [
        "-o", "data.synthetic.subjects=4",
        "-o", "cv.n_folds=2",
        "-o", "trainer.max_epochs=1",
        "-o", "trainer.limit_train_batches=2",
        "-o", "trainer.accelerator=cpu",
    ],
}  # fmt: skip
HEAVY = {"run", "predict", "report"}
SHARED_RUN = "cmi run configs/exp025.toml --out runs/exp025"
KAGGLE_FILES = "/path/to/"  # any such path stands for the Kaggle files: the synthetic set
NOT_RUN: dict[str, str] = {
    # "cmi ... exactly as in the docs": "what it needs that a test cannot provide",
}


def shell_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks whose language is a shell (or not given)."""
    blocks, language, body = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, body = line[3:].strip(), []
                continue
            if language in SHELL:
                blocks.append("\n".join(body).replace("\\\n", " "))
            language = None
        elif language is not None:
            body.append(line)
    return blocks


def doc_commands() -> dict[str, list[str]]:
    """``{command: [files it appears in]}``, ``.venv/bin/cmi`` written as ``cmi``."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for block in shell_blocks(doc.read_text(encoding="utf-8")):
            for line in block.splitlines():
                for part in re.split(r"&&|;", line.split(" #")[0]):
                    words = part.strip().removeprefix("$ ").split(maxsplit=1)
                    if words and (words[0] == "cmi" or words[0].endswith("/cmi")):
                        command = " ".join(["cmi", *words[1:]])
                        found.setdefault(command, []).append(doc.name)
    return found


COMMANDS = doc_commands()


def argv_of(command: str, data_dir: Path | None) -> list[str]:
    words = shlex.split(command)
    words = [str(data_dir) if w.startswith(KAGGLE_FILES) else w for w in words]
    return [str(CMI), *words[1:], *SMOKE.get(words[1], [])]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory like a clone's: ``configs/`` is there."""
    work = tmp_path_factory.mktemp("docs")
    (work / "configs").symlink_to(ROOT / "configs")
    return work


@pytest.fixture(scope="module")
def kaggle_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("kaggle-files"), subjects=4, seed=0)


@pytest.fixture(scope="module")
def shared_run(workspace: Path, kaggle_files: Path) -> Path:
    """The README's run, tiny: what ``predict``, ``report`` and ``--resume`` examples read."""
    result = run(argv_of(SHARED_RUN, kaggle_files), workspace)
    assert result.returncode == 0, f"`{SHARED_RUN}` failed:\n{result.stderr[-3000:]}"
    return workspace / "runs" / "exp025"


def test_the_docs_have_commands_and_the_shared_run_is_one():
    assert SHARED_RUN in COMMANDS
    assert {command.split()[1] for command in COMMANDS} >= {"run", "check", "report", "predict"}
    stale = sorted(set(NOT_RUN) - set(COMMANDS))
    assert not stale, f"NOT_RUN names commands that are no longer in the docs: {stale}"


def params() -> list[object]:
    """Commands that train or load a model pay Lightning's import and a tiny run: slow."""
    return [
        pytest.param(command, id=command.removeprefix("cmi "), marks=_marks(command))
        for command in sorted(set(COMMANDS) - {SHARED_RUN})
    ]


def _marks(command: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if command.split()[1] in HEAVY else []


@pytest.mark.parametrize("command", params())
def test_doc_command_runs(command: str, request: pytest.FixtureRequest) -> None:
    if command in NOT_RUN:
        pytest.skip(NOT_RUN[command])
    if command.split()[1] in HEAVY:
        request.getfixturevalue("shared_run")
    data_dir = request.getfixturevalue("kaggle_files") if KAGGLE_FILES in command else None
    result = run(argv_of(command, data_dir), request.getfixturevalue("workspace"))
    where = ", ".join(COMMANDS[command])
    assert result.returncode == 0, f"`{command}` ({where}) failed:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
