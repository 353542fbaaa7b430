"""TensorBoard logger plugin: flat scalar tags, custom-scalar charts, hparams and figures.

The run logs flat tags (``loss/<term>``, ``weights/<term>``, ``weighting/<param>``,
``val/cmi_score``, ``lr``); this logger adds one multi-line chart for all ``weights/*`` and one
for all ``loss/*`` (TensorBoard's "Custom Scalars" tab), the resolved config as hparams with the
fold's best score (``hparams/cmi_score``), and figures such as the validation confusion matrix.
Lightning is imported inside the factory only, so ``cmi plugins`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

import cmi_core
from cmi_core.specs import LoggerSpec


@attrs.frozen
class TensorBoardOptions:
    """Options of ``[logging.tensorboard]``."""

    flush_secs: int = 30  # how often the event file is flushed to disk
    max_queue: int = 10  # events buffered before a flush


def make_logger(save_dir: Path, options: TensorBoardOptions) -> Any:
    """A TensorBoard logger writing its event files directly into ``save_dir`` (``fold_<k>/``)."""
    from cmi_logger_tensorboard.logger import CMITensorBoardLogger

    return CMITensorBoardLogger(
        save_dir, flush_secs=options.flush_secs, max_queue=options.max_queue
    )


cmi_register_loggers = cmi_core.registering(
    LoggerSpec(
        name="tensorboard",
        summary="TensorBoard event files with weight/loss charts, hparams and figures",
        factory=make_logger,
        config_cls=TensorBoardOptions,
    )
)
