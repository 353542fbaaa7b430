"""Every ``cmi ...`` command in the shell code blocks of README.md and docs/*.md runs.

Commands are found anew on every run, so a command added to the docs is tested without
touching this file. Each runs as a user would type it (a subprocess of the installed ``cmi``,
in a temporary directory holding ``configs/``), made small: ``run`` gets the smoke overrides
below (a later ``-o`` wins over the docs' own), placeholder paths point at a tiny synthetic
data set in the Kaggle format, and the commands that read a run directory (``runs/...``) get
it made first, once per module, by its tiny run from ``RUNS`` (the docs' own commands).
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
SMOKE["sweep"] = SMOKE["run"]
SMOKE["bundle"] = ["--no-download"]  # the pinned wheels come from PyPI; tests download nothing
RUNS = {  # each run directory the docs' commands read, and the docs' command that makes it
    "runs/exp025": "cmi run configs/exp025.toml --out runs/exp025",
    "runs/best": "cmi run configs/best.toml --out runs/best",
    "runs/resse_gru": "cmi run configs/resse_gru.toml --out runs/resse_gru",
    "runs/exp024": "cmi run configs/exp024.toml --out runs/exp024",
    "runs/exp025_thm_tof": "cmi run configs/exp025.toml -o data.features.thm_tof=true "
    "--out runs/exp025_thm_tof",
    "runs/weighting": "cmi sweep configs/exp025.toml "
    "--grid loss.weighting.strategy=none,uncertainty,direct --seeds 3 --out runs/weighting "
    "--jobs 2",
    "runs/uncertainty-init": "cmi sweep configs/exp025.toml "
    "--grid loss.weighting.uncertainty.init_from_fixed=true "
    "--grid loss.weighting.lr_scale=0.1,1.0 --seeds 3 --out runs/uncertainty-init --jobs 2",
    **{  # the ablations in docs/benchmarks.md: one changed key, one sweep directory each
        f"runs/abl/{name}": f"cmi sweep configs/{config}.toml --grid {grid} --seed-list {seeds} "
        f"--out runs/abl/{name} --jobs 2"
        for name, config, grid, seeds in [
            ("epochs", "exp025", "trainer.max_epochs=30", "0"),
            ("epochs-seeds", "exp025", "trainer.max_epochs=30", "1,2"),
            ("lr", "exp025", "optimizer.lr=0.0025,0.01", "0"),
            ("kernel", "exp025", "model.squeezeformer.kernel_size=7,31", "0"),
            ("pooling", "exp025", "model.squeezeformer.pooling=mean", "0"),
            ("width", "exp025", "model.squeezeformer.d_model=96", "0"),
            ("max-len", "exp025", "data.max_len=96", "0"),
            ("best-epochs", "resse_gru", "trainer.max_epochs=12,20", "0"),
            ("best-epochs-seeds", "resse_gru", "trainer.max_epochs=12,20", "1,2"),
            ("best-e30", "resse_gru", "trainer.max_epochs=30", "0"),
            ("best-mixup", "resse_gru", "data.augment.mixup_alpha=0.2", "0"),
            ("best-ch96", "resse_gru", "model.resse_gru.channels=96", "0"),
            ("best-gru2", "resse_gru", "model.resse_gru.gru_layers=2", "0"),
            ("best-len96", "resse_gru", "data.max_len=96", "0"),
            ("best-lr", "resse_gru", "optimizer.lr=0.01", "0"),
            ("best-thm-tof", "resse_gru", "data.features.thm_tof=true", "0"),
            ("best-thm-tof-seeds", "resse_gru", "data.features.thm_tof=true", "1,2"),
        ]
    },
    **{  # ablations on top of a changed key: `-o KEY=VALUE` before the grid
        f"runs/abl/{name}": f"cmi sweep configs/resse_gru.toml -o {fixed} --grid {grid} "
        f"--seed-list {seeds} --out runs/abl/{name} --jobs 2"
        for name, fixed, grid, seeds in [
            ("best-combo", "model.resse_gru.gru_layers=2", "optimizer.lr=0.01", "0"),
            ("best-drop", "data.features.thm_tof=true", "data.augment.drop_thm_tof_p=0.5", "0"),
            (
                "best-drop-seeds",
                "data.features.thm_tof=true",
                "data.augment.drop_thm_tof_p=0.5",
                "1,2",
            ),
        ]
    },
    "runs/strategies": "cmi sweep configs/exp025.toml --grid loss.weighting.strategy="
    "dwa,rlw,gls,famo,upgrad,mgda,pcgrad,cagrad,imtl_g,nash_mtl,aligned_mtl,dualproj,graddrop,"
    "gradnorm --seeds 3 --out runs/strategies --jobs 2",
    "runs/aux-off": "cmi sweep configs/exp025.toml --grid loss.weighting.strategy=uncertainty "
    "--seeds 3 --out runs/aux-off",
    "runs/aux-on": "cmi sweep configs/multitask.toml --grid loss.weighting.strategy=uncertainty "
    "--seeds 3 --out runs/aux-on",
    "runs/resse-aux-off": "cmi sweep configs/resse_gru.toml --grid data.features.thm_tof=false "
    "--seeds 3 --out runs/resse-aux-off",
    "runs/resse-aux-on": 'cmi sweep configs/resse_gru.toml -o \'loss.tasks.names=["multiclass",'
    '"binary","nine_class","kl","orientation","composite","phase","behavior"]\' '
    "-o loss.tasks.orientation.weight=0.2 -o loss.tasks.composite.weight=0.2 "
    "-o loss.tasks.phase.weight=0.2 -o loss.tasks.behavior.weight=0.2 "
    "--grid data.features.thm_tof=false --seeds 3 --out runs/resse-aux-on",
    "runs/multitask-weighting": "cmi sweep configs/multitask.toml --grid loss.weighting.strategy="
    "none,uncertainty,direct,dwa,famo,pcgrad,upgrad --seeds 3 --out runs/multitask-weighting "
    "--jobs 2",
    "runs/multitask-equal": "cmi sweep configs/multitask.toml -o loss.weighting.strategy=none "
    "-o loss.tasks.composite.weight=1.0 -o loss.tasks.phase.weight=1.0 "
    "-o loss.tasks.behavior.weight=1.0 --grid loss.tasks.orientation.weight=1.0 --seeds 3 "
    "--out runs/multitask-equal --jobs 2",
    "runs/uncertainty-lr": "cmi sweep configs/exp025.toml "
    "--grid loss.weighting.uncertainty.init_from_fixed=false "
    "--grid loss.weighting.lr_scale=1.0 --seeds 3 --out runs/uncertainty-lr --jobs 2",
    **{  # docs/benchmarks.md's ToF image branch: one sweep directory per seed
        f"runs/tof/{config}{suffix}": f"cmi sweep configs/{config}.toml --grid {grid} "
        f"--seed-list {seed} --out runs/tof/{config}{suffix} --jobs {jobs}"
        for config, grid, jobs in [
            ("tof_branch", "data.features.tof_images=true", 2),
            ("best", "data.features.thm_tof=true", 1),
        ]
        for seed, suffix in [(0, ""), (1, "_s1"), (2, "_s2")]
    },
}
Made = dict[str, subprocess.CompletedProcess[str]]
KAGGLE_FILES = "/path/to/"  # any such path stands for the Kaggle files: the synthetic set
HAPT = (
    "needs the UCI HAPT files that bench/hapt_to_kaggle.py writes from a PyPI data package "
    "(the bench extra, docs/real-data.md), which the test command does not install"
)
NOT_RUN: dict[str, str] = {  # besides every command on the HAPT files (``not_run``)
    # "cmi ... exactly as in the docs": "what it needs that a test cannot provide",
    "cmi sweep configs/exp025.toml --grid loss.weighting.strategy=none,direct --out runs/ray "
    "--ray auto": "a running Ray cluster (tests/sweep/test_parallel.py uses a local runtime)",
}


def not_run(command: str) -> str | None:
    """Why a docs command is not run here: listed in ``NOT_RUN``, or it trains on or reads
    runs of the HAPT files (``data/hapt``, ``runs/hapt-...``)."""
    if command in NOT_RUN:
        return NOT_RUN[command]
    words = shlex.split(command)
    if any("data/hapt" in w for w in words) or any(
        d.startswith("runs/hapt") for d in run_dirs(command)
    ):
        return HAPT
    return None


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
                    words = part.strip().removeprefix("$ ").split()
                    if words and (words[0] == "cmi" or words[0].endswith("/cmi")):
                        command = " ".join(["cmi", *words[1:]])  # one space between words
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


def run_dirs(command: str) -> list[str]:
    """The run directories a command reads (not the one ``--out`` names)."""
    words = shlex.split(command)
    return [w for k, w in enumerate(words) if w.startswith("runs/") and words[k - 1] != "--out"]


@pytest.fixture(scope="module")
def runs_made() -> Made:
    """The tiny runs made so far, by directory: each is made once per module, on first need."""
    return {}


def recipe_of(directory: str) -> str:
    """The ``RUNS`` key that makes ``directory``: itself, or the sweep it is a trial of."""
    for key in (directory, directory.rpartition("/")[0]):
        if key in RUNS:
            return key
    raise AssertionError(f"no recipe for {directory}: add the command that makes it to RUNS")


def ensure_run(directory: str, workspace: Path, kaggle_files: Path, made: Made) -> None:
    directory = recipe_of(directory)
    if directory not in made:
        made[directory] = run(argv_of(RUNS[directory], kaggle_files), workspace)
    result = made[directory]
    assert result.returncode == 0, f"`{RUNS[directory]}` failed:\n{result.stderr[-3000:]}"


def test_the_docs_have_commands():
    assert {command.split()[1] for command in COMMANDS} >= {"run", "check", "report", "predict"}
    stale = sorted(set(NOT_RUN) - set(COMMANDS))
    assert not stale, f"NOT_RUN names commands that are no longer in the docs: {stale}"


def params() -> list[object]:
    """Commands that train, or read a run that must be trained first, are slow."""
    return [
        pytest.param(command, id=command.removeprefix("cmi "), marks=_marks(command))
        for command in sorted(COMMANDS)
    ]


def _marks(command: str) -> list[pytest.MarkDecorator]:
    slow = command.split()[1] in ("run", "sweep") or run_dirs(command)
    return [pytest.mark.slow] if slow else []


@pytest.mark.parametrize("command", params())
def test_doc_command_runs(command: str, workspace: Path, request: pytest.FixtureRequest) -> None:
    reason = not_run(command)
    if reason:
        pytest.skip(reason)
    where = ", ".join(COMMANDS[command])
    slow = bool(_marks(command))
    data_dir = request.getfixturevalue("kaggle_files") if slow or KAGGLE_FILES in command else None
    made = request.getfixturevalue("runs_made") if slow else {}
    for directory in run_dirs(command):
        ensure_run(directory, workspace, data_dir, made)
    recipe = [d for d, c in RUNS.items() if c == command]
    if recipe:  # the docs' command that makes a run others read: made (and checked) once
        ensure_run(recipe[0], workspace, data_dir, made)
        return
    result = run(argv_of(command, data_dir), workspace)
    assert result.returncode == 0, f"`{command}` ({where}) failed:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
