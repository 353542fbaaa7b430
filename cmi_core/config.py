"""The configuration tree: TOML -> attrs classes (cattrs), overrides, and exact errors.

Loading is two-phase. Phase 1 structures the whole file into the classes below with unknown
keys forbidden; plugin option tables (``[model.options]``, ``[loss.weighting]`` extras,
``[logging.options.<name>]``) stay plain dicts. Phase 2 looks each chosen plugin up and
structures its table with the plugin's own ``config_cls``, and runs the value checks declared
in field metadata. Every problem is reported at once as ``<file>: <dotted.key>: <message>``.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs
import tomli_w
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from cmi_core.errors import ConfigError

Check = Callable[[Any], str | None]


# -- value checks (each returns an error message or None) ------------------------------------


def positive(value: Any) -> str | None:
    return None if value > 0 else f"must be > 0, got {value!r}"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value!r}"


def at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be >= {low}, got {value!r}"


def in_range(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be in [{low}, {high}], got {value!r}"

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown value {value!r}{hint}; expected one of: {', '.join(choices)}"

    return check


def ordered_pair(value: Sequence[float]) -> str | None:
    if len(value) != 2:
        return f"must be [low, high], got {list(value)!r}"
    return None if value[0] < value[1] else f"low must be < high, got {list(value)!r}"


def field(default: Any, check: Check | None = None, doc: str = "") -> Any:
    """An attrs field with a value check and a one-line doc (used by the docs test)."""
    kwargs: dict[str, Any] = {"metadata": {"check": check, "doc": doc}}
    if isinstance(default, list | dict):
        kwargs["factory"] = lambda d=default: type(d)(d)
    elif attrs.has(default):
        kwargs["factory"] = default
    else:
        kwargs["default"] = default
    return attrs.field(**kwargs)


# -- the tree --------------------------------------------------------------------------------


@attrs.frozen
class SyntheticConfig:
    subjects: int = field(24, at_least(2), "number of synthetic subjects (~102 sequences each)")
    seed: int = field(0, None, "seed of the synthetic generator")


@attrs.frozen
class FeatureConfig:
    thm_tof: bool = field(False, None, "add thermopile/ToF summary channels + presence flag")
    mirror_left_handed: bool = field(True, None, "mirror left-handed subjects to the right hand")


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
    seed: int = field(42, None, "seed of the fold assignment")
    folds: list[int] | None = field(None, None, "folds to train (default: all)")


@attrs.frozen
class ModelConfig:
    backbone: str = field("squeezeformer", None, "backbone plugin name")
    options: Any = field({}, None, "backbone options (the plugin's own table)")
    demographics: bool = field(True, None, "feed the 7 demographics features to the heads")
    head_dropout: float = field(0.2, in_range(0, 0.95), "dropout in the three heads")


@attrs.frozen
class WeightingConfig:
    strategy: str = field("none", None, "weighting plugin name")
    lr_scale: float = field(0.1, positive, "learning-rate factor of the learnable weights")
    options: Any = field({}, None, "the strategy's own options (other keys of this table)")


@attrs.frozen
class LossConfig:
    alpha: float = field(0.5, in_range(0, 1), "alpha*L18 + (1-alpha)*Lbin")
    nine_class_loss_weight: float = field(0.2, non_negative, "w9, weight of the 9-class loss")
    kl_weight: float = field(0.1, non_negative, "wkl, weight of the KL term; 0 disables it")
    nine_class_head_enabled: bool = field(True, None, "build the 9-class head and its loss")
    label_smoothing: float = field(0.1, in_range(0, 0.99), "label smoothing of both CE losses")
    kl_temperature: float = field(1.0, positive, "temperature of both softmaxes in the KL term")
    weighting: WeightingConfig = field(WeightingConfig)


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
    devices: Any = field("auto", None, "devices per node (int, list or 'auto')")
    strategy: str = field("auto", None, "Lightning strategy: auto, ddp, ddp_spawn, ...")
    precision: str = field("32-true", None, "Lightning precision, e.g. 16-mixed on a GPU")
    gradient_clip_val: float = field(0.5, non_negative, "gradient norm clip; 0 disables")
    early_stopping_patience: int = field(15, at_least(1), "epochs without improvement")
    early_stopping_min_delta: float = field(0.001, non_negative, "improvement threshold")
    seed: int = field(42, None, "global seed")
    num_workers: int = field(0, non_negative, "DataLoader worker processes")
    threads: int = field(0, non_negative, "torch CPU threads; 0 keeps torch's default")
    jobs: int = field(0, non_negative, "folds trained at once (cmi run); 0: cores // threads")
    limit_train_batches: float = field(1.0, positive, "fraction (<=1) or count of batches")
    limit_val_batches: float = field(1.0, positive, "fraction (<=1) or count of batches")


@attrs.frozen
class LoggingConfig:
    loggers: list[str] = field(["tensorboard"], None, "logger plugin names")
    log_every_n_steps: int = field(10, at_least(1), "training-step logging interval")
    options: dict[str, Any] = field({}, None, "per-logger option tables")


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

_PLUGIN_TABLES = {("loss", "weighting"): ("strategy", "lr_scale")}  # keys that are not options
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _strict(kind: type) -> Callable[[Any, type], Any]:
    """TOML values are typed: refuse coercions like "3" -> 3, 3.7 -> 3 or "false" -> True."""
    accepted = (int, float) if kind is float else (kind,)

    def structure(value: Any, _: type) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accepted):
            raise TypeError(f"expected {_TYPE_NAMES[kind]}, got {value!r}")
        return kind(value)

    return structure


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in _TYPE_NAMES:
        converter.register_structure_hook(kind, _strict(kind))
    return converter


CONVERTER = _converter()


def _problems(exc: BaseException, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], str]]:
    """Flatten a cattrs exception group into ``(key path, message)`` pairs."""
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)]
        for key in sorted(exc.extra_fields):
            yield (*path, key), unknown_key_message(key, known)
        return
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for sub in exc.exceptions:
            yield from _problems(sub, (*path, *_note_path(sub)))
        return
    yield path, str(exc)


def _note_path(exc: BaseException) -> tuple[str, ...]:
    for note in getattr(exc, "__notes__", ()):
        if hasattr(note, "name"):
            return (note.name,)
        if hasattr(note, "index"):
            return (f"[{note.index}]",)
    return ()


def _dotted(*parts: str) -> str:
    """``("loss", "weighting", "clamp")`` -> ``loss.weighting.clamp``; list indices as ``[i]``."""
    return ".".join(p for p in parts if p).replace(".[", "[") or "<top level>"


def _lines(source: str, prefix: str, problems: Iterable[tuple[tuple[str, ...], str]]) -> list[str]:
    return [f"{source}: {_dotted(prefix, *path)}: {message}" for path, message in problems]


def unknown_key_message(key: str, known: Sequence[str]) -> str:
    if not known:
        return "unknown key; this table takes no keys"
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; valid keys: {', '.join(known)}"


def structure_options(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Structure a plugin's option table into its ``config_cls``; ``where`` prefixes errors."""
    try:
        options = CONVERTER.structure(dict(data), cls)
    except (ClassValidationError, TypeError, ValueError) as exc:
        raise ConfigError(_lines(where, "", _problems(exc, ()))) from exc
    problems = list(_check_values(options, ()))
    if problems:
        raise ConfigError(_lines(where, "", problems))
    return options


