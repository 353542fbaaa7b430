"""Bad arguments and config values of run, sweep, predict, synth and check: each is one line
naming the argument or key, before any work starts (issue 19), never a traceback or an OK."""

from __future__ import annotations

import contextlib
import errno
import json
from pathlib import Path

import polars as pl
import pytest

from cmi_core.cli import main
from cmi_core.config import load_config
from cmi_core.errors import ConfigError, DataError

TINY = """
name = "tiny"
[data]
cache_dir = "{cache}"
[data.synthetic]
subjects = 4
[cv]
n_folds = 2
[trainer]
accelerator = "cpu"
devices = 1
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(cache=tmp_path / "cache"))
    return path


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a directory\n")
    return path


def one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``cmi argv``: exit 2 and exactly one ``error:`` line, which is returned."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# -- path arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["run", "{config}", "--out", "{file}"], "--out {file}: is a file, expected a directory"),
        (["run", "{config}", "--out", "{file}/run"], "--out {file}/run: cannot be created"),
        (["run", "{dir}"], "CONFIG {dir}: is a directory, expected a file"),
        (["run", "--resume", "{config}"], "--resume: name the run to continue"),
        (["run", "{dir}/absent.toml"], "CONFIG {dir}/absent.toml: not found"),
        (["check", "{dir}"], "CONFIG {dir}: is a directory, expected a file"),
        (
            ["sweep", "{config}", "--out", "{file}", "--grid", "cv.seed=1,2"],
            "--out {file}: is a file, expected a directory",
        ),
        (["synth", "{file}"], "OUT_DIR {file}: is a file, expected a directory"),
        (["synth", "{file}/data"], "OUT_DIR {file}/data: cannot be created"),
        (["predict", "{file}", "--data", "{dir}"], "RUN_DIR {file}: is a file, expected a dir"),
        (["predict", "{dir}", "--data", "{file}"], "--data {file}: is a file, expected a dir"),
        (["predict", "{dir}", "--data", "{dir}/no"], "--data {dir}/no: not found"),
        (
            ["predict", "{dir}", "--data", "{dir}", "--out", "{dir}"],
            "--out {dir}: is a directory, expected a file",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_path_argument_of_the_wrong_kind_is_one_line_naming_it(
    argv, named, config, a_file, tmp_path, capsys
):
    """Before the fix, `run --out FILE` and `sweep --out FILE` ended in a NotADirectoryError
    traceback and `synth DIR/under/a/file` in a FileExistsError."""
    places = {"config": config, "file": a_file, "dir": tmp_path}
    line = one_error(capsys, [word.format(**places) for word in argv])
    assert named.format(**places) in line
    assert not (tmp_path / "cache").exists(), "work started before the paths were checked"


# -- counts and seeds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "{dir}", "--data", "{dir}", "--batch-size", "-5"], "--batch-size: must be"),
        (["predict", "{dir}", "--data", "{dir}", "--batch-size", "0"], "--batch-size: must be"),
        (["run", "{config}", "--jobs", "0"], "--jobs: must be a positive integer, got 0"),
        (["run", "{config}", "--folds", ","], "--folds: expected at least one integer"),
        (["run", "{config}", "--folds=-1"], "--folds: must be >= 0, got -1"),
        (["sweep", "{config}", "--out", "{dir}/s", "--jobs", "-1"], "--jobs: must be a positive"),
        (["sweep", "{config}", "--out", "{dir}/s", "--seeds", "0"], "--seeds: must be a positive"),
        (["sweep", "{config}", "--out", "{dir}/s", "--seed-list=-1"], "--seed-list: must be >= 0"),
        (["synth", "{dir}/s", "--subjects", "-3"], "--subjects: must be a positive integer"),
        (["synth", "{dir}/s", "--seed", "-1"], "--seed: must be in [0, 4294967295], got -1"),
    ],
)
def test_a_non_positive_count_is_refused_as_a_usage_error(argv, message, config, tmp_path, capsys):
    """Before the fix `--batch-size -5` wrote a submission of uninitialised memory, `--jobs 0`
    ran with the default, `--seed -1` was a numpy traceback, `--seed-list -1` failed every run."""
    places = {"config": config, "dir": tmp_path}
    with pytest.raises(SystemExit) as exit_:
        main([word.format(**places) for word in argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


# -- cmi check resolves every name and value a run uses ---------------------------------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.precision=bogus", "trainer.precision: unknown value 'bogus'"),
        ("trainer.strategy=nonsense", "trainer.strategy: unknown value 'nonsense'"),
        ("trainer.strategy=fsdp", "trainer.strategy: 'fsdp' needs a GPU"),
        ("trainer.strategy=ddp_spawn", "trainer.strategy: 'ddp_spawn' is not supported"),
        ("trainer.strategy=ddp_spawn_find_unused_parameters_true", "use 'ddp'"),
        ("trainer.seed=-1", "trainer.seed: must be in [0, 4294967295]"),
        ("trainer.seed=4294967296", "trainer.seed: must be in [0, 4294967295]"),
        ("cv.seed=-1", "cv.seed: must be in [0, 4294967295]"),
        ("data.synthetic.seed=-1", "data.synthetic.seed: must be in [0, 4294967295]"),
        ("trainer.devices=0", "trainer.devices: must be 'auto', a count >= 1"),
        ("trainer.devices=bogus", "trainer.devices: must be 'auto', a count >= 1"),
        ("trainer.devices=[0]", "trainer.devices: must be a count >= 1 on a CPU"),
        ("trainer.limit_train_batches=2.5", "trainer.limit_train_batches: must be a fraction"),
        ('plugins.modules=["no_such_module_xyz"]', "plugins.modules: module 'no_such_module_xyz'"),
        ('plugins.modules=["json"]', "plugins.modules: module 'json' registers nothing"),
        ("data.cache_dir={file}/cache", "data.cache_dir: {file}/cache: cannot be created"),
        ("data.dir={dir}", "data.dir: {dir}: holds no readable train.csv"),
    ],
)
def test_check_refuses_what_run_cannot_use(override, key, config, a_file, tmp_path):
    """Each of these printed the config and OK before the fix, and the run failed later (or,
    for a module that registers nothing, ran without it)."""
    override = override.format(file=a_file, dir=tmp_path)
    extra = ["data.source=kaggle"] if override.startswith("data.dir") else []
    warns = pytest.warns() if "no_such" in override else contextlib.nullcontext()
    with warns, pytest.raises(ConfigError) as info:
        load_config(config, [*extra, override])
    assert any(key.format(file=a_file, dir=tmp_path) in line for line in info.value.problems)


def test_check_accepts_an_installed_plugin_module_named_again(config):
    """A config may name an installed plugin's module in [plugins] modules: it resolves."""
    assert load_config(config, ['plugins.modules=["cmi_weighting_dwa"]']).plugins.modules


