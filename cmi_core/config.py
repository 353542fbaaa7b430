"""The configuration tree: TOML -> attrs classes (cattrs), overrides, and exact errors.

Loading is two-phase. Phase 1 structures the whole file into the classes below with unknown
keys forbidden; the plugin option tables (one sub-table per plugin name under its slot's table:
``[model.<backbone>]``, ``[loss.weighting.<strategy>]``, ``[logging.<logger>]``) are set
aside. Phase 2 structures the chosen plugins' tables, and those of other installed plugins,
with each plugin's own ``config_cls``. Every problem (unknown key, wrong type, bad value) is
reported at once as ``<file or -o override>: <dotted.key>: <message>``.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import cattrs
import tomli_w
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from cmi_core.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from cmi_core.plugins import PluginManager

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


def odd_at_least(low: int) -> Check:
    """For kernel sizes: odd keeps 'same' padding symmetric."""
    return lambda value: (
        None
        if value >= low and value % 2 == 1
        else f"must be an odd number >= {low}, got {value!r}"
    )


def ordered_pair(value: Sequence[float]) -> str | None:
    if len(value) != 2:
        return f"must be [low, high], got {list(value)!r}"
    return None if value[0] < value[1] else f"low must be < high, got {list(value)!r}"


def field(default: Any, check: Check | None = None, doc: str = "", *, plugin: bool = False) -> Any:
    """An attrs field with a value check and a one-line doc (used by the docs test).

    ``plugin=True`` marks a field filled from the plugin option tables, not a key of its own.
    """
    kwargs: dict[str, Any] = {"metadata": {"check": check, "doc": doc, "plugin_tables": plugin}}
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
    demographics: bool = field(True, None, "feed the 7 demographics features to the heads")
    head_dropout: float = field(0.2, in_range(0, 0.95), "dropout in the three heads")
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
    num_nodes: int = field(1, at_least(1), "machines (torchrun --nnodes, SLURM nodes); ddp")
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

Problem = tuple[tuple[str, ...], str]
Problems = list[Problem]
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


def _problems(exc: BaseException, path: tuple[str, ...]) -> Iterable[Problem]:
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


def unknown_key_message(key: str, known: Sequence[str]) -> str:
    if not known:
        return "unknown key; this table takes no keys"
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; valid keys: {', '.join(known)}"


def structure(cls: type, data: Any) -> tuple[Any | None, Problems]:
    """Structure ``data`` into ``cls`` and run the value checks, finding every problem at once.

    cattrs stops at the first class with a bad key, so each bad key is dropped and the rest is
    structured again: value errors are then reported together with the structural ones.
    Returns ``(None, problems)`` only when nothing can be structured at all.
    """
    data = _deep_copy(data)
    problems: Problems = []
    while True:
        try:
            obj = CONVERTER.structure(data, cls)
        except (ClassValidationError, TypeError, ValueError) as exc:
            found = list(_problems(exc, ()))
            problems += found
            if not all([_drop(data, path) for path, _ in found]):
                return None, problems
            continue
        return obj, problems + list(_check_values(obj, ()))


def _drop(data: Any, path: tuple[str, ...]) -> bool:
    """Delete the table key that ``path`` points into (a list element drops the whole list)."""
    keys = list(itertools.takewhile(lambda part: not part.startswith("["), path))
    node = data
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not keys or not isinstance(node, dict) or keys[-1] not in node:
        return False
    del node[keys[-1]]
    return True


def structure_options(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Structure a plugin's option table into its ``config_cls``; ``where`` prefixes errors."""
    options, problems = structure(cls, dict(data))
    if problems:
        raise ConfigError(f"{where}: {_dotted(*path)}: {message}" for path, message in problems)
    return options


def _check_values(obj: Any, path: tuple[str, ...]) -> Iterable[Problem]:
    """Run the ``check`` of every field declared with :func:`field`, recursively.

    Plugin option fields are skipped: each is checked with its plugin's class on resolution.
    """
    for f in attrs.fields(type(obj)):
        if f.metadata.get("plugin_tables"):
            continue
        value = getattr(obj, f.name)
        check = f.metadata.get("check")
        if check is not None and value is not None and (message := check(value)):
            yield (*path, f.name), message
        if attrs.has(type(value)):
            yield from _check_values(value, (*path, f.name))


# -- plugin option tables --------------------------------------------------------------------


@attrs.frozen
class _Slot:
    """A table that names plugins (``choice``) and holds one option sub-table per plugin."""

    path: tuple[str, ...]
    kind: str
    choice: str
    cls: type

    @property
    def many(self) -> bool:
        return self.choice == "loggers"

    @property
    def core_keys(self) -> list[str]:
        return [f.name for f in attrs.fields(self.cls) if not f.metadata.get("plugin_tables")]

    def names(self, chosen: Any) -> list[str]:
        return [str(name) for name in chosen] if self.many else [str(chosen)]


