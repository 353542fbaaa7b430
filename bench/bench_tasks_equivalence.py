"""Do exp024/exp025 train exactly what they trained before tasks became plugins?

Trains a tiny version of each config (few subjects, a tiny encoder, a few steps, the config's
own loss, weighting and seed) twice, with the same interpreter on the same machine: once in a
``git worktree`` of the reference commit (the last one before issue 20), once in this tree.
Prints both trees' per-fold scores and compares them, and every tensor of every fold's
``best.pt``, for exact equality. Exit 1 on any difference.

    python bench/bench_tasks_equivalence.py                 # exp024 and exp025
    python bench/bench_tasks_equivalence.py --reference main --configs configs/exp025.toml

Each tree runs with itself first on ``PYTHONPATH`` (its core and its plugins); the entry points
of each tree's ``pyproject.toml`` are declared through a throw-away ``.dist-info``, so the tree
needs no installation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "974f309"  # main's HEAD when issue 20 (tasks as plugins) last merged it
TINY = [
    "data.synthetic.subjects=4",
    "data.max_len=32",
    "cv.n_folds=2",
    "model.squeezeformer.d_model=16",
    "model.squeezeformer.n_layers=1",
    "model.squeezeformer.n_heads=2",
    "model.squeezeformer.ff_dim=32",
    "model.squeezeformer.kernel_size=5",
    "trainer.max_epochs=2",
    "trainer.batch_size=32",
    "trainer.limit_train_batches=3",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.threads=1",
    "trainer.jobs=1",
    'logging.loggers=["csv"]',
]


def entry_point_site(tree: Path, site: Path) -> Path:
    """A directory holding a ``.dist-info`` that declares the tree's ``cmi.plugins`` entry
    points (those of an installed copy are loaded only once per name: the tree's come first)."""
    project = tomllib.loads((tree / "pyproject.toml").read_text())
    points = project["project"]["entry-points"]["cmi.plugins"]
    info = site / "cmi_trainer_under_test-0.0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cmi-trainer-under-test\n")
    lines = "\n".join(f"{name} = {target}" for name, target in points.items())
    (info / "entry_points.txt").write_text(f"[cmi.plugins]\n{lines}\n")
    return site


def train(tree: Path, config: Path, out: Path, cache: Path) -> None:
    """``cmi run`` of the tiny config in ``tree``, the tree's own code first on the path."""
    site = entry_point_site(tree, out.parent / f"{out.name}-site")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, (tree, tree / "plugins", site))))
    overrides = [*TINY, f"data.cache_dir={cache}"]
    command = [sys.executable, "-m", "cmi_core.cli", "run", str(config), "--out", str(out)]
    command += [arg for o in overrides for arg in ("-o", o)]
    subprocess.run(command, check=True, cwd=tree, env=env, stdout=subprocess.DEVNULL)


def fold_scores(run: Path) -> list[float]:
    return [fold["cmi_score"] for fold in json.loads((run / "summary.json").read_text())["folds"]]


def weight_differences(old: Path, new: Path) -> list[str]:
    """The names of tensors that differ (or exist in one run only) across every fold's
    ``best.pt``."""
    differences = []
    for old_file in sorted(old.glob("fold_*/best.pt")):
        new_file = new / old_file.relative_to(old)
        a = torch.load(old_file, weights_only=True)["state_dict"]
        b = torch.load(new_file, weights_only=True)["state_dict"]
        differences += [f"{old_file.parent.name}/{k}" for k in sorted(set(a) ^ set(b))]
        differences += [
            f"{old_file.parent.name}/{k}" for k in sorted(set(a) & set(b)) if not a[k].equal(b[k])
        ]
    return differences


def compare(reference: str, configs: list[Path], work: Path) -> bool:
    """Train every config in both trees; print both trees' numbers; True when all equal."""
    old_tree = work / "reference"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_tree), reference],
        check=True,
        capture_output=True,
    )
    try:
        same = True
        for config in configs:
            runs = {}
            for label, tree in (("reference", old_tree), ("this tree", ROOT)):
                runs[label] = work / f"{config.stem}-{label.replace(' ', '_')}"
                train(tree, tree / config, runs[label], work / "cache")
                print(f"{config.name} {label:>9} ({tree}): fold scores {fold_scores(runs[label])}")
            differences = weight_differences(runs["reference"], runs["this tree"])
            scores_equal = fold_scores(runs["reference"]) == fold_scores(runs["this tree"])
            print(f"{config.name}: scores equal {scores_equal}; tensors differing {differences}")
            same = same and scores_equal and not differences
        return same
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], check=True
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=REFERENCE, help="commit to compare against")
    parser.add_argument(
        "--configs",
        nargs="+",
        type=Path,
        default=[Path("configs/exp024.toml"), Path("configs/exp025.toml")],
        help="configs, relative to the tree root",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmi-tasks-equivalence-") as work:
        same = compare(args.reference, args.configs, Path(work))
    print("IDENTICAL" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
