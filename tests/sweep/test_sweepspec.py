"""Grid arguments, seeds, point names, and the one-line errors of a sweep that cannot start."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from cmi_core.cli import main
from cmi_core.runs.sweep_plan import SweepError, make_points, parse_grid, seed_list


def test_grid_values_are_typed_and_lists_keep_their_commas() -> None:
    lr, clamp = parse_grid(["optimizer.lr=1e-3,0.01", "loss.weighting.clamp=[-5,5],[-10, 10]"])
    assert lr.values == (1e-3, 0.01)
    assert clamp.values == ([-5, 5], [-10, 10])
    assert parse_grid(["loss.weighting.strategy=none,direct"])[0].values == ("none", "direct")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "empty grid"),
        (["trainer.max_epochs"], "expected KEY=V1,V2"),
        (["trainer.max_epochs="], "expected KEY=V1,V2"),
        (["trainer.max_epochs=1,,2"], "empty value"),
        (["trainer.max_epochs=1", "trainer.max_epochs=2"], "a key is given twice"),
        (["trainer.seed=1,2"], "the sweep sets trainer.seed itself; give the seeds with "),
        (["trainer.threads=1,2"], "trainer.threads does not change results"),
        (["trainer.num_workers=0,2"], "trainer.num_workers does not change results"),
        (["optimizer.lr=0.1,1e-1"], "0.1 and 1e-1 are the same value"),
        (["trainer.max_epochs=1,1.0"], "1 and 1.0 are the same value"),
    ],
)
def test_bad_grids(arguments: list[str], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_grid(arguments)


def test_a_point_is_named_by_its_value_not_its_spelling() -> None:
    """Resuming ``--grid optimizer.lr=1e-1`` as ``0.1`` must find the same run directories."""
    spelled = [make_points(parse_grid([f"optimizer.lr={t}"]), [0]) for t in ("1e-1", "0.1")]
    assert spelled[0][0].name == spelled[1][0].name == "0.1-seed0"
    assert spelled[0][0].overrides == ("optimizer.lr=1e-1", "trainer.seed=0")
    assert parse_grid(["data.augment.mixup=true,1"])[0].values == (True, 1)  # not one value


def test_seeds() -> None:
    assert seed_list(3, None, 42) == [0, 1, 2]
    assert seed_list(None, [5, 7], 42) == [5, 7]
    assert seed_list(None, None, 42) == [42]
    with pytest.raises(SweepError, match="at least 1"):
        seed_list(0, None, 42)
    with pytest.raises(SweepError, match="twice"):
        seed_list(None, [1, 1], 42)


def test_point_names_are_readable_and_each_point_sets_its_seed() -> None:
    one = make_points(parse_grid(["loss.weighting.strategy=none,direct"]), [0, 1])
    assert [p.name for p in one] == ["none-seed0", "none-seed1", "direct-seed0", "direct-seed1"]
    assert one[3].overrides == ("loss.weighting.strategy=direct", "trainer.seed=1")
    two = make_points(parse_grid(["loss.weighting.lr_scale=0.1,1.0", "optimizer.lr=0.01"]), [3])
    assert [p.name for p in two] == ["lr_scale-0.1_lr-0.01-seed3", "lr_scale-1.0_lr-0.01-seed3"]
    clash = make_points(parse_grid(["optimizer.lr=0.1", "model.lr=0.2"]), [0])
    assert clash[0].label == "optimizer.lr-0.1_model.lr-0.2"


def _error_lines(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.strip().splitlines()


def test_unknown_grid_key_gets_the_config_error_naming_the_grid_argument(
    tiny_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    lines = _error_lines(
        ["sweep", str(tiny_toml), "--grid", "trainer.max_epoch=1,2", "--out", str(out)], capsys
    )
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: --grid trainer.max_epoch=1,2: trainer.max_epoch: unknown key "
        "(did you mean 'max_epochs'?)"
    )
    assert not out.exists()  # nothing written before every point is valid


def test_a_grid_value_of_the_wrong_type_names_its_grid_argument(
    tiny_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", str(tiny_toml), "--grid", "trainer.max_epochs=two", "--out", str(tmp_path)]
    assert _error_lines(argv, capsys) == [
        "error: --grid trainer.max_epochs=two: trainer.max_epochs: expected an integer, got 'two'"
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "error: empty grid: give at least one --grid KEY=V1,V2,..."),
        (
            ["--grid", "trainer.seed=1,2"],
            "error: --grid trainer.seed=1,2: the sweep sets trainer.seed itself; give the seeds "
            "with --seed-list 1,2",
        ),
    ],
)
def test_empty_grid(
    tiny_toml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    argv = ["sweep", str(tiny_toml), "--out", str(tmp_path / "s"), *extra]
    assert _error_lines(argv, capsys) == [message]


def test_missing_ray_install_is_one_line(
    tiny_toml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    argv = ["sweep", str(tiny_toml), "--grid", "trainer.max_epochs=1", "--out", str(tmp_path / "s")]
    lines = _error_lines([*argv, "--ray", "auto"], capsys)
    assert lines == ["error: --ray needs the optional Ray extra: pip install 'cmi-trainer[ray]'"]


def test_unreachable_ray_address_is_one_line(
    tiny_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["sweep", str(tiny_toml), "--grid", "trainer.max_epochs=1", "--out", str(tmp_path / "s")]
    lines = _error_lines([*argv, "--ray", f"127.0.0.1:{port}"], capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --ray 127.0.0.1:{port}: cannot reach 127.0.0.1:{port}")


def test_trials_are_ordered_by_seed_then_fold_so_an_early_stop_keeps_pairs(
    run_cache: Path, tmp_path: Path
) -> None:
    from cmi_core.runs.trials import RunInProgress, paired_order
    from tests.run.conftest import tiny_config

    runs = [
        RunInProgress(
            tiny_config(run_cache, trainer={"seed": seed}), tmp_path / name, [0, 1], {}, None
        )
        for name, seed in (("a1", 1), ("b1", 1), ("a0", 0), ("b0", 0))
    ]
    order = [(Path(t.run_dir).name, t.fold) for t in paired_order(runs, default_threads=1)]
    assert order == [
        ("a0", 0), ("b0", 0), ("a0", 1), ("b0", 1), ("a1", 0), ("b1", 0), ("a1", 1), ("b1", 1)
    ]  # fmt: skip
