"""Every tag name a run logs, in one place that the core, plugins and reports all import.

The tags are flat strings (never dict-valued), listed for users in docs/running.md:
``loss/<term>`` (raw), ``loss/total``, ``weights/<term>`` (effective weight),
``weighting/<param>`` (raw learnable value), ``lr``; per training epoch ``train/<tag>``; per
validation epoch ``val/loss/<term>``, ``val/loss/total``, ``val/cmi_score``, ``val/binary_f1``,
``val/macro_f1``, ``val/task/<task>/<metric>``; ``hparams/cmi_score`` once per fold; on
logging steps of gradient-level strategies (or with ``monitor_gradients``) ``grad/norm/<term>``
and ``grad/cosine/<a>__<b>``.
"""

from __future__ import annotations

LOSS_PREFIX = "loss/"
WEIGHTS_PREFIX = "weights/"
WEIGHTING_PREFIX = "weighting/"
TRAIN_PREFIX = "train/"
VAL_PREFIX = "val/"
GRAD_NORM_PREFIX = "grad/norm/"
GRAD_COSINE_PREFIX = "grad/cosine/"

LOSS_TOTAL = LOSS_PREFIX + "total"
LR = "lr"
VAL_SCORE = VAL_PREFIX + "cmi_score"
"""The one metric a run selects and stops on (never the weighted total, which can go negative)."""
HPARAMS_SCORE = "hparams/cmi_score"
"""Logged once per fold with the best validation score; TensorBoard's hparams view shows it."""
VAL_CONFUSION = VAL_PREFIX + "confusion"
"""The validation confusion-matrix figure, for loggers that take figures."""


def loss_tag(term: str) -> str:
    """``loss/<term>``: a raw (unweighted) loss term, or ``loss/total``."""
    return LOSS_PREFIX + term


def weight_tag(term: str) -> str:
    """``weights/<term>``: the effective weight a weighting strategy gives a term."""
    return WEIGHTS_PREFIX + term


def weighting_tag(param: str) -> str:
    """``weighting/<param>``: a weighting strategy's raw learnable value."""
    return WEIGHTING_PREFIX + param


def train_tag(tag: str) -> str:
    """``train/<tag>``: the training-epoch mean of a step tag."""
    return TRAIN_PREFIX + tag


def val_tag(name: str) -> str:
    """``val/<name>``: a validation-epoch value (a score or ``loss/<term>``)."""
    return VAL_PREFIX + name


def task_metric_tag(task: str, metric: str) -> str:
    """``val/task/<task>/<metric>``: a task's validation metric (e.g. orientation accuracy)."""
    return f"{VAL_PREFIX}task/{task}/{metric}"


def grad_norm_tag(term: str) -> str:
    """``grad/norm/<term>``: the norm of a task's gradient on the shared part."""
    return GRAD_NORM_PREFIX + term


def grad_cosine_tag(a: str, b: str) -> str:
    """``grad/cosine/<a>__<b>``: the cosine between two tasks' gradients on the shared part."""
    return f"{GRAD_COSINE_PREFIX}{a}__{b}"
