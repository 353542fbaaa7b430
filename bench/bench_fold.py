"""Wall time of one fold (training + validation + OOF prediction) against an older commit.

Issue 22's target: at most 0.5x the older commit's fold time at the same out-of-fold score
(to the fourth decimal, same seed and thread count). Both sides train the same fold of the same
config on the same data, each in its own subprocess on this machine:

- "old": a ``git worktree`` of ``--baseline`` (default 8d2a505, the commit before the speed-up),
  checked out into a temporary directory and removed afterwards, with ``PYTHONPATH`` pointing at
  it (and its ``plugins/``), so its own ``cmi_core`` and plugins run;
- "new": this checkout, the same way.

Both start in this checkout's root, so the config's relative ``data.cache_dir`` is the same
cached data set for both. Each subprocess loads the data (not timed), then times
``train_fold``: the fit (training steps, validation after each epoch, checkpoints, logging)
and the fold's out-of-fold prediction. The repeats interleave (old, new, new, old, ...) so a busy
neighbour on the shared machine slows both alike; the script prints each time, the medians,
their ratio and both fold scores.

    .venv/bin/python bench/bench_fold.py [--config configs/exp025.toml] [--fold 0]
        [--baseline 8d2a505] [--repeat 1] [--epochs N] [-o KEY=VALUE ...] [--profile 25]

``--epochs N`` (= ``-o trainer.max_epochs=N``) runs it short; ``--profile N`` runs each side
once under cProfile and prints its N most expensive calls (cumulative) instead of timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCH_FOLD_RESULT "


# -- the child: one fold in this process, with whatever cmi_core PYTHONPATH points at --------


def _found(name: str, modules: tuple[str, ...]) -> object:
    """``name`` wherever this tree keeps it (the module layout changes between commits)."""
    import importlib

    for module in modules:
        with contextlib.suppress(ImportError):
            found = getattr(importlib.import_module(module), name, None)
            if found is not None:
                return found
    raise SystemExit(f"bench_fold: this tree has no {name} in cmi_core")


def child(args: argparse.Namespace) -> None:
    """Train one fold and print its time and score as one JSON line."""
    import torch

    from cmi_core.config import load_config
    from cmi_core.data.folds import assign_folds

    train_fold = _found("train_fold", ("cmi_core.train.fold", "cmi_core.fold"))
    load_data = _found("load_data", ("cmi_core.data.source", "cmi_core.run"))
    quiet_lightning = _found("quiet_lightning", ("cmi_core.train.assemble", "cmi_core.assemble"))
    cfg = load_config(Path(args.config), overrides(args))
    torch.set_num_threads(cfg.trainer.threads or torch.get_num_threads())
    data = load_data(cfg)
    fold_of = assign_folds(data.subjects, data.labels, cfg.cv.n_folds, cfg.cv.seed)
    quiet_lightning()
    with tempfile.TemporaryDirectory(prefix="bench-fold-") as out:
        profiler = _profiler(args.profile)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train_fold(cfg, data, fold_of, args.fold, Path(out), progress=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if profiler is not None:
        _print_profile(profiler, args.profile)
    record = result.record
    line = {"seconds": seconds, "cpu_seconds": cpu, "cmi_score": record.cmi_score}
    line |= {"best_epoch": record.best_epoch}
    line |= {"epochs": record.epochs_trained, "threads": torch.get_num_threads()}
    print(RESULT_PREFIX + json.dumps(line), flush=True)


def _profiler(top: int) -> object | None:
    if not top:
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _print_profile(profiler: object, top: int) -> None:
    import pstats

    profiler.disable()  # type: ignore[attr-defined]
    stats = pstats.Stats(profiler, stream=sys.stderr)  # type: ignore[arg-type]
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


# -- the driver: both sides, interleaved --------------------------------------------------------


def overrides(args: argparse.Namespace) -> list[str]:
    extra = [f"trainer.max_epochs={args.epochs}"] if args.epochs else []
    return [*args.override, *extra]


@contextlib.contextmanager
def old_tree(commit: str) -> Iterator[Path]:
    """A detached worktree of ``commit`` in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-fold-old-") as tmp:
        path = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run(
            [*git, "worktree", "add", "--detach", str(path), commit],
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                [*git, "worktree", "remove", "--force", str(path)], check=False, capture_output=True
            )


def run_side(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """One fold in a subprocess whose ``cmi_core`` is ``tree``'s; its result line, parsed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(tree / "plugins")]))
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--config", args.config]
    argv += ["--fold", str(args.fold), "--profile", str(args.profile)]
    argv += [item for o in overrides(args) for item in ("-o", o)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if args.profile:
        print(done.stderr)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        sys.exit(f"bench_fold: the fold in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/exp025.toml")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--baseline", default="8d2a505", help="the older commit (git ref)")
    parser.add_argument("--repeat", type=int, default=1, help="folds per side, interleaved")
    parser.add_argument("--epochs", type=int, default=0, help="trainer.max_epochs (0: config's)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile each side once; print its N top calls",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; {args.config} fold {args.fold}, "
        f"overrides: {' '.join(overrides(args)) or 'none'}"
    )
    times: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with old_tree(args.baseline) as old:
        trees = {"old": old, "new": ROOT}
        for i in range(1 if args.profile else args.repeat):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for side in order:
                result = run_side(trees[side], args)
                times[side].append(result)
                print(
                    f"  {side} ({args.baseline if side == 'old' else 'this tree'}): "
                    f"{result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU), "
                    f"cmi_score {result['cmi_score']:.4f}, "
                    f"best epoch {result['best_epoch']}, {result['epochs']} epochs, "
                    f"{result['threads']} thread(s)",
                    flush=True,
                )
    report(times)


def report(times: dict[str, list[dict[str, float]]]) -> None:
    """Medians of the wall and the CPU time (the process's own: robust to a busy neighbour
    when the fold runs on one thread), their ratios, and whether the scores agree."""
    for clock, key in (("wall", "seconds"), ("CPU", "cpu_seconds")):
        median = {side: statistics.median(r[key] for r in runs) for side, runs in times.items()}
        print(
            f"median fold {clock} time: old {median['old']:.1f} s, new {median['new']:.1f} s, "
            f"ratio new/old {median['new'] / median['old']:.3f} (target <= 0.5)"
        )
    scores = {side: {round(r["cmi_score"], 4) for r in runs} for side, runs in times.items()}
    same = scores["old"] == scores["new"] and len(scores["old"]) == 1
    print(
        f"cmi_score: old {sorted(scores['old'])}, new {sorted(scores['new'])}: "
        f"{'identical to the fourth decimal' if same else 'DIFFERENT'}"
    )


if __name__ == "__main__":
    main()
