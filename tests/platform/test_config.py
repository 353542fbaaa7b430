"""Config loading: every class of error with its exact message and exit code, and overrides."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
import pytest

from cmi_core.cli import main
from cmi_core.config import Config, TrainerConfig, config_to_toml, load_config
from cmi_core.errors import ConfigError, PathError
from cmi_core.registry.manager import get_plugin_manager

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def errors_of(path: Path, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    return error.value.lines()


def cli_errors(capsys, *argv: str) -> list[str]:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.splitlines()


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(config):
    assert isinstance(load_config(config), Config)


WEIGHTINGS = sorted(get_plugin_manager().names("weighting"))


@pytest.mark.plugin_listing
def test_every_problem_is_reported_at_once_with_its_key(tmp_path):
    path = write(
        tmp_path,
        """
        [optimizer]
        lr = -1.0
        name = "adamv"
        [data.augment]
        stretch_range = [1.2, 0.9]
        [loss.weighting]
        strategy = "uncertanty"
        [trainer]
        max_epoch = 3
        batch_size = "64"
        [model.squeezeformer]
        d_model = 30
        """.replace("        ", ""),
    )
    assert sorted(errors_of(path)) == sorted(
        [
            f"{path}: trainer.batch_size: expected an integer, got '64'",
            f"{path}: trainer.max_epoch: unknown key (did you mean 'max_epochs'?); valid keys: "
            + ", ".join(f.name for f in attrs.fields(TrainerConfig)),
            f"{path}: data.augment.stretch_range: low must be < high, got [1.2, 0.9]",
            f"{path}: optimizer.name: unknown value 'adamv' (did you mean 'adamw'?); "
            "expected one of: adamw, schedulefree_adamw, schedulefree_radam, schedulefree_sgd",
            f"{path}: optimizer.lr: must be > 0, got -1.0",
            f"{path}: loss.weighting.strategy: unknown weighting 'uncertanty' "
            f"(did you mean 'uncertainty'?); available: {', '.join(WEIGHTINGS)}",
            f"{path}: model.squeezeformer: n_heads (4) must divide d_model (30)",
        ]
    )


def test_unknown_key_and_wrong_type(tmp_path):
    path = write(tmp_path, '[trainer]\nmax_epoch = 3\nbatch_size = "64"\n')
    lines = errors_of(path)
    assert f"{path}: trainer.batch_size: expected an integer, got '64'" in lines
    assert any(
        line.startswith(f"{path}: trainer.max_epoch: unknown key (did you mean 'max_epochs'?)")
        for line in lines
    )


def test_plugin_option_typo_is_caught_with_the_plugins_own_class(tmp_path):
    path = write(
        tmp_path,
        '[loss.weighting]\nstrategy = "uncertainty"\n[loss.weighting.uncertainty]\nclmap = 1\n',
    )
    (line,) = errors_of(path)
    assert line.startswith(
        f"{path}: loss.weighting.uncertainty.clmap: unknown key (did you mean 'clamp'?)"
    )


def test_backbone_option_typo(tmp_path):
    path = write(tmp_path, "[model.squeezeformer]\nd_modle = 64\n")
    (line,) = errors_of(path)
    assert line.startswith(
        f"{path}: model.squeezeformer.d_modle: unknown key (did you mean 'd_model'?)"
    )


def test_toml_syntax_error_names_line_and_column(tmp_path):
    path = write(tmp_path, "[trainer\nmax_epochs = 1\n")
    assert errors_of(path) == [
        f"{path}: TOML syntax error: Expected ']' at the end of a table declaration "
        "(at line 1, column 9)"
    ]


def test_missing_config_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert cli_errors(capsys, "check", str(missing)) == [f"error: CONFIG {missing}: not found"]


def test_kaggle_source_needs_an_existing_directory(tmp_path):
    path = write(tmp_path, f'[data]\nsource = "kaggle"\ndir = "{tmp_path / "absent"}"\n')
    assert errors_of(path) == [f"{path}: data.dir: directory not found: {tmp_path / 'absent'}"]


def test_overrides_apply_and_are_validated(tmp_path):
    path = write(tmp_path, "[trainer]\nmax_epochs = 5\n")
    cfg = load_config(path, ["trainer.max_epochs=3", "loss.weighting.strategy=direct"])
    assert cfg.trainer.max_epochs == 3
    assert cfg.loss.weighting.strategy == "direct"
    assert attrs.has(type(cfg.loss.weighting.options))
    assert errors_of(path, "trainer.max_epochs") == [
        "-o trainer.max_epochs: expected KEY=VALUE, e.g. trainer.max_epochs=3"
    ]
    assert errors_of(path, "trainer.max_epochs=0") == [
        "-o trainer.max_epochs=0: trainer.max_epochs: must be >= 1, got 0"
    ]


def test_cli_check_prints_resolved_config_and_exit_codes(tmp_path, capsys):
    path = write(
        tmp_path,
        '[loss.weighting]\nstrategy = "uncertainty"\n'
        "[loss.weighting.uncertainty]\nclamp = [-5.0, 5.0]\n",
    )
    assert main(["check", str(path)]) == 0
    resolved = tomllib.loads(capsys.readouterr().out)
    assert resolved["loss"]["weighting"]["uncertainty"]["clamp"] == [-5.0, 5.0]
    assert resolved["loss"]["weighting"]["strategy"] == "uncertainty"
    bad = write(tmp_path, "[trainer]\nmax_epochs = 0\n")
    assert cli_errors(capsys, "check", str(bad)) == [
        f"error: {bad}: trainer.max_epochs: must be >= 1, got 0"
    ]


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(ROOT / "configs" / "exp025.toml")
    again = load_config(write(tmp_path, config_to_toml(cfg)))
    assert again == cfg


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(PathError):
        main(["--debug", "check", str(tmp_path / "nope.toml")])


def _keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for field in attrs.fields(attrs.resolve_types(cls)):
        if field.metadata.get("plugin_tables"):
            continue
        if isinstance(field.type, type) and attrs.has(field.type):
            keys += _keys(field.type, f"{prefix}{field.name}.")
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def test_configuration_doc_lists_every_key():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)`", doc))
    missing = [key for key in _keys(Config) if key not in documented]
    assert not missing, f"undocumented config keys: {missing}"


def test_plugin_option_values_are_checked_under_their_toml_key(tmp_path):
    path = write(
        tmp_path,
        '[loss.weighting]\nstrategy = "uncertainty"\n[loss.weighting.uncertainty]\n'
        "clamp = [1.0, -1.0]\n[model.squeezeformer]\nd_model = 30\nn_heads = 4\n",
    )
    assert sorted(errors_of(path)) == [
        f"{path}: loss.weighting.uncertainty.clamp: low must be < high, got [1.0, -1.0]",
        f"{path}: model.squeezeformer: n_heads (4) must divide d_model (30)",
    ]


def test_options_for_a_strategy_without_options(tmp_path):
    path = write(
        tmp_path, '[loss.weighting]\nstrategy = "none"\n[loss.weighting.none]\nclamp = 1\n'
    )
    assert errors_of(path) == [
        f"{path}: loss.weighting.none.clamp: unknown key; this table takes no keys"
    ]
