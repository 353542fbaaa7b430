"""cmi-trainer core: the public API that plugins and users import.

Light names (``hookimpl``, the spec records, errors) are imported eagerly; names that need
torch are resolved on first access, so ``cmi --help`` and ``cmi plugins`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from cmi_core import tags  # log tag names: plugins import them from here (docs/running.md)
from cmi_core.errors import CmiError, ConfigError, DataError, PluginError, RunError
from cmi_core.hookspecs import hookimpl, registering
from cmi_core.specs import (
    BackboneSpec,
    LoggerSpec,
    PluginSpec,
    PostprocessorSpec,
    TaskSpec,
    WeightingSpec,
)

if TYPE_CHECKING:  # editors and type checkers see the lazily loaded names too
    from cmi_core.aggregators import Projected, aggregator_strategy, quadprog_projector
    from cmi_core.backbone import Backbone
    from cmi_core.builders import build_backbone, build_logger, build_task, build_weighting
    from cmi_core.data.schema import (
        BEHAVIORS,
        COMPOSITE_CLASSES,
        GESTURE_TO_NINE,
        GESTURES,
        NINE_CLASSES,
        ORIENTATIONS,
        PHASES,
    )
    from cmi_core.gradient_options import GradientOptions, ProjectorOptions, require_modules
    from cmi_core.options import (
        at_least,
        field,
        in_range,
        non_negative,
        odd_at_least,
        one_of,
        ordered_pair,
        positive,
    )
    from cmi_core.task import (
        ClassificationTask,
        FrameClassificationTask,
        Task,
        TaskContext,
        TaskOptions,
        aggregation_matrix,
        head_mlp,
        kl_consistency,
        masked_cross_entropy,
        masked_frame_cross_entropy,
        mixed_loss,
    )
    from cmi_core.weighting import (
        TERMS,
        AggregatorWeighting,
        FixedWeights,
        GradientUpdate,
        GradientWeighting,
        LossWeighting,
        weighted_sum,
    )

try:
    __version__ = version("cmi-trainer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_LAZY = {
    "LossWeighting": "cmi_core.weighting",
    "FixedWeights": "cmi_core.weighting",
    "TERMS": "cmi_core.weighting",
    "weighted_sum": "cmi_core.weighting",
    "GradientWeighting": "cmi_core.weighting",
    "AggregatorWeighting": "cmi_core.weighting",
    "GradientUpdate": "cmi_core.weighting",
    "GradientOptions": "cmi_core.gradient_options",
    "ProjectorOptions": "cmi_core.gradient_options",
    "require_modules": "cmi_core.gradient_options",
    "aggregator_strategy": "cmi_core.aggregators",
    "Projected": "cmi_core.aggregators",
    "quadprog_projector": "cmi_core.aggregators",
    "Backbone": "cmi_core.backbone",
    "Task": "cmi_core.task",
    "ClassificationTask": "cmi_core.task",
    "FrameClassificationTask": "cmi_core.task",
    "TaskContext": "cmi_core.task",
    "TaskOptions": "cmi_core.options",
    "head_mlp": "cmi_core.task",
    "mixed_loss": "cmi_core.task",
    "masked_cross_entropy": "cmi_core.task",
    "masked_frame_cross_entropy": "cmi_core.task",
    "aggregation_matrix": "cmi_core.task",
    "kl_consistency": "cmi_core.task",
    # label names and maps, for tasks (built from the gesture names: docs/writing-a-plugin.md)
    "GESTURES": "cmi_core.data.schema",
    "NINE_CLASSES": "cmi_core.data.schema",
    "GESTURE_TO_NINE": "cmi_core.data.schema",
    "ORIENTATIONS": "cmi_core.data.schema",
    "PHASES": "cmi_core.data.schema",
    "BEHAVIORS": "cmi_core.data.schema",
    "COMPOSITE_CLASSES": "cmi_core.data.schema",
    "build_weighting": "cmi_core.builders",
    "build_backbone": "cmi_core.builders",
    "build_logger": "cmi_core.builders",
    "build_task": "cmi_core.builders",
    # plugin option classes declare value checks like the core config does
    "field": "cmi_core.options",
    "positive": "cmi_core.options",
    "non_negative": "cmi_core.options",
    "at_least": "cmi_core.options",
    "in_range": "cmi_core.options",
    "one_of": "cmi_core.options",
    "odd_at_least": "cmi_core.options",
    "ordered_pair": "cmi_core.options",
}

__all__ = [  # static, so linters and editors see every public name
    "BEHAVIORS",
    "COMPOSITE_CLASSES",
    "GESTURES",
    "GESTURE_TO_NINE",
    "NINE_CLASSES",
    "ORIENTATIONS",
    "PHASES",
    "TERMS",
    "AggregatorWeighting",
    "Backbone",
    "BackboneSpec",
    "ClassificationTask",
    "CmiError",
    "ConfigError",
    "DataError",
    "FixedWeights",
    "FrameClassificationTask",
    "GradientOptions",
    "GradientUpdate",
    "GradientWeighting",
    "LoggerSpec",
    "LossWeighting",
    "PluginError",
    "PluginSpec",
    "PostprocessorSpec",
    "Projected",
    "ProjectorOptions",
    "RunError",
    "Task",
    "TaskContext",
    "TaskOptions",
    "TaskSpec",
    "WeightingSpec",
    "__version__",
    "aggregation_matrix",
    "aggregator_strategy",
    "at_least",
    "build_backbone",
    "build_logger",
    "build_task",
    "build_weighting",
    "field",
    "head_mlp",
    "hookimpl",
    "in_range",
    "kl_consistency",
    "masked_cross_entropy",
    "masked_frame_cross_entropy",
    "mixed_loss",
    "non_negative",
    "odd_at_least",
    "one_of",
    "ordered_pair",
    "positive",
    "quadprog_projector",
    "registering",
    "require_modules",
    "tags",
    "weighted_sum",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cmi_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily loaded public names too, for ``dir(cmi_core)`` and editors' completion."""
    return sorted({*globals(), *__all__})
