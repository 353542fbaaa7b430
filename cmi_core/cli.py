"""The ``cmi`` command.

Every subcommand imports what it needs inside its handler: ``cmi --help``, ``cmi plugins`` and
``cmi check`` must not pay for importing Lightning (~7 s on a small CPU).
User errors (:class:`~cmi_core.errors.CmiError`) print as ``error: ...`` lines with exit code 2;
``--debug`` shows the traceback instead. Ctrl-C and SIGTERM stop every command alike
(:mod:`cmi_core.common.signals`): exit code 130 and 143.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cmi_core import __version__
from cmi_core.common.paths import require_input, require_output
from cmi_core.common.signals import Stopped, stop_signals
from cmi_core.errors import CmiError, PathError, RunError

EXIT_USAGE = 2
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="experiment TOML file")
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. -o trainer.max_epochs=3 (repeatable)",
    )


def _parse_folds(text: str) -> list[int]:
    """``0,1`` -> ``[0, 1]``: at least one index, none negative (an empty list would mean
    "every fold" to some callers and "none" to others)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    negative = [value for value in values if value < 0]
    if negative:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {negative[0]}")
    return values


def _positive_int(text: str) -> int:
    """A count (batch size, jobs, seeds, subjects): 0 or less is refused here, since a
    negative batch size would otherwise run and write garbage."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    """A seed numpy and torch accept: 0 .. 2**32 - 1."""
    from cmi_core.options import seed_range

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    problem = seed_range(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def _seeds(text: str) -> list[int]:
    """``--seed-list 0,1,2``: fold-like integers, each a valid seed."""
    values = _parse_folds(text)
    return [_seed(str(value)) for value in values]


def _add_jobs_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        help="trials at once (default: [trainer] jobs, else cores // trainer.threads on a CPU)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmi",
        description="Train, check and deploy gesture classifiers for the Kaggle CMI competition.",
    )
    parser.add_argument("--version", action="version", version=f"cmi-trainer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="train every configured fold into a run directory",
        epilog="Continue an interrupted run with: cmi run --resume RUN_DIR",
    )
    _add_config_args(run)
    run.add_argument("--out", type=Path, help="run directory (default: runs/<name>-<time>)")
    run.add_argument("--folds", type=_parse_folds, help="train only these folds, e.g. 0,1")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true", help="continue the run in --out (or CONFIG = a run dir)"
    )
    mode.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    _add_jobs_arg(run)
    run.set_defaults(handler=_cmd_run)

    sweep = sub.add_parser(
        "sweep",
        help="train a grid of configs x seeds, each point a run directory",
        epilog="Re-run the same command to resume. Then: cmi compare DIR --baseline NAME",
    )
    _add_config_args(sweep)
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config key and its values, e.g. loss.weighting.strategy=none,direct (repeatable)",
    )
    seeds = sweep.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=_positive_int, help="train every point with seeds 0..N-1")
    seeds.add_argument("--seed-list", type=_seeds, help="these seeds, e.g. 0,1,2")
    sweep.add_argument("--out", type=Path, required=True, help="sweep directory")
    _add_jobs_arg(sweep)
    sweep.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run trials on a Ray cluster: auto, HOST:PORT, ray://HOST:PORT, or local",
    )
    sweep.set_defaults(handler=_cmd_sweep)

    compare = sub.add_parser("compare", help="compare runs and sweeps over seeds and folds")
    compare.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="run or sweep dirs")
    compare.add_argument("--baseline", help="config to compare against (default: the first)")
    compare.add_argument("--csv", type=Path, help="also write the table as CSV")
    compare.add_argument("--json", type=Path, help="also write the table as JSON")
    compare.add_argument("--plot", type=Path, help="also plot scores and differences (PNG)")
    compare.add_argument(
        "--weights", action="store_true", help="also print each term's final learned weight"
    )
    add_ensemble_arguments(compare)
    compare.set_defaults(handler=_cmd_compare)

    check = sub.add_parser("check", help="validate a config and its plugins")
    _add_config_args(check)
    check.set_defaults(handler=_cmd_check)

    plugins = sub.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=_cmd_plugins)

    synth = sub.add_parser("synth", help="write a synthetic data set in the Kaggle format")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--subjects", type=_positive_int, default=24)
    synth.add_argument("--seed", type=_seed, default=0)
    synth.add_argument(
        "--overwrite", action="store_true", help="replace the data files of a non-empty OUT_DIR"
    )
    synth.set_defaults(handler=_cmd_synth)

    predict = sub.add_parser("predict", help="predict test.csv with a run or an ensemble of runs")
    predict.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    predict.add_argument("--data", type=Path, required=True, help="dir with test.csv + demos")
    predict.add_argument("--out", type=Path, default=Path("submission.csv"), help=".csv/.parquet")
    predict.add_argument("--weights", help="one weight per run, e.g. 2,1,1 (default: equal)")
    predict.add_argument("--folds", type=_parse_folds, help="only these finished folds (one run)")
    predict.add_argument("--batch-size", type=_positive_int, default=256)
    predict.add_argument(
        "--by-sensors",
        action="store_true",
        help="IMU-only sequences to the IMU-only runs, the others to the thm/ToF runs",
    )
    predict.add_argument(
        "--plugin-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this local plugin module (repeatable); a run directory's own "
        "[plugins] modules are never imported",
    )
    _add_postprocess_arguments(predict)
    predict.add_argument(
        "--order-seed",
        type=_seed,
        help="post-process in the gateway's shuffled order for this seed (default: file order)",
    )
    predict.set_defaults(handler=_cmd_predict)

    ensemble = sub.add_parser("ensemble", help="OOF score of each run and of their ensemble")
    ensemble.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    ensemble.add_argument("--weights", help="one weight per run, e.g. 2,1,1 (default: equal)")
    ensemble.add_argument(
        "--fit-weights",
        action="store_true",
        help="choose weights per config on the OOF rows, nested within the folds",
    )
    ensemble.add_argument(
        "--save-weights",
        type=Path,
        metavar="FILE",
        help="with --fit-weights: write the all-fold weights as a --weights value",
    )
    _add_postprocess_arguments(ensemble)
    ensemble.add_argument(
        "--orders",
        type=_positive_int,
        help="with --postprocess: replay each fold's OOF sequences in N arrival orders "
        "(default 20)",
    )
    ensemble.set_defaults(handler=_cmd_ensemble)

    bundle = sub.add_parser("bundle", help="a folder ready for `kaggle datasets create`")
    bundle.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    bundle.add_argument("--out", type=Path, required=True, help="a new or empty directory")
    bundle.add_argument("--slug", default="my-cmi-run", help="the Kaggle dataset's name")
    bundle.add_argument("--weights", help="one weight per run, e.g. 2,1,1 (default: equal)")
    bundle.add_argument(
        "--by-sensors", action="store_true", help="as cmi predict --by-sensors, in the notebook"
    )
    _add_postprocess_arguments(bundle)
    bundle.add_argument(
        "--no-download",
        action="store_true",
        help="do not fetch the pinned wheels the Kaggle image lacks (cattrs, tomli-w)",
    )
    bundle.add_argument(
        "--verify",
        action="store_true",
        help="run the notebook in a fresh venv over --data's test files and compare",
    )
    bundle.add_argument("--data", type=Path, help="test files for --verify (default: the runs')")
    bundle.set_defaults(handler=_cmd_bundle)

    report = sub.add_parser("report", help="plot a run's weights, losses and scores (PNG)")
    report.add_argument("run_dir", type=Path)
    report.set_defaults(handler=_cmd_report)
    return parser


def _add_postprocess_arguments(parser: argparse.ArgumentParser) -> None:
    """``--postprocess NAME`` and its ``--postprocess-option KEY=VALUE`` (predict, ensemble,
    bundle: one spelling everywhere)."""
    parser.add_argument(
        "--postprocess",
        metavar="NAME",
        help="per-subject post-processor (cmi plugins: subject_assignment, subject_prior)",
    )
    parser.add_argument(
        "--postprocess-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the post-processor, value in TOML (repeatable)",
    )


def _postprocess_options(args: argparse.Namespace) -> dict[str, Any] | None:
    from cmi_core.predict.postprocessing import parse_options

    if args.postprocess_option and not args.postprocess:
        raise RunError("--postprocess-option needs --postprocess NAME")
    return parse_options(args.postprocess_option) if args.postprocess else None


# -- handlers --------------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from cmi_core.config import config_to_toml, load_config, tables_without_plugin

    cfg = load_config(require_input("CONFIG", args.config, "file"), args.override)
    print(config_to_toml(cfg), end="")
    for note in tables_without_plugin(cfg):
        print(f"# note: {note}", file=sys.stderr)
    print(f"# {args.config}: OK", file=sys.stderr)
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    import attrs

    from cmi_core.registry.manager import get_plugin_manager

    rows = get_plugin_manager().infos()
    if args.json:
        print(json.dumps([attrs.asdict(row) for row in rows], indent=2))
        return 0
    for row in rows:
        status = row.status if row.status == "active" else f"failed: {row.error}"
        print(
            f"{row.kind:<10} {row.name:<16} {row.distribution} {row.version:<8} "
            f"[{status}] {row.summary}"
        )
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from cmi_core.data.synthetic import generate

    require_output("OUT_DIR", args.out_dir, "dir")
    out = generate(
        args.out_dir,
        subjects=args.subjects,
        seed=args.seed,
        progress=True,
        overwrite=args.overwrite,
    )
    print(f"wrote the synthetic Kaggle files to {out}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from cmi_core.config import load_config

    config, out = _run_paths(args)
    cfg = load_config(config, args.override)
    from cmi_core.runs.executor import LocalExecutor, resolve_jobs
    from cmi_core.runs.run import default_run_dir, run_experiment

    out = out or default_run_dir(cfg)
    wanted = args.folds if args.folds is not None else cfg.cv.folds or range(cfg.cv.n_folds)
    jobs = resolve_jobs(cfg, args.jobs, trials=len(wanted))  # one fold: no worker start-up
    summary = run_experiment(
        cfg,
        out,
        folds=args.folds,
        resume=args.resume,
        overwrite=args.overwrite,
        executor=LocalExecutor(jobs) if jobs > 1 else None,
    )
    print(f"out-of-fold cmi_score {summary['cmi_score']:.4f}; run directory: {out}")
    return 0


def _run_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The config file and the run directory of ``cmi run``, checked before anything loads:
    ``CONFIG`` is a config file, or with ``--resume`` the run directory itself."""
    config, out = args.config, args.out
    if args.resume and config.is_dir():  # `cmi run --resume RUN_DIR`
        config, out = config / "config.toml", out or config
        require_input("CONFIG", config, "file")
    else:
        require_input("CONFIG", config, "file")
        if args.resume and out is None:
            raise PathError(
                "--resume: name the run to continue: cmi run --resume RUN_DIR "
                "(or CONFIG --resume --out RUN_DIR)"
            )
    if out is not None:
        require_output("--out", out, "dir")
    return config, out


