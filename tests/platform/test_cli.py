"""The command line: help, version, and that non-training commands never import Lightning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cmi_core import __version__
from cmi_core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"cmi-trainer {__version__}"


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "check", "plugins", "synth", "predict", "report"):
        assert f"    {command}" in out


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins", "--json"], ["check", str(ROOT / "configs" / "exp025.toml")]],
    ids=["help", "plugins", "check"],
)
def test_quick_commands_do_not_import_lightning(argv):
    """`cmi --help`, `plugins` and `check` must not pay Lightning's ~7 s import."""
    code = (
        "import sys\nfrom cmi_core.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('pytorch_lightning', 'lightning') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_usage_error_exit_code(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run"])
    assert exit_.value.code == 2
    assert "the following arguments are required: config" in capsys.readouterr().err


@pytest.mark.plugin_listing
def test_plugins_json_rows_are_flat(capsys):
    main(["plugins", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert all(
        set(row) >= {"name", "kind", "summary", "distribution", "version", "status"} for row in rows
    )


@pytest.mark.parametrize(
    "argv",
    [["plugins", "--json"], ["plugins"], ["check", str(ROOT / "configs" / "exp025.toml")]],
    ids=["plugins-json", "plugins", "check"],
)
def test_a_closed_stdout_ends_quietly(argv):
    """`cmi plugins --json | head`: the reader is gone before the command writes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cmi_core.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert stderr == ""
