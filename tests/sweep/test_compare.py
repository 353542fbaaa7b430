"""``cmi compare`` on hand-made run and sweep directories (the run-directory contract only)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomli_w

from cmi_core.analysis.compare import compare
from cmi_core.cli import main
from cmi_core.data.schema import GESTURES, NON_TARGET_GESTURES, TARGET_GESTURES
from cmi_core.runs.sweep_plan import write_sweep

T1 = TARGET_GESTURES[0]
N1 = NON_TARGET_GESTURES[0]
# 4 subjects, 2 per fold, 2 sequences each, all of gesture T1
ROWS = [(f"seq{i}", f"subj{i // 2}", (i // 2) % 2, T1) for i in range(8)]
ROOT = Path(__file__).resolve().parents[2]


FINGERPRINT = {
    "n_sequences": len(ROWS),
    "sequence_ids": "ids",
    "subjects": "subjects",
    "labels": "labels",
    "features": "features",
    "demographics": "demographics",
}
"""A ``data_fingerprint.json`` of the rows above (the digests stand for the real ones)."""


def fold_record(k: int, weights: dict[str, float] | None = None) -> dict[str, object]:
    """One ``summary.json`` fold record, as ``cmi run`` writes it."""
    n_val = sum(r[2] == k for r in ROWS)
    return {
        **{"fold": k, "cmi_score": 1.0, "binary_f1": 1.0, "macro_f1": 1.0, "best_epoch": 0},
        **{"epochs_trained": 1, "stopped_early": False, "wall_time_s": 1.0},
        **{"n_train": len(ROWS) - n_val, "n_val": n_val, "weights": weights or {}},
        "weighting": {},
    }


def write_run(
    path: Path,
    predictions: list[str],
    *,
    seed: int,
    strategy: str,
    probs: np.ndarray | None = None,
    data: dict[str, object] | None = FINGERPRINT,
    data_table: dict[str, object] | None = None,
    weights: tuple[dict[str, float], dict[str, float]] = ({}, {}),
    **cv: int,
) -> Path:
    """A run directory as ``cmi run`` leaves it, with the given predictions (and gesture
    probabilities, zero unless given), trained on ``data`` (no ``data_fingerprint.json``:
    ``None``) configured as ``data_table``; ``weights``: each fold's final weights."""
    path.mkdir(parents=True)
    config = {
        "name": "exp",
        "cv": {"n_folds": 2, "seed": 0, **cv},
        "data": data_table or {"source": "synthetic", "cache_dir": str(path)},  # where: ignored
        "loss": {"weighting": {"strategy": strategy}},
        "trainer": {"seed": seed},
    }
    (path / "config.toml").write_text(tomli_w.dumps(config))
    summary = {
        "complete": True,
        "n_sequences": len(ROWS),
        "folds": [fold_record(0, weights[0]), fold_record(1, weights[1])],
    }
    (path / "summary.json").write_text(json.dumps(summary))
    if data is not None:
        (path / "data_fingerprint.json").write_text(json.dumps(data))
    probs = np.zeros((len(ROWS), len(GESTURES))) if probs is None else probs
    frame = pl.DataFrame(
        {
            "sequence_id": [r[0] for r in ROWS],
            "subject": [r[1] for r in ROWS],
            "fold": [r[2] for r in ROWS],
            "gesture": [r[3] for r in ROWS],
            "prediction": predictions,
            **{g: probs[:, i] for i, g in enumerate(GESTURES)},
        }
    )
    frame.write_csv(path / "oof_predictions.csv")
    return path


RIGHT = [T1] * 8
# folds: sequences 0,1,4,5 are fold 0; 2,3,6,7 fold 1. Wrong on one sequence of fold 0.
ONE_WRONG = [N1, *[T1] * 7]