SLOTS = (
    _Slot(("model",), "backbone", "backbone", ModelConfig),
    _Slot(("loss", "weighting"), "weighting", "strategy", WeightingConfig),
    _Slot(("logging",), "logger", "loggers", LoggingConfig),
)


def _table(tree: Any, path: Sequence[str]) -> Any:
    for key in path:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def _split_plugin_tables(raw: dict[str, Any], slot: _Slot) -> Problems:
    """Move a slot's plugin sub-tables into its ``tables`` field; refuse the old shapes."""
    table = _table(raw, slot.path)
    if not isinstance(table, dict):
        return []
    default = attrs.fields_dict(slot.cls)[slot.choice].default
    chosen = slot.names(table.get(slot.choice, getattr(default, "factory", lambda: default)()))
    problems: Problems = []
    tables: dict[str, Any] = {}
    for key in [key for key in table if key not in slot.core_keys]:
        value = table.pop(key)
        if key == "options" and isinstance(value, dict):
            problems += _moved_options(slot, value, chosen)
        elif isinstance(value, dict):
            tables[key] = value
        else:
            problems.append(((*slot.path, key), _flat_option_message(slot, key, chosen)))
    table["tables"] = tables
    return problems


def _option_table(slot: _Slot, chosen: Sequence[str]) -> tuple[str, ...]:
    """Where the options of the chosen plugin live now, e.g. ``("model", "squeezeformer")``."""
    return slot.path if slot.many else (*slot.path, chosen[0])


def _moved_options(slot: _Slot, options: dict[str, Any], chosen: Sequence[str]) -> Problems:
    """One line per key of an old ``options`` table, saying where that key lives now."""
    new = _option_table(slot, chosen)
    shape = _dotted(*slot.path, f"<{slot.kind} name>")
    return [
        (
            (*slot.path, "options", *rest),
            f"moved: write it as {_dotted(*new, *rest)} (option tables are now [{shape}])",
        )
        for rest in _leaves(options)
    ]


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif path:
        yield path


def _flat_option_message(slot: _Slot, key: str, chosen: Sequence[str]) -> str:
    if key in chosen:
        return f"must be a table: the options of {slot.kind} {key!r}"
    message = unknown_key_message(key, slot.core_keys)
    if slot.many or difflib.get_close_matches(key, slot.core_keys, n=1):
        return message
    new = _option_table(slot, chosen)
    return (
        f"{message}; {slot.kind} options now live in [{_dotted(*new)}]: write {_dotted(*new, key)}"
    )


def _resolve_plugins(cfg: Config, skip: frozenset[str] = frozenset()) -> tuple[Config, Problems]:
    """Phase 2: structure the chosen plugins' tables, and those of other installed plugins
    (slots whose kind is in ``skip`` stay unresolved)."""
    from cmi_core.plugins import get_plugin_manager

    manager = get_plugin_manager(cfg.plugins.modules)
    problems: Problems = []
    for slot in (s for s in SLOTS if s.kind not in skip):
        table = functools.reduce(getattr, slot.path, cfg)
        resolved = _resolve_slot(slot, table, manager, problems)
        cfg = _evolve_at(cfg, slot.path, resolved)
    return cfg, problems


def _resolve_slot(slot: _Slot, table: Any, manager: PluginManager, problems: Problems) -> Any:
    """The slot's table with the chosen plugins' options and every installed plugin's table
    structured; problems are appended to ``problems``."""
    chosen = slot.names(getattr(table, slot.choice))
    tables = dict(table.tables)
    options: dict[str, Any] = {}
    for name in dict.fromkeys([*chosen, *tables]):
        try:
            spec = manager.get(slot.kind, name)
        except PluginError as exc:
            if name in chosen:
                problems.append(((*slot.path, slot.choice), str(exc)))
            continue  # the table of a plugin that is not installed is kept as written
        if name in attrs.fields_dict(slot.cls):
            problems.append(((*slot.path, slot.choice), _clash_message(slot, name)))
            continue
        structured, found = structure(spec.config_cls, tables.get(name, {}))
        problems.extend(((*slot.path, name, *path), message) for path, message in found)
        tables[name] = structured if structured is not None else tables.get(name, {})
        if name in chosen:
            options[name] = tables[name]
    picked = options if slot.many else options.get(chosen[0], tables.get(chosen[0], {}))
    return attrs.evolve(table, options=picked, tables=tables)


