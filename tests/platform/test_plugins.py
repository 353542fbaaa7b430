"""Plugin discovery and isolation: entry points, failures, duplicates, disabling, strict mode."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from cmi_core.cli import main
from cmi_core.errors import PluginError
from cmi_core.registry.manager import PluginLoadWarning, PluginManager, get_plugin_manager
from tests.conftest import install_fake_distribution

GOOD = """
    import attrs
    import cmi_core
    from cmi_core import WeightingSpec

    @attrs.frozen
    class Options:
        power: float = 1.0

    def factory(terms, fixed, options):
        return ("built", terms, options)

    @cmi_core.hookimpl
    def cmi_register_weightings():
        return [WeightingSpec(name="{name}", summary="A test weighting", factory=factory,
                              config_cls=Options)]
"""


def good_plugin(name: str) -> str:
    return GOOD.replace("{name}", name)


def load(site: Path, dist: str, modules: dict[str, str]) -> PluginManager:
    install_fake_distribution(site, dist, {m: m for m in modules}, modules)
    manager = PluginManager()
    manager.load_entrypoints()
    return manager


@pytest.mark.plugin_listing
def test_builtin_plugins_are_discovered_through_entry_points(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(capsys.readouterr().out)}
    expected = {
        ("weighting", "none"),
        ("weighting", "uncertainty"),
        ("weighting", "direct"),
        ("backbone", "squeezeformer"),
        ("backbone", "resse_gru"),
        ("backbone", "inception"),
        ("logger", "tensorboard"),
        ("logger", "csv"),
    }
    assert expected <= set(rows)
    for key in expected:
        assert rows[key]["status"] == "active"
        assert rows[key]["distribution"] == "cmi-trainer"


def test_third_party_distribution_is_discovered(site_dir):
    manager = load(site_dir, "cmi-weighting-extra", {"cmi_extra": good_plugin("extra")})
    spec = manager.get("weighting", "extra")
    assert spec.summary == "A test weighting"
    info = next(i for i in manager.infos() if i.name == "extra")
    assert (info.distribution, info.version, info.status) == (
        "cmi-weighting-extra",
        "1.2.3",
        "active",
    )


def test_import_failure_is_recorded_and_others_keep_working(site_dir):
    modules = {"cmi_broken": "raise ImportError('needs libfoo')", "cmi_fine": good_plugin("fine")}
    with pytest.warns(PluginLoadWarning, match=r"'cmi_broken' failed to load.*needs libfoo"):
        manager = load(site_dir, "cmi-mixed", modules)
    assert manager.get("weighting", "fine")
    with pytest.raises(PluginError, match=r"cmi_broken.*failed to load: ImportError: needs libfoo"):
        manager.get("weighting", "cmi_broken")
    failed = next(i for i in manager.infos() if i.name == "cmi_broken")
    assert failed.status == "failed" and "needs libfoo" in failed.error


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "import cmi_core\n@cmi_core.hookimpl\ndef cmi_register_weightings(extra): return []",
            "extra",
        ),
        ("import cmi_core\n@cmi_core.hookimpl\ndef cmi_register_weighting(): return []", "unknown"),
        (
            "import cmi_core\n@cmi_core.hookimpl\ndef cmi_register_weightings():\n"
            "    return [cmi_core.WeightingSpec(name='x', summary='s', factory=len)]",
            "config_cls",
        ),
        (
            "import cmi_core\n@cmi_core.hookimpl\ndef cmi_register_weightings():\n"
            "    return [cmi_core.BackboneSpec(name='x', summary='s', factory=len, "
            "config_cls=type)]",
            "",
        ),
    ],
    ids=["wrong-signature", "misspelled-hook", "spec-missing-field", "wrong-record-type"],
)
def test_misbehaving_plugin_is_reported_by_name(site_dir, source, message):
    with pytest.warns(PluginLoadWarning, match=r"'cmi_bad' failed to load") as record:
        manager = load(site_dir, "cmi-bad", {"cmi_bad": source})
    assert message in str(record[0].message)
    assert "x" not in manager.names("weighting")
    assert "cmi_bad" in {i.name for i in manager.infos() if i.status == "failed"}


def test_duplicate_names_are_an_error_naming_both_providers(site_dir):
    modules = {"cmi_one": good_plugin("same"), "cmi_two": good_plugin("same")}
    with pytest.warns(PluginLoadWarning, match="registered twice"):
        manager = load(site_dir, "cmi-dupes", modules)
    with pytest.raises(PluginError, match=r"'same' is registered twice: by cmi_one .* by cmi_two"):
        manager.get("weighting", "same")


def test_disabled_plugins_are_not_loaded(site_dir, monkeypatch):
    monkeypatch.setenv("CMI_DISABLE_PLUGINS", "cmi_off, other")
    manager = load(site_dir, "cmi-off", {"cmi_off": good_plugin("off")})
    assert "off" not in manager.names("weighting")


def test_strict_mode_raises_on_first_failure(site_dir, monkeypatch):
    monkeypatch.setenv("CMI_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'cmi_boom' failed to load: RuntimeError: boom"):
        load(site_dir, "cmi-boom", {"cmi_boom": "raise RuntimeError('boom')"})


def test_local_module_is_registered_without_packaging(site_dir):
    install_fake_distribution(site_dir, "unused", {}, {"my_local_weighting": good_plugin("local")})
    manager = get_plugin_manager(["my_local_weighting"])
    assert manager.get("weighting", "local").summary == "A test weighting"
    info = next(i for i in manager.infos() if i.name == "local")
    assert info.distribution == "local module"


@pytest.mark.plugin_listing
def test_unknown_name_suggests_the_closest_and_lists_all(site_dir):
    manager = load(site_dir, "cmi-extra", {"cmi_extra": good_plugin("uncertain")})
    with pytest.raises(PluginError) as error:
        manager.get("weighting", "uncertian")
    assert "did you mean 'uncertain'?" in str(error.value)
    available = str(error.value).split("available: ")[1].split(", ")
    assert "uncertain" in available and "uncertainty" in available


def test_cli_plugins_survives_a_broken_plugin(site_dir, capsys):
    install_fake_distribution(
        site_dir, "cmi-broken", {"broken": "cmi_broken2"}, {"cmi_broken2": "import nope_xyz"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "broken" in out and "failed: ModuleNotFoundError" in out


def test_every_public_name_is_listed_statically_and_seen_by_dir():
    import ast

    import cmi_core

    tree = ast.parse(Path(cmi_core.__file__).read_text())
    checked = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for stmt in node.body
        for alias in stmt.names
    }
    assert set(cmi_core._LAZY) == checked  # editors see each lazily loaded name
    assert set(cmi_core._LAZY) <= set(cmi_core.__all__) <= set(dir(cmi_core))
    for name in cmi_core.__all__:
        assert getattr(cmi_core, name) is not None