def _cmd_sweep(args: argparse.Namespace) -> int:
    from cmi_core.runs.sweep_plan import plan_sweep

    require_input("CONFIG", args.config, "file")
    require_output("--out", args.out, "dir")
    plan = plan_sweep(args.config, args.override, args.grid, args.seeds, args.seed_list)
    from cmi_core.runs.executor import LocalExecutor, RayExecutor, resolve_jobs

    base = next(iter(plan.configs.values()))
    executor = RayExecutor(args.ray) if args.ray else LocalExecutor(resolve_jobs(base, args.jobs))
    from cmi_core.runs.sweep import run_sweep

    try:
        state = run_sweep(plan, args.out, executor)
    finally:
        executor.close()
    done = sum(p["status"] == "done" for p in state["points"])
    print(f"{done}/{len(state['points'])} runs finished; sweep directory: {args.out}")
    print(f"compare them: cmi compare {args.out}")
    return 0 if done == len(state["points"]) else 1


def add_ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ensemble A+B`` (repeatable) and ``--fit-weights``, as ``cmi compare`` and
    ``bench/bench_baselines.py`` take them (:mod:`cmi_core.analysis.seed_ensembles`)."""
    parser.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="A+B",
        help="also compare an ensemble of these configs, mixed seed by seed (repeatable)",
    )
    parser.add_argument(
        "--fit-weights",
        action="store_true",
        help="mix --ensemble members with weights fitted on the other folds (nested)",
    )


def _cmd_compare(args: argparse.Namespace) -> int:
    from cmi_core.analysis.compare import (
        check_outputs,
        compare_groups,
        format_table,
        format_weights,
        pick_baseline,
        read_groups,
        write_csv,
        write_json,
        write_plot,
    )
    from cmi_core.analysis.seed_ensembles import add_ensembles

    check_outputs(args.csv, args.json, args.plot)
    groups = add_ensembles(read_groups(args.dirs), args.ensemble, fit=args.fit_weights)
    comparison = compare_groups(groups, pick_baseline(groups, args.baseline))
    print(format_table(comparison))
    if args.weights:
        print("\n" + format_weights(comparison))
    for path, write in ((args.csv, write_csv), (args.json, write_json), (args.plot, write_plot)):
        if path is not None:
            write(comparison, path)
            print(f"wrote {path}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from cmi_core.predict.predictor import predict_file
    from cmi_core.predict.weights import parse_weights

    for run_dir in args.run_dirs:
        require_input("RUN_DIR", run_dir, "dir")
    require_input("--data", args.data, "dir")
    require_output("--out", args.out, "file")
    weights = parse_weights(args.weights) if args.weights else None
    written = predict_file(
        args.run_dirs,
        args.data,
        args.out,
        weights=weights,
        folds=args.folds,
        batch_size=args.batch_size,
        by_sensors=args.by_sensors,
        plugin_modules=args.plugin_module,
        postprocess=args.postprocess,
        postprocess_options=_postprocess_options(args),
        order_seed=args.order_seed,
    )
    print(f"wrote {written}")
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from cmi_core.analysis.ensemble import ensemble_report
    from cmi_core.predict.weights import parse_weights

    weights = parse_weights(args.weights) if args.weights else None
    options = _postprocess_options(args)
    if args.orders is not None and not args.postprocess:
        raise RunError("--orders replays the OOF sequences for a post-processor; add --postprocess")
    if args.fit_weights or args.save_weights:
        return _fit_weights(args)
    print(ensemble_report(args.run_dirs, weights).table())
    if args.postprocess:
        from cmi_core.analysis.postprocess_estimate import postprocess_estimate

        orders = 20 if args.orders is None else args.orders
        estimate = postprocess_estimate(
            args.run_dirs, args.postprocess, weights=weights, orders=orders, options=options
        )
        print(estimate.table())
    return 0


def _fit_weights(args: argparse.Namespace) -> int:
    """``cmi ensemble --fit-weights``: nested OOF weights, and the all-fold ones to keep."""
    from cmi_core.analysis.fit_weights import fit_weights_report

    if not args.fit_weights:
        raise RunError("--save-weights writes the weights --fit-weights chooses; add --fit-weights")
    for option in ("weights", "postprocess"):
        if getattr(args, option):
            raise RunError(
                f"--fit-weights chooses the weights itself; drop --{option} (give the printed "
                "--weights to a second cmi ensemble for it)"
            )
    if args.save_weights:
        require_output("--save-weights", args.save_weights, "file")
    report = fit_weights_report(args.run_dirs)
    print(report.table())
    if args.save_weights:
        from cmi_core.common.atomic import write_text_atomic

        args.save_weights.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.save_weights, report.weights_option + "\n")
        print(f"wrote {args.save_weights}")
    return 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    from cmi_core.predict.bundle import write_bundle
    from cmi_core.predict.weights import normalized_weights, parse_weights

    weights = parse_weights(args.weights) if args.weights else None
    normalized_weights(weights, len(args.run_dirs))  # bad weights fail before any work
    options = {
        "weights": weights,
        "by_sensors": args.by_sensors,
        "postprocess": args.postprocess,
        "postprocess_options": _postprocess_options(args),
    }
    report = write_bundle(
        args.run_dirs, args.out, slug=args.slug, download=not args.no_download, **options
    )
    print(f"wrote {report.out}: {len(report.runs)} run(s), {len(report.wheels)} wheel(s), ", end="")
    print(f"{report.size / 2**20:.1f} MiB")
    if not args.verify:
        return 0
    from cmi_core.predict.verify import verify_bundle

    data_dir = args.data or _runs_data_dir(args.run_dirs[0])
    check = verify_bundle(args.out, args.run_dirs, data_dir, args.slug, **options)
    if check.differing:
        print(
            f"verify: {len(check.differing)} of {check.sequences} answers differ from cmi predict"
        )
        return 1
    print(f"verify: all {check.sequences} answers equal cmi predict (fresh venv, {data_dir})")
    return 0


def _runs_data_dir(run_dir: Path) -> Path:
    """The test files a run was trained beside: its data directory (generated if synthetic)."""
    from cmi_core.config import load_config
    from cmi_core.data.source import resolve_data_dir

    return resolve_data_dir(load_config(run_dir / "config.toml").data)


def _cmd_report(args: argparse.Namespace) -> int:
    from cmi_core.analysis.report import fold_table, write_report

    for path in write_report(args.run_dir, note=print):
        print(f"wrote {path}")
    print(fold_table(args.run_dir))
    return 0


# -- entry point -----------------------------------------------------------------------------


def _stdout_closed() -> int:
    """The reader went away (``cmi plugins --json | head``): end quietly, as ``cat`` does.

    stdout is pointed at /dev/null so that Python's own flush at exit cannot fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        with stop_signals():
            code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except CmiError as exc:
        if args.debug:
            raise
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        stopped = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
        print(f"stopped by {signal.Signals(stopped.signum).name}", file=sys.stderr)
        return stopped.exit_code


if __name__ == "__main__":
    sys.exit(main())