def _clash_message(slot: _Slot, name: str) -> str:
    where = _dotted(*slot.path)
    return (
        f"{slot.kind} {name!r} cannot be configured: its option table [{where}.{name}] "
        f"would be the key {where}.{name} of [{where}] (the plugin must be renamed)"
    )


def tables_without_plugin(cfg: Config) -> list[str]:
    """A note for each option table whose plugin is not installed (kept, but used by nothing:
    a misspelt table name would otherwise leave the plugin on its defaults without a word)."""
    from cmi_core.plugins import get_plugin_manager

    manager = get_plugin_manager(cfg.plugins.modules)
    notes = []
    for slot in SLOTS:
        table = functools.reduce(getattr, slot.path, cfg)
        installed = manager.names(slot.kind)
        for name in sorted(set(table.tables) - set(installed)):
            close = difflib.get_close_matches(name, installed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            notes.append(
                f"[{_dotted(*slot.path, name)}]: no {slot.kind} {name!r} is installed{hint}; "
                "the table is kept as written"
            )
    return notes


def _evolve_at(obj: Any, path: Sequence[str], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    return attrs.evolve(obj, **{head: _evolve_at(getattr(obj, head), rest, value)})


def _check_data(cfg: Config) -> Iterable[Problem]:
    if cfg.data.source == "kaggle":
        if not cfg.data.dir:
            yield ("data", "dir"), 'required when data.source = "kaggle"'
        elif not Path(cfg.data.dir).is_dir():
            yield ("data", "dir"), f"directory not found: {cfg.data.dir}"
    if cfg.cv.folds is not None:
        bad = [k for k in cfg.cv.folds if not 0 <= k < cfg.cv.n_folds]
        if bad:
            yield ("cv", "folds"), f"fold indices must be in [0, {cfg.cv.n_folds - 1}], got {bad}"


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


def _origin(key: str, overrides: Sequence[str], source: str) -> str:
    """The ``-o`` that set ``key`` (or a table around or inside it), else the config file."""
    for item in reversed(overrides):
        name = item.partition("=")[0].strip()
        if key == name or key.startswith((f"{name}.", f"{name}[")) or name.startswith(f"{key}."):
            return f"-o {item}"
    return source


def _validate(
    raw: dict[str, Any], resolve_weighting: bool = True
) -> tuple[Config | None, Problems]:
    """Every problem of a raw config: old table shapes, structure, plugin options, values."""
    raw = _deep_copy(raw)
    problems = [problem for slot in SLOTS for problem in _split_plugin_tables(raw, slot)]
    cfg, found = structure(Config, raw)
    problems += found
    if cfg is None:
        return None, problems
    skip = frozenset() if resolve_weighting else frozenset({"weighting"})
    cfg, found = _resolve_plugins(cfg, skip)
    return cfg, [*problems, *found, *_check_data(cfg)]


def config_from_dict(
    raw: dict[str, Any],
    source: str = "<config>",
    overrides: Sequence[str] = (),
    *,
    resolve_weighting: bool = True,
) -> Config:
    """Structure, resolve plugin options and check values; all problems in one ConfigError.

    A problem with a key that one of ``overrides`` set names that ``-o`` instead of ``source``.
    ``resolve_weighting=False`` leaves the weighting strategy unresolved (its options plain
    tables): prediction never uses the weighting, so its plugin need not be installed.
    """
    cfg, problems = _validate(raw, resolve_weighting)
    if problems or cfg is None:
        raise ConfigError(
            f"{_origin(_dotted(*path), overrides, source)}: {_dotted(*path)}: {message}"
            for path, message in problems
        )
    return cfg


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> Config:
    """Read, override, structure and validate a config file."""
    path = Path(path)
    raw = read_toml(path)
    malformed = apply_overrides(raw, overrides)
    try:
        cfg = config_from_dict(raw, str(path), overrides)
    except ConfigError as exc:
        raise ConfigError([*malformed, *exc.problems]) from None
    if malformed:
        raise ConfigError(malformed)
    return cfg


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: _deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_deep_copy(v) for v in raw]
    return raw


# -- writing ---------------------------------------------------------------------------------


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data: every plugin table under its slot, ``None`` dropped."""
    data = CONVERTER.unstructure(cfg)
    for slot in SLOTS:
        table = _table(data, slot.path)
        options = table.pop("options")
        table.update(table.pop("tables"))
        chosen = slot.names(table[slot.choice])
        table.update(options if slot.many else {chosen[0]: options})
    return _drop_none(data)


def config_to_toml(cfg: Config) -> str:
    return tomli_w.dumps(config_to_dict(cfg))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
