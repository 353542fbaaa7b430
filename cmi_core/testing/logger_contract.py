"""The contract every logger plugin must meet: a Lightning logger that writes under save_dir."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cmi_core.builders import build_logger
from cmi_core.rundir.layout import fold_dir
from cmi_core.testing.plugin_contract import PluginContract

# What a run logs: flat scalar tags (docs/running.md) and the resolved config as nested tables.
METRICS = {"loss/total": 1.25, "loss/multiclass": 2.0, "weights/multiclass": 0.5, "lr": 1e-3}
HYPERPARAMS = {"name": "exp025", "loss": {"alpha": 0.5, "weighting": {"strategy": "none"}}}


class LoggerContract(PluginContract):
    """Checks of a logger plugin; override the ``plugin_name`` fixture."""

    kind = "logger"

    @pytest.fixture
    def save_dir(self, tmp_path: Path) -> Path:
        return fold_dir(tmp_path, 0)

    @pytest.fixture
    def logger(
        self,
        plugin_name: str,
        plugin_options: dict[str, Any],
        plugin_modules: Sequence[str],
        save_dir: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Any:
        """The logger, built while the working directory is an empty folder beside save_dir."""
        elsewhere = tmp_path / "cwd"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        return build_logger(plugin_name, save_dir, plugin_options, plugin_modules)

    def test_is_a_lightning_logger(self, logger: Any) -> None:
        from pytorch_lightning.loggers import Logger

        assert isinstance(logger, Logger), (
            f"the factory returned a {type(logger).__name__}: a logger plugin must build a "
            "pytorch_lightning Logger"
        )

    def test_writes_metrics_and_hyperparameters_only_under_save_dir(
        self, logger: Any, save_dir: Path, tmp_path: Path
    ) -> None:
        logger.log_hyperparams(HYPERPARAMS)
        for step in range(3):
            logger.log_metrics({**METRICS, "step_metric": float(step)}, step=step)
        logger.log_metrics({"val/cmi_score": 0.75}, step=2)
        logger.save()
        logger.finalize("success")
        written = [p for p in save_dir.rglob("*") if p.is_file()]
        assert written, f"nothing written under {save_dir}: a logger must write its files there"
        stray = [p for p in (tmp_path / "cwd").rglob("*")]
        assert not stray, f"files written outside save_dir: {stray}; write under save_dir only"
        log_dir = getattr(logger, "log_dir", None)
        if log_dir is not None:
            assert Path(log_dir).resolve().is_relative_to(save_dir.resolve()), (
                f"log_dir {log_dir} is outside save_dir {save_dir}: it must lie under save_dir"
            )
