"""The GPU smoke run: configs/exp025_full.toml on one NVIDIA GPU, end to end, in minutes.

Stages, each timed:

1. ``train``: fold 0 of ``configs/exp025_full.toml`` (the original 256-wide, 8-block
   Squeezeformer, 200 frames, batch 64) in ``bf16-mixed`` for ``--steps`` optimizer steps
   (default 300: ``--epochs`` 12 epochs of 25 batches), validated after every epoch.
2. ``gradient``: the same fold with a gradient-level strategy (``--strategy``, default
   ``upgrad``) for ``--gradient-steps`` steps (default 20), one epoch.
3. ``predict``: ``cmi predict`` of the trained run on the data set's ``test.csv`` (the CLI, as
   a user runs it; inference runs on the CPU).

For each training stage it prints optimizer steps per second (over the timed training batches
after the first epoch, i.e. without CUDA start-up and allocator warm-up; and over the whole fit,
validation included) and the peak GPU memory (``torch.cuda.max_memory_allocated``, and
``max_memory_reserved`` as the allocator holds it). Everything goes to ``--out`` (default
``runs/gpu-smoke``): the two run directories, ``submission.csv`` and ``results.json``.

``--cpu`` rehearses the same stages on the CPU at a tiny size (4 synthetic subjects, a 32-wide
1-block model, 64 frames, a few steps; still ``bf16-mixed``, through CPU autocast), so every part
but the GPU itself can be checked anywhere; it reports peak resident memory instead. Without
``--cpu`` and without a CUDA device the script stops at once with a message.

Run (bench/gpu_smoke.sh sets up the CUDA build of torch first and keeps the 8-minute budget):
     .venv/bin/python bench/gpu_smoke.py [--cpu] [--steps 300] [--out runs/gpu-smoke]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "exp025_full.toml"
TINY = [
    "data.synthetic.subjects=4",
    "data.max_len=64",
    "cv.n_folds=2",
    "model.squeezeformer.d_model=32",
    "model.squeezeformer.n_layers=1",
    "model.squeezeformer.n_heads=2",
    "model.squeezeformer.ff_dim=64",
    "model.squeezeformer.pool_layers=1",
    "trainer.accelerator=cpu",
    "trainer.num_workers=0",
    "trainer.threads=1",
]
"""``--cpu``: the same stages at a size a 2-core CPU trains in seconds."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="tiny rehearsal on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="train steps (300; --cpu: 4)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (12; --cpu: 2)")
    parser.add_argument("--strategy", default="upgrad", help="gradient-level strategy")
    parser.add_argument("--gradient-steps", type=int, default=None, help="(20; --cpu: 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-smoke")
    args = parser.parse_args(argv)
    tiny = args.cpu
    args.steps = args.steps or (4 if tiny else 300)
    args.epochs = args.epochs or (2 if tiny else 12)
    args.gradient_steps = args.gradient_steps or (2 if tiny else 20)
    if args.steps % args.epochs or args.steps < 2 * args.epochs or args.gradient_steps < 2:
        # trainer.limit_train_batches = 1 would mean "all batches" (a fraction), not one
        parser.error(
            "--steps must be a multiple of --epochs, >= 2 per epoch; --gradient-steps >= 2"
        )
    return args


def require_device(cpu: bool) -> str:
    """The device line of the report; stops with a message when a GPU run has no GPU."""
    import torch

    if cpu:
        return f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}"
    if not torch.cuda.is_available():
        sys.exit(
            f"gpu_smoke: torch {torch.__version__} sees no CUDA device. This run needs an NVIDIA "
            "GPU and the CUDA build of torch: where .venv was set up without a GPU (a CPU build), "
            "remove it and run bash bench/gpu_smoke.sh, which installs the CUDA build; rehearse "
            "on the CPU with --cpu"
        )
    return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"


def step_timer(gpu: bool) -> Any:
    """A Lightning callback that times each training batch (forward, backward, optimizer step),
    waiting for the GPU at both ends so the time is the device's, not the launch queue's."""
    import torch
    from pytorch_lightning import Callback

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.batches: list[tuple[int, float]] = []  # (epoch, seconds)
            self.fit_s = 0.0
            self._t = 0.0

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            self._fit = time.perf_counter()

        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            sync()
            self._t = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            sync()
            self.batches.append((trainer.current_epoch, time.perf_counter() - self._t))

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            self.fit_s = time.perf_counter() - self._fit

    return StepTimer()


