"""The attrs tree of a config: one frozen class per TOML table, each key with its check and doc."""

from __future__ import annotations

from typing import Any

import attrs

from cmi_core.config.lightning_values import (
    PRECISIONS,
    STRATEGIES,
    batch_limit,
    devices_problem,
)
from cmi_core.options import (
    at_least,
    field,
    in_range,
    non_negative,
    one_of,
    ordered_pair,
    positive,
    seed_range,
)


@attrs.frozen
class SyntheticConfig:
    subjects: int = field(24, at_least(2), "number of synthetic subjects (~102 sequences each)")
    seed: int = field(0, seed_range, "seed of the synthetic generator")


@attrs.frozen
class FeatureConfig:
    thm_tof: bool = field(False, None, "add thermopile/ToF summary channels + presence flag")
    tof_images: bool = field(
        False, None, "add the 5 ToF 8x8 images per frame (needs thm_tof) for the image branch"
    )
    mirror_left_handed: bool = field(True, None, "mirror left-handed subjects to the right hand")
    downsample: int = field(
        1, at_least(1), "average each run of this many frames into one (1: every frame)"
    )


@attrs.frozen
class AugmentConfig:
    noise_std: float = field(0.01, non_negative, "std of Gaussian noise added to features")
    noise_p: float = field(0.3, in_range(0, 1), "probability of adding noise")
    stretch_p: float = field(0.3, in_range(0, 1), "probability of a time stretch")
    stretch_range: list[float] = field([0.9, 1.1], ordered_pair, "time-stretch factor range")
    mask_p: float = field(0.2, in_range(0, 1), "probability of masking a span of frames")
    mask_max_len: int = field(20, at_least(1), "longest masked span, in frames")
    mixup_alpha: float = field(0.0, non_negative, "mixup Beta(alpha, alpha); 0 disables")
    drop_thm_tof_p: float = field(0.0, in_range(0, 1), "probability of hiding thm/ToF (IMU-only)")
    mirror_p: float = field(0.0, in_range(0, 1), "probability of mirroring to the other hand")


@attrs.frozen
class DataConfig:
    source: str = field("synthetic", one_of("synthetic", "kaggle"), "synthetic or kaggle")
    dir: str | None = field(None, None, "Kaggle data directory (train.csv, ...) for kaggle")
    cache_dir: str = field(".cache/cmi", None, "where synthetic data and parsed caches live")
    synthetic: SyntheticConfig = field(SyntheticConfig)
    max_len: int = field(128, at_least(8), "frames per sequence after padding/truncation")
    features: FeatureConfig = field(FeatureConfig)
    augment: AugmentConfig = field(AugmentConfig)


@attrs.frozen
class CVConfig:
    n_folds: int = field(5, at_least(2), "number of subject-grouped folds")
    seed: int = field(42, seed_range, "seed of the fold assignment")
    folds: list[int] | None = field(None, None, "folds to train (default: all)")


@attrs.frozen
class ModelConfig:
    backbone: str = field("squeezeformer", None, "backbone plugin name")
    demographics: bool = field(True, None, "feed the 7 demographics features to the heads")
    head_dropout: float = field(0.2, in_range(0, 0.95), "dropout in the three heads")
    tof_embed_dim: int = field(
        16, at_least(1), "per-frame embedding of the ToF image branch (data.features.tof_images)"
    )
    options: Any = field({}, None, "options of the chosen backbone", plugin=True)
    tables: dict[str, Any] = field({}, None, "[model.<name>] tables", plugin=True)


@attrs.frozen
class WeightingConfig:
    strategy: str = field("none", None, "weighting plugin name")
    lr_scale: float = field(0.1, positive, "learning-rate factor of the learnable weights")
    monitor_gradients: bool = field(
        False, None, "log grad/norm and grad/cosine of the task gradients (loss-level strategies)"
    )
    options: Any = field({}, None, "options of the chosen strategy", plugin=True)
    tables: dict[str, Any] = field({}, None, "[loss.weighting.<name>] tables", plugin=True)


@attrs.frozen
class TasksConfig:
    names: list[str] | None = field(
        None, None, "task plugin names; unset: exp025's terms, from the keys of [loss]"
    )
    options: dict[str, Any] = field({}, None, "options of each chosen task", plugin=True)
    tables: dict[str, Any] = field({}, None, "[loss.tasks.<name>] tables", plugin=True)


