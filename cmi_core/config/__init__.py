"""The configuration: TOML -> attrs classes (cattrs), overrides, and exact errors.

Loading is two-phase. Phase 1 structures the whole file into the classes of
:mod:`cmi_core.config.tree` with unknown keys forbidden; the plugin option tables are set
aside (:mod:`cmi_core.config.plugin_tables`). Phase 2 structures the chosen plugins' tables,
and those of other installed plugins, with each plugin's own ``config_cls``. Every problem
(unknown key, wrong type, bad value) is reported at once as
``<file or -o override>: <dotted.key>: <message>`` (:mod:`cmi_core.config.structure`).
"""

from cmi_core.config.files import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    load_config,
    read_toml,
)
from cmi_core.config.plugin_tables import SLOTS, tables_without_plugin
from cmi_core.config.structure import CONVERTER, structure, structure_options
from cmi_core.config.tree import (
    OPTIMIZERS,
    AugmentConfig,
    Config,
    CVConfig,
    DataConfig,
    FeatureConfig,
    LoggingConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    PluginsConfig,
    SyntheticConfig,
    TrainerConfig,
    WeightingConfig,
)

__all__ = [
    "CONVERTER",
    "OPTIMIZERS",
    "SLOTS",
    "AugmentConfig",
    "CVConfig",
    "Config",
    "DataConfig",
    "FeatureConfig",
    "LoggingConfig",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "PluginsConfig",
    "SyntheticConfig",
    "TrainerConfig",
    "WeightingConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "load_config",
    "read_toml",
    "structure",
    "structure_options",
    "tables_without_plugin",
]