def test_runs_differing_only_in_seed_are_one_config_and_pair_with_the_baseline(
    tmp_path: Path,
) -> None:
    for seed in (0, 1):
        write_run(tmp_path / f"none{seed}", ONE_WRONG, seed=seed, strategy="none")
        write_run(tmp_path / f"unc{seed}", RIGHT, seed=seed, strategy="uncertainty")
    dirs = sorted(tmp_path.iterdir())
    result = compare(dirs, baseline="none0")
    assert [c.name for c in result.configs] == ["none0", "unc0"]
    none, unc = result.configs
    # fold 0 with one of 4 target sequences predicted non-target: binary F1 2*3/(6+1) = 6/7,
    # macro over {T1: 6/7, non_target: 0} = 3/7 -> 0.5*6/7 + 0.5*3/7 = 9/14; fold 1 perfect
    assert none.fold_means == pytest.approx({0: 9 / 14, 1: 1.0})
    assert unc.fold_means == {0: 1.0, 1: 1.0}
    assert unc.seeds == [0, 1] and unc.oof_scores == [1.0, 1.0] and unc.oof_sd == 0.0
    paired = unc.vs_baseline
    assert (paired.n, paired.wins, paired.ties, paired.losses) == (4, 2, 2, 0)
    assert paired.mean_diff == pytest.approx((1 - 9 / 14) / 2)
    assert paired.ci_low <= paired.mean_diff <= paired.ci_high
    assert none.vs_baseline is None