def test_the_listed_trainer_values_are_lightnings():
    """The lists `cmi check` holds (Lightning is not imported there) stay Lightning's."""
    from lightning_fabric.connector import _PRECISION_INPUT_STR
    from pytorch_lightning.strategies import StrategyRegistry

    from cmi_core.config.lightning_values import PRECISIONS, STRATEGIES

    assert set(PRECISIONS) <= set(_PRECISION_INPUT_STR.__args__) | {"32", "16", "64", "bf16"}
    assert set(STRATEGIES) - {"auto"} <= set(StrategyRegistry.available_strategies())


def test_every_accepted_precision_builds_a_trainer():
    from pytorch_lightning import Trainer

    from cmi_core.config.lightning_values import PRECISIONS

    for precision in PRECISIONS:
        Trainer(accelerator="cpu", devices=1, precision=precision, logger=False)


# -- damaged files and full targets -----------------------------------------------------------


@pytest.mark.parametrize("content", ['{"points": [', "[1, 2]", '{"grid": {}}'])
def test_a_damaged_sweep_json_is_one_line(content, config, tmp_path, capsys):
    """Before the fix: a JSONDecodeError or AttributeError traceback."""
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text(content)
    argv = ["sweep", str(config), "--out", str(out), "--grid", "cv.seed=1,2"]
    line = one_error(capsys, argv)
    assert f"{out / 'sweep.json'}:" in line and "damaged" in line
    json.dumps(line)  # plain text


def test_synth_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """Before the fix: an OSError traceback."""

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", full)
    from cmi_core.data.synthetic import generate

    with pytest.raises(DataError, match="No space left on device"):
        generate(tmp_path / "data", subjects=2)
    assert list((tmp_path / "data").iterdir()) == []
