"""Lightning's TensorBoardLogger plus the charts and hparams session the cmi run relies on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from cmi_core.tags import (
    GRAD_COSINE_PREFIX,
    GRAD_NORM_PREFIX,
    HPARAMS_SCORE,
    LOSS_PREFIX,
    VAL_PREFIX,
    WEIGHTING_PREFIX,
    WEIGHTS_PREFIX,
)

LAYOUT = {
    "cmi": {
        "learned weights (effective)": ["Multiline", [f"^{WEIGHTS_PREFIX}"]],
        "raw weighting parameters": ["Multiline", [f"^{WEIGHTING_PREFIX}"]],
        "losses (raw, unweighted)": ["Multiline", [f"^{LOSS_PREFIX}"]],
        "task gradient norms (shared part)": ["Multiline", [f"^{GRAD_NORM_PREFIX}"]],
        "task gradient cosines (shared part)": ["Multiline", [f"^{GRAD_COSINE_PREFIX}"]],
        "validation scores": ["Multiline", [f"^{VAL_PREFIX}(cmi_score|binary_f1|macro_f1)$"]],
    }
}
"""One multi-line chart per tag family: regexes are matched by TensorBoard against tags."""


class CMITensorBoardLogger(TensorBoardLogger):
    """Event files directly in ``save_dir``, so ``tensorboard --logdir RUN_DIR`` names runs
    after their fold directories."""

    def __init__(self, save_dir: Path, **writer_kwargs: Any) -> None:
        super().__init__(save_dir, name="", version="", default_hp_metric=False, **writer_kwargs)
        self._layout_written = False

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not self._layout_written:
            self.experiment.add_custom_scalars(LAYOUT)
            self._layout_written = True
        super().log_metrics(metrics, step)

    @rank_zero_only
    def log_hyperparams(
        self, params: Any, metrics: dict[str, Any] | None = None, step: int | None = None
    ) -> None:
        """Store ``params`` and open an hparams session whose metric is ``hparams/cmi_score``.

        The metric's value is not known yet: the run logs it as a scalar when the fold ends, and
        TensorBoard's hparams view picks the scalar up by its tag.
        """
        super().log_hyperparams(params, metrics, step)
        if metrics is None:
            from torch.utils.tensorboard.summary import hparams

            flat = {key: _primitive(value) for key, value in dict(params).items()}
            writer = self.experiment._get_file_writer()
            for summary in hparams(flat, {HPARAMS_SCORE: math.nan}):
                writer.add_summary(summary)

    @rank_zero_only
    def log_figure(self, tag: str, figure: Any, step: int) -> None:
        """Log a matplotlib figure (the run sends the validation confusion matrix here)."""
        self.experiment.add_figure(tag, figure, global_step=step, close=True)


def _primitive(value: Any) -> bool | int | float | str:
    """hparams accept only scalars and strings: lists and None become their text."""
    return value if isinstance(value, bool | int | float | str) else str(value)
