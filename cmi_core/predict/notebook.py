"""The Kaggle submission notebook of docs/kaggle.md, filled in for a bundle's runs.

One template serves the docs page (whose Python cell is this template for the example bundle,
checked by a test) and ``cmi bundle``, which writes it as ``submission.ipynb``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

COMPETITION_DIR = "/kaggle/input/cmi-detect-behavior-with-sensor-data"

_CODE = """import os
import sys
from pathlib import Path

import polars as pl
import torch

from cmi_core.predict.predictor import Predictor

BUNDLE = Path("/kaggle/input/{slug}")
RUN_DIRS = [{run_dirs}]
WEIGHTS = {weights}  # one per run; None: equal
BY_SENSORS = {by_sensors}  # IMU-only sequences to the IMU-only runs
POSTPROCESS = {postprocess}  # per-subject post-processor (docs/kaggle.md); None: none
POSTPROCESS_OPTIONS = {postprocess_options}  # its options, e.g. {{"extra_slots": 1}}
COMPETITION_DIR = Path("{competition_dir}")
sys.path.append(str(COMPETITION_DIR))  # the kaggle_evaluation package ships with the data
import kaggle_evaluation.cmi_inference_server  # noqa: E402

device = "cuda" if torch.cuda.is_available() else "cpu"
if device == "cpu":
    torch.set_num_threads(1)  # one small sequence per call: more threads only wait on each other
# Load once, before the server starts (it must come up within 15 minutes; this takes seconds).
# One predictor serves the whole session: the post-processor keeps each subject's sequences.
predictor = Predictor.from_runs(
    RUN_DIRS,
    WEIGHTS,
    device,
    by_sensors=BY_SENSORS,
    postprocess=POSTPROCESS,
    postprocess_options=POSTPROCESS_OPTIONS,
)


def predict(sequence: pl.DataFrame, demographics: pl.DataFrame) -> str:
    return predictor.predict(sequence, demographics)


inference_server = kaggle_evaluation.cmi_inference_server.CMIInferenceServer(predict)
if os.getenv("KAGGLE_IS_COMPETITION_RERUN"):
    inference_server.serve()
else:  # interactive session: a dry run over the public test files
    inference_server.run_local_gateway(
        data_paths=(
            str(COMPETITION_DIR / "test.csv"),
            str(COMPETITION_DIR / "test_demographics.csv"),
        )
    )
"""


def install_line(slug: str) -> str:
    """The notebook's first cell: exactly the bundle's wheels, the image's packages for the rest."""
    return f"!pip install --no-index --no-deps /kaggle/input/{slug}/wheels/*.whl"


def notebook_code(
    run_names: Sequence[str],
    slug: str,
    *,
    weights: Sequence[float] | None = None,
    by_sensors: bool = False,
    postprocess: str | None = None,
    postprocess_options: Mapping[str, Any] | None = None,
) -> str:
    """The notebook's Python cell for the runs ``run_names`` under ``runs/`` of the bundle."""
    return _CODE.format(
        slug=slug,
        run_dirs=", ".join(f'BUNDLE / "runs" / "{name}"' for name in run_names),
        weights=None if weights is None else [float(w) for w in weights],
        by_sensors=by_sensors,
        postprocess=_literal(postprocess),
        postprocess_options=_literal(dict(postprocess_options or {})),
        competition_dir=COMPETITION_DIR,
    )


def _literal(value: Any) -> str:
    """``value`` as Python source in the notebook's style (double-quoted strings)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_literal, value)) + "]"
    return repr(value)


def notebook_json(
    run_names: Sequence[str],
    slug: str,
    **options: Any,
) -> str:
    """``submission.ipynb``: the install cell, then the code cell (nbformat 4); ``options``
    as for :func:`notebook_code`."""
    cells = [install_line(slug), notebook_code(run_names, slug, **options)]
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": cell.splitlines(keepends=True),
            }
            for cell in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1) + "\n"
