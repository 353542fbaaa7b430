"""The ``famo`` weighting: fast adaptive multitask optimization (Liu et al., NeurIPS 2023).

Task weights ``z = softmax(xi)`` over learnable logits ``xi``. The model descends
``total = c * sum_i z_i ln L_i`` with ``c = 1 / sum_i (z_i / L_i)`` held constant, i.e. the
gradient ``c * sum_i (z_i / L_i) grad L_i``. After every optimizer step the logits take their
own step on ``delta_i = ln L_i(before the step) - ln L_i(after)``:
``xi <- xi - logit_lr * (J_softmax(xi)^T delta + decay * xi)`` (``logit_optimizer = "sgd"``,
the paper's Algorithm 1) or the same gradient through Adam (``"adam"``, the default, as the
official implementation). By default the ``kl`` term stays out of the balance and is added
as ``wkl * Lkl``: a consistency term whose loss falls toward 0 would otherwise take almost all
of the gradient. Here ``L_i(after)`` is the next training batch's loss, not the same
batch re-evaluated (which would cost an extra forward pass): see docs/weighting.md.
This module only declares the plugin; torch is imported when a strategy is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

import cmi_core
from cmi_core import field, in_range, one_of
from cmi_core.specs import WeightingSpec

if TYPE_CHECKING:
    from cmi_core.weighting import FixedWeights, LossWeighting

OPTIMIZERS = ("adam", "sgd")


@attrs.frozen
class FAMOOptions:
    """Options of ``[loss.weighting]`` for ``strategy = "famo"``."""

    logit_lr: float = field(0.025, in_range(1e-6, 10.0), "learning rate beta of the logits")
    decay: float = field(0.01, in_range(0.0, 10.0), "decay gamma pulling the logits toward 0")
    logit_optimizer: str = field(
        "adam", one_of(*OPTIMIZERS), "adam (official code) or sgd (the paper's Algorithm 1)"
    )
    kl_fixed: bool = field(True, None, "add kl as wkl * Lkl outside the balanced terms")


def make_weighting(
    terms: tuple[str, ...], fixed: FixedWeights, options: FAMOOptions
) -> LossWeighting:
    from cmi_weighting_famo.strategy import FAMOWeighting

    adam = options.logit_optimizer == "adam"
    return FAMOWeighting(terms, fixed, options.logit_lr, options.decay, adam, options.kl_fixed)


cmi_register_weightings = cmi_core.registering(
    WeightingSpec(
        name="famo",
        summary="FAMO (Liu et al. 2023): softmax task weights updated from log-loss decrease",
        factory=make_weighting,
        config_cls=FAMOOptions,
    )
)
