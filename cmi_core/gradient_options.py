"""Options every gradient-level strategy shares, and its optional-dependency check.

Kept free of torch so that ``cmi check`` and ``cmi plugins`` stay fast: a plugin's options class
subclasses :class:`GradientOptions`, and a check that fails here is a one-line config error at
load time, never a failure mid-training.
"""

from __future__ import annotations

import importlib.util
from typing import ClassVar

import attrs

from cmi_core.options import field, one_of, positive


@attrs.frozen
class GradientOptions:
    """``where``: the shared part the per-task gradients are taken on."""

    #: read by ``WeightingSpec``: a strategy with these options is gradient-level
    strategy_level: ClassVar[str] = "gradient"

    where: str = field(
        "representation",
        one_of("representation", "parameters"),
        "representation: the heads' input (cheap); parameters: backbone + demographics MLP",
    )


@attrs.frozen
class ProjectorOptions(GradientOptions):
    """The quadratic-program options of the dual-cone projection (``upgrad``, ``dualproj``)."""

    norm_eps: float = field(0.0001, positive, "added to the gradients' norms before normalising")
    reg_eps: float = field(
        0.0001, positive, "added to the Gramian's diagonal so the QP stays solvable"
    )


def require_modules(strategy: str, *modules: str, extra: str = "mtl") -> None:
    """Raise ``ValueError`` naming the install command when an optional module is missing.

    Call it from an options class's ``__attrs_post_init__``: the config loader reports the
    error against ``loss.weighting``, before anything is built.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"strategy {strategy!r} needs {', '.join(missing)}: pip install 'cmi-trainer[{extra}]'"
        )