@attrs.frozen
class LossConfig:
    alpha: float = field(0.5, in_range(0, 1), "alpha*L18 + (1-alpha)*Lbin")
    nine_class_loss_weight: float = field(0.2, non_negative, "w9, weight of the 9-class loss")
    kl_weight: float = field(0.1, non_negative, "wkl, weight of the KL term; 0 disables it")
    nine_class_head_enabled: bool = field(True, None, "build the 9-class head and its loss")
    label_smoothing: float = field(0.1, in_range(0, 0.99), "label smoothing of both CE losses")
    kl_temperature: float = field(1.0, positive, "temperature of both softmaxes in the KL term")
    weighting: WeightingConfig = field(WeightingConfig)
    tasks: TasksConfig = field(TasksConfig)


OPTIMIZERS = ("adamw", "schedulefree_adamw", "schedulefree_radam", "schedulefree_sgd")


@attrs.frozen
class OptimizerConfig:
    name: str = field("adamw", one_of(*OPTIMIZERS), "optimizer")
    lr: float = field(1e-3, positive, "base learning rate")
    weight_decay: float = field(1e-5, non_negative, "weight decay (not on learnable weights)")
    betas: list[float] = field([0.9, 0.999], None, "Adam betas")
    momentum: float = field(0.9, in_range(0, 1), "momentum of schedulefree_sgd")
    scheduler: str = field("cosine", one_of("cosine", "none"), "LR schedule (AdamW only)")
    warmup_steps: int = field(0, non_negative, "linear warm-up steps")
    min_lr: float = field(1e-6, non_negative, "final learning rate of the cosine schedule")


@attrs.frozen
class TrainerConfig:
    max_epochs: int = field(20, at_least(1), "epochs per fold")
    batch_size: int = field(64, at_least(1), "sequences per batch")
    accelerator: str = field("auto", one_of("auto", "cpu", "gpu", "cuda", "mps"), "device")
    devices: Any = field("auto", devices_problem, "devices per node (int, list or 'auto')")
    num_nodes: int = field(1, at_least(1), "machines (torchrun --nnodes, SLURM nodes); ddp")
    strategy: str = field(
        "auto", one_of(*STRATEGIES), "Lightning strategy: auto, ddp, ... (not ddp_spawn)"
    )
    precision: str = field(
        "32-true", one_of(*PRECISIONS), "Lightning precision, e.g. 16-mixed on a GPU"
    )
    gradient_clip_val: float = field(0.5, non_negative, "gradient norm clip; 0 disables")
    early_stopping_patience: int = field(15, at_least(1), "epochs without improvement")
    early_stopping_min_delta: float = field(0.001, non_negative, "improvement threshold")
    seed: int = field(42, seed_range, "global seed")
    num_workers: int = field(0, non_negative, "DataLoader worker processes")
    threads: int = field(0, non_negative, "torch CPU threads; 0 keeps torch's default")
    jobs: int = field(0, non_negative, "folds trained at once (cmi run); 0: cores // threads")
    limit_train_batches: float = field(1.0, batch_limit, "fraction (<=1) or count of batches")
    limit_val_batches: float = field(1.0, batch_limit, "fraction (<=1) or count of batches")
    deterministic: Any = field(
        "warn",
        lambda v: (
            None if v is True or v is False or v == "warn" else "must be true, false or 'warn'"
        ),
        "deterministic kernels: true (error on others), 'warn', false (fastest)",
    )


@attrs.frozen
class LoggingConfig:
    loggers: list[str] = field(["tensorboard"], None, "logger plugin names")
    log_every_n_steps: int = field(10, at_least(1), "training-step logging interval")
    options: dict[str, Any] = field({}, None, "options of each chosen logger", plugin=True)
    tables: dict[str, Any] = field({}, None, "[logging.<name>] tables", plugin=True)


@attrs.frozen
class PluginsConfig:
    modules: list[str] = field([], None, "local modules to register as plugins")


@attrs.frozen
class Config:
    name: str = field("experiment", None, "experiment name")
    data: DataConfig = field(DataConfig)
    cv: CVConfig = field(CVConfig)
    model: ModelConfig = field(ModelConfig)
    loss: LossConfig = field(LossConfig)
    optimizer: OptimizerConfig = field(OptimizerConfig)
    trainer: TrainerConfig = field(TrainerConfig)
    logging: LoggingConfig = field(LoggingConfig)
    plugins: PluginsConfig = field(PluginsConfig)


# -- structuring -----------------------------------------------------------------------------