def test_a_sweep_directory_names_its_configs_by_grid_value(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    points = []
    for label, predictions in (("none", ONE_WRONG), ("direct", RIGHT)):
        for seed in (0, 1, 2):
            name = f"{label}-seed{seed}"
            write_run(sweep / name, predictions, seed=seed, strategy=label)
            points.append({"name": name, "label": label, "seed": seed})
    points.append({"name": "never-started", "label": "x", "seed": 0})
    write_sweep(sweep, {"points": points})
    result = compare([sweep], baseline="none")
    assert [c.name for c in result.configs] == ["none", "direct"]
    assert result.configs[1].vs_baseline.n == 6


def test_cli_table_csv_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", ONE_WRONG, seed=0, strategy="none")
    b = write_run(tmp_path / "b", RIGHT, seed=0, strategy="direct")
    out = {ext: tmp_path / f"cmp.{ext}" for ext in ("csv", "json", "png")}
    argv = ["compare", str(a), str(b), "--baseline", "a"]
    argv += ["--csv", str(out["csv"]), "--json", str(out["json"]), "--plot", str(out["png"])]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "diff vs a [95% CI]" in table
    assert table.splitlines()[0].startswith("config  runs  OOF mean ± sd")  # short names
    assert "(baseline)" in table
    assert "1.0000 ±      -" in table and "nan" not in table  # one run per config: no sd
    rows = json.loads(out["json"].read_text())["configs"]
    assert rows[1]["config"] == "b" and rows[1]["wins"] == 1 and rows[1]["ties"] == 1
    assert rows[1]["diff_mean"] == pytest.approx((1 - 9 / 14) / 2)
    assert pl.read_csv(out["csv"])["config"].to_list() == ["a", "b"]
    assert out["png"].read_bytes()[:4] == b"\x89PNG"


def test_weights_are_the_final_weights_over_folds_and_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed, phase in ((0, (0.5, 1.5)), (1, (1.0, 2.0))):
        folds = ({"multiclass": 1.0, "phase": phase[0]}, {"multiclass": 1.0, "phase": phase[1]})
        write_run(tmp_path / f"unc{seed}", RIGHT, seed=seed, strategy="uncertainty", weights=folds)
    write_run(tmp_path / "none0", RIGHT, seed=0, strategy="none")
    argv = ["compare", *(str(tmp_path / n) for n in ("none0", "unc0", "unc1")), "--weights"]
    argv += ["--json", str(tmp_path / "cmp.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    weights = out[out.index("final weights (mean ± sd over folds x seeds)") :].splitlines()
    assert weights[1].split() == ["config", "multiclass", "phase"]
    assert weights[3].split() == ["none0", "-", "-"]  # a run without recorded weights
    # phase over the 4 (fold, seed) pairs: 0.5, 1.5, 1.0, 2.0 -> mean 1.25, sample sd
    # sqrt(1.25 / 3) = 0.645 (the sd of the OOF column too)
    assert weights[4].split() == ["unc0", "1.000", "±", "0.000", "1.250", "±", "0.645"]
    rows = json.loads((tmp_path / "cmp.json").read_text())["configs"]
    assert rows[1]["weight_phase"] == pytest.approx(1.25) and "weight_phase" not in rows[0]


def test_weights_of_runs_without_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", RIGHT, seed=0, strategy="none")
    assert main(["compare", str(a), "--weights"]) == 0
    assert "final weights: no run recorded any" in capsys.readouterr().out


def test_one_recorded_weight_has_no_sd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", RIGHT, seed=0, strategy="direct", weights=({"kl": 0.25}, {}))
    assert main(["compare", str(a), "--weights"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["a", "0.250", "±", "-"]


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_runs_of_different_folds_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", RIGHT, seed=0, strategy="none")
    b = write_run(tmp_path / "b", RIGHT, seed=0, strategy="direct", n_folds=3)
    line = _error(["compare", str(a), str(b)], capsys)
    assert "use different data or folds (cv.n_folds differ)" in line


def test_runs_assigning_a_sequence_to_another_fold_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", RIGHT, seed=0, strategy="none")
    b = write_run(tmp_path / "b", RIGHT, seed=0, strategy="direct")
    oof = pl.read_csv(b / "oof_predictions.csv")
    oof.with_columns(fold=pl.Series([1, 1, 0, 0, 0, 0, 1, 1])).write_csv(b / "oof_predictions.csv")
    assert "different data or folds" in _error(["compare", str(a), str(b)], capsys)


def test_unknown_baseline_and_a_directory_without_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", RIGHT, seed=0, strategy="none")
    line = _error(["compare", str(a), "--baseline", "nonee"], capsys)
    assert line == "error: --baseline nonee: no such config; the configs are: a"
    line = _error(["compare", str(tmp_path)], capsys)
    assert line.startswith(f"error: {tmp_path}: neither a run directory")


def test_compare_does_not_import_lightning(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", RIGHT, seed=0, strategy="none")
    code = (
        "import sys\nfrom cmi_core.cli import main\n"
        f"main(['compare', {str(a)!r}])\n"
        "print('HEAVY=' + ','.join(m for m in ('pytorch_lightning', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_the_table_shows_subjects_pairs_interval_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4 subjects in 2 folds are too few for the subject bootstrap: the row says so."""
    for seed in (0, 1):
        write_run(tmp_path / f"none{seed}", ONE_WRONG, seed=seed, strategy="none")
        write_run(tmp_path / f"unc{seed}", RIGHT, seed=seed, strategy="uncertainty")
    out = tmp_path / "cmp.json"
    argv = ["compare", *map(str, sorted(tmp_path.iterdir())), "--baseline", "none0"]
    assert main([*argv, "--json", str(out)]) == 0
    head, _, _, row = capsys.readouterr().out.splitlines()[:4]
    assert head.split()[-6:] == ["interval", "subj", "pairs", "p", "W/T/L", "flags"]
    assert row.split()[-6:] == ["t-folds", "4", "4", "0.500", "2/2/0", "few-subjects"]
    unc = json.loads(out.read_text())["configs"][1]
    assert (unc["n_subjects"], unc["n_folds"], unc["n_pairs"]) == (4, 2, 4)
    assert (unc["interval"], unc["flags"]) == ("t-folds", ["few-subjects"])


def _grid_sweep(path: Path, points: dict[str, dict[str, object]]) -> Path:
    """A sweep of one seed per point, as ``cmi sweep`` records it (labels and values)."""
    rows = []
    for (label, values), predictions in zip(
        points.items(), (ONE_WRONG, RIGHT, RIGHT, RIGHT), strict=False
    ):
        write_run(path / f"{label}-seed0", predictions, seed=0, strategy=label)
        rows.append({"name": f"{label}-seed0", "label": label, "seed": 0, "values": values})
    write_sweep(path, {"points": rows})
    return path


def test_grid_configs_are_named_key_value_and_found_by_their_shortest_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = {
        f"strategy-{s}_max_len-{n}": {"loss.weighting.strategy": s, "data.max_len": n}
        for s in ("none", "direct")
        for n in (96, 128)
    }
    sweep = _grid_sweep(tmp_path / "grid", points)
    names = [c.name for c in compare([sweep]).configs]
    assert names[0] == "strategy=none max_len=96" and len(set(names)) == 4
    assert compare([sweep], baseline="none max_len=128").baseline == "strategy=none max_len=128"
    assert compare([sweep], "strategy=direct max_len=96").baseline == names[2]
    line = _error(["compare", str(sweep), "--baseline", "none"], capsys)
    assert line.startswith("error: --baseline none: ambiguous, it names 2 configs: ")
    assert (
        main(["compare", str(sweep), "--baseline", "none", "--plot", str(tmp_path / "p.png")]) == 2
    )


def test_one_value_of_two_single_key_sweeps_is_told_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``96`` of a channels sweep and of a max_len sweep: two configs, each found by key."""
    channels = _grid_sweep(tmp_path / "channels", {"ch96": {"model.resse_gru.channels": 96}})
    max_len = _grid_sweep(tmp_path / "len", {"len96": {"data.max_len": 96}})
    result = compare([channels, max_len], baseline="max_len=96")
    assert [c.name for c in result.configs] == ["channels=96", "max_len=96"]
    assert result.baseline == "max_len=96"
    assert "ambiguous" in _error(
        ["compare", str(channels), str(max_len), "--baseline", "96"], capsys
    )


def _probs(wrong: dict[int, tuple[float, float]]) -> np.ndarray:
    """Every sequence certain of T1, except ``{row: (p_T1, p_N1)}``."""
    probs = np.zeros((len(ROWS), len(GESTURES)))
    probs[:, GESTURES.index(T1)] = 1.0
    for row, (p_t1, p_n1) in wrong.items():
        probs[row, GESTURES.index(T1)], probs[row, GESTURES.index(N1)] = p_t1, p_n1
    return probs


# A is wrong on sequence 0 (fold 0) and 2 (fold 1), B right but less sure: equal weights side
# with A there (T1 0.4 < N1 0.6), weights of at least 0.8 on B (chosen on the other fold,
# where the same holds) with B.
A_WRONG = [N1, T1, N1, *[T1] * 5]
A_PROBS = _probs({0: (0.2, 0.8), 2: (0.2, 0.8)})
B_PROBS = _probs({0: (0.6, 0.4), 2: (0.6, 0.4)})


def _two_configs(root: Path, seeds_b: tuple[int, ...] = (0, 1)) -> None:
    for seed in (0, 1):
        write_run(root / f"a{seed}", A_WRONG, seed=seed, strategy="none", probs=A_PROBS)
    for seed in seeds_b:
        write_run(root / f"b{seed}", RIGHT, seed=seed, strategy="direct", probs=B_PROBS)


@pytest.mark.parametrize(
    ("fit", "expected"), [([], {0: 9 / 14, 1: 9 / 14}), (["--fit-weights"], {0: 1.0, 1: 1.0})]
)
def test_an_ensemble_is_one_config_mixed_seed_by_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fit: list[str], expected: dict
) -> None:
    _two_configs(tmp_path)
    out = tmp_path / "cmp.json"
    argv = ["compare", *map(str, sorted(tmp_path.iterdir())), "--ensemble", "a0 + b0"]
    assert main([*argv, *fit, "--json", str(out)]) == 0
    assert "a0 + b0" in capsys.readouterr().out
    rows = {row["config"]: row for row in json.loads(out.read_text())["configs"]}
    ensemble = rows["a0 + b0"]
    assert ensemble["n_runs"] == 2 and ensemble["seeds"] == [0, 1]
    assert [ensemble[f"fold_{k}"] for k in (0, 1)] == pytest.approx(list(expected.values()))
    # against A (the baseline), every (fold, seed) pair: tied with equal weights, won with fitted
    assert (ensemble["wins"], ensemble["ties"]) == ((4, 0) if fit else (0, 4))


def test_an_ensemble_has_the_seeds_every_member_has(tmp_path: Path) -> None:
    from cmi_core.analysis.compare import read_groups
    from cmi_core.analysis.seed_ensembles import add_ensembles

    _two_configs(tmp_path, seeds_b=(1, 2))
    groups = add_ensembles(read_groups(sorted(tmp_path.iterdir())), ["a0+b1"], fit=False)
    assert [run.seed for run in groups["a0 + b1"]] == [1]


@pytest.mark.parametrize(
    ("specs", "seeds_b", "message"),
    [
        (["a0+a0"], (0,), "--ensemble a0+a0: name at least 2 different configs, joined by +"),
        (["a0+c"], (0,), "--ensemble c: no such config; the configs are: a0, b0"),
        (["a0+b2"], (2,), "--ensemble a0 + b2: its configs have no seed in common"),
        (["a0+b0", "b0 + a0"], (0,), "--ensemble b0 + a0: the same configs as --ensemble a0+b0"),
        (["a0+b0", "a0+b0"], (0,), "--ensemble a0+b0: the same configs as --ensemble a0+b0"),
    ],
)
def test_bad_ensembles_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], specs: list, seeds_b: tuple, message: str
) -> None:
    _two_configs(tmp_path, seeds_b=seeds_b)
    argv = ["compare", *map(str, sorted(tmp_path.iterdir()))]
    argv += [arg for spec in specs for arg in ("--ensemble", spec)]
    assert _error(argv, capsys) == f"error: {message}"


def test_the_baseline_is_a_member_or_the_ensemble_by_its_plus(tmp_path: Path) -> None:
    from cmi_core.analysis.compare import pick_baseline, read_groups
    from cmi_core.analysis.seed_ensembles import add_ensembles

    _two_configs(tmp_path)
    groups = add_ensembles(read_groups(sorted(tmp_path.iterdir())), ["a0+b0"], fit=False)
    assert pick_baseline(groups, "a0") == "a0"  # not also the ensemble that holds it
    assert pick_baseline(groups, "a0 + b0") == pick_baseline(groups, "+") == "a0 + b0"


def test_one_config_under_another_name_or_from_before_a_key_is_one_config(
    tmp_path: Path,
) -> None:
    """``name`` is a label, and a key added since a run was written reads at its default (the
    behaviour the run had): neither splits one config's seeds into two configs."""
    from cmi_core.rundir.reader import RunDir

    old = write_run(tmp_path / "old", ONE_WRONG, seed=0, strategy="none")
    new = write_run(tmp_path / "new", RIGHT, seed=1, strategy="none")
    default_epochs = RunDir(old).flat_config()["trainer.max_epochs"]  # not in the file
    config = tomllib.loads((new / "config.toml").read_text())
    config["name"] = "renamed"
    config["trainer"]["max_epochs"] = default_epochs
    (new / "config.toml").write_text(tomli_w.dumps(config))
    [one] = compare([old, new]).configs
    assert one.seeds == [0, 1]
    config["trainer"]["max_epochs"] = default_epochs + 1  # another setting: another config
    (new / "config.toml").write_text(tomli_w.dumps(config))
    assert [c.seeds for c in compare([old, new]).configs] == [[0], [1]]


def test_reading_a_run_imports_no_module_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run directory may come from anywhere: comparing it runs none of its modules' code."""
    (tmp_path / "probe_module_of_a_run.py").write_text("raise SystemExit('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runs = [write_run(tmp_path / f"r{seed}", RIGHT, seed=seed, strategy="none") for seed in (0, 1)]
    config = tomllib.loads((runs[1] / "config.toml").read_text())
    config["plugins"] = {"modules": ["probe_module_of_a_run"]}
    (runs[1] / "config.toml").write_text(tomli_w.dumps(config))
    configs = compare(runs).configs
    assert "probe_module_of_a_run" not in sys.modules
    assert [c.seeds for c in configs] == [[0], [1]]  # the module list is part of the config
