"""CSV logger plugin: every logged scalar as a column of ``<fold dir>/csv/metrics.csv``.

The minimal second logger: no TensorBoard needed to read a run's curves (pandas, polars, a
spreadsheet). It writes into a ``csv/`` sub-directory so it can sit beside the TensorBoard
logger in the same fold directory without both writing ``hparams.yaml``. A resumed fold
appends to its ``metrics.csv`` rather than starting it over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

import cmi_core
from cmi_core.specs import LoggerSpec


@attrs.frozen
class CSVOptions:
    """Options of ``[logging.csv]``."""

    flush_logs_every_n_steps: int = 100  # rows buffered in memory between writes


def make_logger(save_dir: Path, options: CSVOptions) -> Any:
    from cmi_logger_csv.logger import ResumableCSVLogger

    return ResumableCSVLogger(
        save_dir,
        name="csv",
        version="",
        flush_logs_every_n_steps=options.flush_logs_every_n_steps,
    )


cmi_register_loggers = cmi_core.registering(
    LoggerSpec(
        name="csv",
        summary="Scalars as a CSV file per fold (fold_<k>/csv/metrics.csv)",
        factory=make_logger,
        config_cls=CSVOptions,
    )
)
