"""Plugin option tables: one sub-table per plugin name, switching plugins, the old shapes."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import attrs
import pytest

from cmi_core.cli import main
from cmi_core.config import TrainerConfig, config_to_toml, load_config
from cmi_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.toml"))

EXTRA_PLUGIN = """
    import attrs
    import cmi_core
    from cmi_core import BackboneSpec, WeightingSpec

    @attrs.frozen
    class Options:
        width: int = cmi_core.field(8, cmi_core.positive, "width")

    @cmi_core.hookimpl
    def cmi_register_backbones():
        spec = BackboneSpec(name="tiny", summary="t", factory=print, config_cls=Options)
        return [attrs.evolve(spec, frames=True)]

    @cmi_core.hookimpl
    def cmi_register_weightings():
        return [WeightingSpec(name="lr_scale", summary="t", factory=print, config_cls=Options)]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(path: Path, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    return error.value.lines()


@pytest.fixture
def extra_plugin(site_dir: Path) -> str:
    """A local module with a ``tiny`` backbone (declaring a per-frame output, as configs with
    per-frame tasks need) and a weighting badly named ``lr_scale``."""
    (site_dir / "extra_plugin.py").write_text(textwrap.dedent(EXTRA_PLUGIN))
    return 'plugins.modules=["extra_plugin"]'


@pytest.mark.parametrize("strategy", ["none", "uncertainty", "direct"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_strategy_can_be_chosen_from_every_shipped_config(config, strategy):
    cfg = load_config(config, [f"loss.weighting.strategy={strategy}"])
    assert cfg.loss.weighting.strategy == strategy
    assert type(cfg.loss.weighting.options).__name__.lower().startswith(strategy)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_loggers_and_backbone_can_be_switched_from_every_shipped_config(config, extra_plugin):
    cfg = load_config(config, ["logging.loggers=['csv']", "model.backbone=tiny", extra_plugin])
    assert list(cfg.logging.options) == ["csv"]
    assert cfg.model.options.width == 8
    own = tomllib.loads(Path(config).read_text(encoding="utf-8"))["model"]["backbone"]
    assert attrs.has(type(cfg.model.tables[own]))  # the config's own backbone table is kept


def test_the_chosen_plugin_picks_its_own_table(tmp_path):
    path = write(
        tmp_path,
        """
        [loss.weighting]
        strategy = "uncertainty"
        [loss.weighting.uncertainty]
        init_value = 1.5
        [loss.weighting.direct]
        collapse_threshold = 0.2
        """,
    )
    assert load_config(path).loss.weighting.options.init_value == 1.5
    cfg = load_config(
        path, ["loss.weighting.strategy=direct", "loss.weighting.direct.clamp=[-2, 2]"]
    )
    assert cfg.loss.weighting.options.collapse_threshold == 0.2
    assert cfg.loss.weighting.options.clamp == [-2.0, 2.0]


def test_every_plugin_table_is_written_back(tmp_path):
    path = write(
        tmp_path,
        """
        [loss.weighting]
        strategy = "none"
        [loss.weighting.direct]
        collapse_threshold = 0.2
        [loss.weighting.not_installed]
        anything = [1, "x"]
        """,
    )
    cfg = load_config(path)
    written = tomllib.loads(config_to_toml(cfg))["loss"]["weighting"]
    assert written["direct"]["collapse_threshold"] == 0.2
    assert written["not_installed"] == {"anything": [1, "x"]}
    assert written["none"] == {}
    assert load_config(write(tmp_path, config_to_toml(cfg))) == cfg


def test_check_notes_tables_whose_plugin_is_not_installed(tmp_path, capsys):
    path = write(tmp_path, "[loss.weighting.uncertanty]\nclamp = [-1.0, 1.0]\n[model.tiny]\n")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "# note: [model.tiny]: no backbone 'tiny' is installed; the table is kept as written",
        "# note: [loss.weighting.uncertanty]: no weighting 'uncertanty' is installed (did you "
        "mean 'uncertainty'?); the table is kept as written",
        f"# {path}: OK",
    ]


def test_tables_of_other_installed_plugins_are_validated(tmp_path):
    path = write(tmp_path, "[loss.weighting.direct]\ncolapse = 1\n[logging.csv]\nflush = 1\n")
    keys = sorted(line.split(": unknown key")[0] for line in errors_of(path))
    assert keys == [f"{path}: logging.csv.flush", f"{path}: loss.weighting.direct.colapse"]


def test_a_plugin_name_that_clashes_with_a_core_key_is_an_error(tmp_path, extra_plugin):
    path = write(tmp_path, "[loss.weighting]\nlr_scale = 0.5\n")
    assert errors_of(path, "loss.weighting.strategy=lr_scale", extra_plugin) == [
        "-o loss.weighting.strategy=lr_scale: loss.weighting.strategy: weighting 'lr_scale' "
        "cannot be configured: its option table [loss.weighting.lr_scale] would be the key "
        "loss.weighting.lr_scale of [loss.weighting] (the plugin must be renamed)"
    ]


def test_a_flat_option_key_says_which_table_it_lives_in(tmp_path):
    path = write(
        tmp_path,
        """
        [loss.weighting]
        strategy = "uncertainty"
        clamp = [-1.0, 1.0]
        """,
    )
    assert errors_of(path) == [
        f"{path}: loss.weighting.clamp: unknown key; valid keys: strategy, lr_scale, "
        "monitor_gradients; weighting options now live in [loss.weighting.uncertainty]: write "
        "loss.weighting.uncertainty.clamp",
    ]


def test_a_plugin_table_must_be_a_table(tmp_path):
    path = write(tmp_path, "[loss.weighting]\nstrategy = 'direct'\ndirect = 3\n")
    assert errors_of(path) == [
        f"{path}: loss.weighting.direct: must be a table: the options of weighting 'direct'"
    ]


def test_an_empty_old_options_table_is_harmless(tmp_path):
    path = write(tmp_path, "[logging]\nloggers = []\n")
    assert load_config(path, ["logging.options={}"]).logging.options == {}


def test_errors_from_overrides_name_the_override(tmp_path, capsys):
    path = write(tmp_path, "[trainer]\nmax_epochs = 0\n")
    assert main(["check", str(path), "-o", "optimizer.lr=-1", "-o", "trainer.bogus=1"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: -o trainer.bogus=1: trainer.bogus: unknown key; valid keys: "
        + ", ".join(f.name for f in attrs.fields(TrainerConfig)),
        "error: -o optimizer.lr=-1: optimizer.lr: must be > 0, got -1.0",
        f"error: {path}: trainer.max_epochs: must be >= 1, got 0",
    ]
