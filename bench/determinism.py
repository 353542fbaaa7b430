"""What changes a fold's result: runs of fold 0 under different settings against a baseline run.

Each variant trains fold 0 of the config (a few epochs of a few batches) into its own run
directory and is compared with a reference run, the baseline (the config as given,
``trainer.threads = 1``) unless named: the largest absolute difference of any weight in
``last.ckpt``, and the fold's ``cmi_score``.
``resumed`` is interrupted (Ctrl-C) in its second epoch and resumed with ``--resume``.
Results are recorded in docs/running.md ("Determinism").

    .venv/bin/python bench/determinism.py [--config configs/exp025.toml] [--epochs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback

from cmi_core.config import load_config
from cmi_core.runs import run

BASELINE = "baseline"
VARIANTS: dict[str, tuple[list[str], str]] = {
    "baseline again": ([], BASELINE),
    "threads = 2": (["trainer.threads=2"], BASELINE),
    "deterministic = true": (["trainer.deterministic=true"], BASELINE),
    "deterministic = false": (["trainer.deterministic=false"], BASELINE),
    "resumed": ([], BASELINE),
    "num_workers = 2": (["trainer.num_workers=2"], BASELINE),
    "num_workers = 2, again": (["trainer.num_workers=2"], "num_workers = 2"),
    "num_workers = 2, resumed": (["trainer.num_workers=2"], "num_workers = 2"),
}
"""variant -> (overrides on top of the baseline's, the run it is compared with)"""


class CtrlCInEpoch1(Callback):
    """A real SIGINT after the first batch of the second epoch (epoch 0 is checkpointed)."""

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.current_epoch == 1 and args[-1] == 0:
            os.kill(os.getpid(), signal.SIGINT)


def train(config: Path, overrides: list[str], out: Path, interrupt: bool) -> float:
    """Fold 0's cmi_score (the run is interrupted once and resumed when ``interrupt``)."""
    cfg = load_config(config, overrides)
    original = run.train_fold
    if interrupt:
        run.train_fold = lambda *a, **kw: original(*a, extra_callbacks=[CtrlCInEpoch1()], **kw)
        with contextlib.suppress(KeyboardInterrupt), contextlib.redirect_stderr(io.StringIO()):
            run.run_experiment(cfg, out, progress=False)
        run.train_fold = original
    with contextlib.redirect_stderr(io.StringIO()):
        summary = run.run_experiment(cfg, out, resume=interrupt, progress=False)
    return summary["folds"][0]["cmi_score"]


def max_difference(a: Path, b: Path) -> float:
    """Largest absolute weight difference between two runs' fold-0 ``last.ckpt``."""
    paths = (run_dir / "fold_0" / "last.ckpt" for run_dir in (a, b))
    first, second = (torch.load(p, weights_only=True)["state_dict"] for p in paths)
    return max(float((first[k].double() - second[k].double()).abs().max()) for k in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/exp025.toml"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8, help="training batches per epoch")
    args = parser.parse_args()
    base = [
        "cv.folds=[0]",
        "trainer.threads=1",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.limit_train_batches={args.batches}",
        "logging.loggers=[]",
    ]
    with tempfile.TemporaryDirectory() as root:
        runs = {BASELINE: Path(root) / "0"}
        score = train(args.config, base, runs[BASELINE], interrupt=False)
        print(f"{'variant':<26} {'compared with':<16} {'max |weight diff|':>18} {'cmi_score':>10}")
        print(f"{BASELINE:<26} {'':<16} {'':>18} {score:>10.4f}")
        for name, (extra, reference) in VARIANTS.items():
            runs[name] = Path(root) / str(len(runs))
            score = train(args.config, base + extra, runs[name], interrupt="resumed" in name)
            diff = max_difference(runs[reference], runs[name])
            print(f"{name:<26} {reference:<16} {diff:>18.3g} {score:>10.4f}", flush=True)


if __name__ == "__main__":
    main()