def train(overrides: list[str], out_dir: Path, gpu: bool) -> dict[str, Any]:
    """One fold of ``CONFIG`` with ``overrides`` into ``out_dir``: its speed and peak memory."""
    import torch

    from cmi_core import run
    from cmi_core.config import load_config

    timer = step_timer(gpu)
    fold = run.train_fold
    run.train_fold = lambda *a, **kw: fold(*a, extra_callbacks=[timer], **kw)  # no CLI hook
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    try:
        summary = run.run_experiment(
            load_config(CONFIG, overrides), out_dir, folds=[0], overwrite=True, progress=False
        )
    finally:
        run.train_fold = fold
    return {
        "cmi_score": summary["cmi_score"],
        **speed(timer.batches, timer.fit_s),
        **memory(gpu),
    }


def speed(batches: list[tuple[int, float]], fit_s: float) -> dict[str, Any]:
    """Steps/s over the batches after the first epoch (all of them if there is one epoch)."""
    warm = [s for epoch, s in batches if epoch > 0] or [s for _, s in batches]
    return {
        "steps": len(batches),
        "steps_per_s": round(len(warm) / sum(warm), 2),
        "steps_per_s_fit": round(len(batches) / fit_s, 2),
        "fit_s": round(fit_s, 1),
    }


def memory(gpu: bool) -> dict[str, float]:
    """Peak GPU memory of the stage in GiB (CPU: the process's peak resident set so far)."""
    import torch

    if gpu:
        return {
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
        }
    return {"peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def predict(run_dir: Path, overrides: list[str], submission: Path) -> dict[str, Any]:
    """``cmi predict`` of ``run_dir`` on the configured data set's test.csv, as a user runs it."""
    import polars as pl
    from cmi_core.data.io import resolve_data_dir

    from cmi_core.config import load_config

    data_dir = resolve_data_dir(load_config(CONFIG, overrides).data)
    cmi = Path(sys.executable).with_name("cmi")
    argv = [str(cmi), "predict", str(run_dir), "--data", str(data_dir), "--out", str(submission)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"gpu_smoke: `{' '.join(argv)}` failed:\n{done.stderr[-3000:]}")
    rows = pl.read_csv(submission)
    expected = pl.read_csv(data_dir / "test.csv", columns=["sequence_id"])["sequence_id"].n_unique()
    if list(rows.columns) != ["sequence_id", "gesture"] or rows.height != expected:
        sys.exit(f"gpu_smoke: {submission}: {rows.height} rows {rows.columns}, expected {expected}")
    return {"sequences": rows.height, "predict_s": round(seconds, 1)}


def stage(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"gpu_smoke: {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = work()
    result["stage_s"] = round(time.perf_counter() - started, 1)
    print(f"gpu_smoke: {name}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = require_device(args.cpu)
    base = [*(TINY if args.cpu else []), "trainer.precision=bf16-mixed"]
    batches = args.steps // args.epochs
    trained = [*base, f"trainer.max_epochs={args.epochs}", f"trainer.limit_train_batches={batches}"]
    gradient = [
        *base,
        f"loss.weighting.strategy={args.strategy}",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={args.gradient_steps}",
    ]
    out, gpu = args.out, not args.cpu
    started = time.perf_counter()
    results = {
        "device": device,
        "mode": "cpu rehearsal" if args.cpu else "gpu",
        "train": stage("train", lambda: train(trained, out / "exp025_full", gpu)),
        "gradient": stage(args.strategy, lambda: train(gradient, out / args.strategy, gpu)),
        "predict": stage(
            "predict", lambda: predict(out / "exp025_full", trained, out / "submission.csv")
        ),
    }
    results["total_s"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print_report(results, args.strategy)
    return 0


def print_report(results: dict[str, Any], strategy: str) -> None:
    print(f"device: {results['device']} ({results['mode']})")
    for name, label in (("train", "exp025_full bf16-mixed"), ("gradient", strategy)):
        r = results[name]
        peak = (
            f"peak GPU memory {r['peak_allocated_gib']} GiB allocated, "
            f"{r['peak_reserved_gib']} GiB reserved"
            if "peak_allocated_gib" in r
            else f"peak RSS {r['peak_rss_gib']} GiB"
        )
        print(
            f"{label}: {r['steps']} steps, {r['steps_per_s']} steps/s after the first epoch "
            f"({r['steps_per_s_fit']} over the fit, validation included), {peak}, "
            f"cmi_score {r['cmi_score']:.4f}, {r['stage_s']} s"
        )
    p = results["predict"]
    print(f"cmi predict: {p['sequences']} test sequences in {p['predict_s']} s")
    print(f"total {results['total_s']} s; results.json in the output directory")


if __name__ == "__main__":
    sys.exit(main())