Problems = list[tuple[tuple[str, ...], str]]


def _check_values(obj: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], str]]:
    """Run the ``check`` of every field declared with :func:`field`, recursively."""
    for f in attrs.fields(type(obj)):
        value = getattr(obj, f.name)
        check = f.metadata.get("check")
        if check is not None and value is not None and (message := check(value)):
            yield (*path, f.name), message
        if attrs.has(type(value)):
            # the options of a mixed table are written in the table itself
            inline = f.name == "options" and path in _PLUGIN_TABLES
            yield from _check_values(value, path if inline else (*path, f.name))


# -- loading ---------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing file or a syntax error is one ``ConfigError`` line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    """Set ``dotted.key=value`` pairs in ``raw``; returns problems with malformed overrides.

    Values are parsed as TOML (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``); anything that is
    not valid TOML is taken as a plain string, so ``-o loss.weighting.strategy=direct`` works.
    """
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"-o {item}: expected KEY=VALUE, e.g. trainer.max_epochs=3")
            continue
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        *parents, leaf = key.strip().split(".")
        table = raw
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                problems.append(f"-o {item}: {part} is not a table")
                break
        else:
            table[leaf] = value
    return problems


def _split_plugin_tables(raw: dict[str, Any]) -> None:
    """Move the option keys of mixed tables (``[loss.weighting]``) into their ``options``."""
    for (section, table), core_keys in _PLUGIN_TABLES.items():
        mixed = raw.get(section, {}).get(table)
        if isinstance(mixed, dict):
            options = {k: mixed.pop(k) for k in list(mixed) if k not in (*core_keys, "options")}
            mixed.setdefault("options", {}).update(options)


def _resolve_plugins(cfg: Config) -> tuple[Config, Problems]:
    """Phase 2: look the chosen plugins up and structure their option tables."""
    from cmi_core.errors import PluginError
    from cmi_core.plugins import get_plugin_manager

    manager = get_plugin_manager(cfg.plugins.modules)
    problems: Problems = []

    def resolve(kind: str, name: str, options: Any, key: str, name_key: str) -> Any:
        try:
            spec = manager.get(kind, name)
        except PluginError as exc:
            problems.append(((name_key,), str(exc)))
            return options
        try:
            return CONVERTER.structure(dict(options or {}), spec.config_cls)
        except (ClassValidationError, TypeError, ValueError) as exc:
            problems.extend(_problems(exc, (key,)))
            return options

    model = attrs.evolve(
        cfg.model,
        options=resolve(
            "backbone", cfg.model.backbone, cfg.model.options, "model.options", "model.backbone"
        ),
    )
    weighting = cfg.loss.weighting
    weighting = attrs.evolve(
        weighting,
        options=resolve(
            "weighting",
            weighting.strategy,
            weighting.options,
            "loss.weighting",
            "loss.weighting.strategy",
        ),
    )
    logger_options = {
        name: resolve(
            "logger",
            name,
            cfg.logging.options.get(name, {}),
            f"logging.options.{name}",
            "logging.loggers",
        )
        for name in cfg.logging.loggers
    }
    problems.extend(
        (("logging.options", name), f"options for logger {name!r}, which is not in loggers")
        for name in cfg.logging.options
        if name not in cfg.logging.loggers
    )
    cfg = attrs.evolve(
        cfg,
        model=model,
        loss=attrs.evolve(cfg.loss, weighting=weighting),
        logging=attrs.evolve(cfg.logging, options=logger_options),
    )
    return cfg, problems


def _check_data(cfg: Config) -> Iterable[tuple[tuple[str, ...], str]]:
    if cfg.data.source == "kaggle":
        if not cfg.data.dir:
            yield ("data.dir",), 'required when data.source = "kaggle"'
        elif not Path(cfg.data.dir).is_dir():
            yield ("data.dir",), f"directory not found: {cfg.data.dir}"
    if cfg.cv.folds is not None:
        bad = [k for k in cfg.cv.folds if not 0 <= k < cfg.cv.n_folds]
        if bad:
            yield ("cv.folds",), f"fold indices must be in [0, {cfg.cv.n_folds - 1}], got {bad}"


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Structure, resolve plugin options and check values; all problems in one ConfigError."""
    raw = _deep_copy(raw)
    _split_plugin_tables(raw)
    try:
        cfg = CONVERTER.structure(raw, Config)
    except ClassValidationError as exc:
        raise ConfigError(_lines(source, "", _problems(exc, ()))) from None
    cfg, problems = _resolve_plugins(cfg)
    problems += [*_check_values(cfg, ()), *_check_data(cfg)]
    if problems:
        raise ConfigError(_lines(source, "", problems))
    return cfg


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> Config:
    """Read, override, structure and validate a config file."""
    path = Path(path)
    raw = read_toml(path)
    problems = apply_overrides(raw, overrides)
    if problems:
        raise ConfigError(f"{path}: {p}" for p in problems)
    return config_from_dict(raw, str(path))


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: _deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_deep_copy(v) for v in raw]
    return raw


# -- writing ---------------------------------------------------------------------------------


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data; plugin options are inlined, ``None`` values dropped."""
    data = _drop_none(CONVERTER.unstructure(cfg))
    weighting = data["loss"]["weighting"]
    weighting.update(weighting.pop("options", {}))
    return data


def config_to_toml(cfg: Config) -> str:
    return tomli_w.dumps(config_to_dict(cfg))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
