"""The loss-weighting interface every weighting plugin implements.

A loss-level weighting turns the named task losses (one per configured task: exp025's
``multiclass``, ``binary``, ``nine_class``, ``kl``, and any task plugin's) into the one scalar
the optimizer minimises; a gradient-level one (``GradientWeighting``) turns their per-task
gradients on the shared part of the model into its update. Either is an ``nn.Module`` and a
child of the LightningModule, so its learnable parameters are saved in checkpoints and
synchronised by DDP, and the optimizer puts them in their own parameter group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import attrs
import torch
from torch import Tensor, nn

from cmi_core.specs import active_terms  # noqa: F401  (its home before tasks were plugins)

TERMS = ("multiclass", "binary", "nine_class", "kl")


@attrs.frozen
class FixedWeights:
    """The fixed-formula weights of exp024: ``alpha*L18 + (1-alpha)*Lbin + w9*L9 + wkl*Lkl``."""

    alpha: float = 0.5
    nine_class_loss_weight: float = 0.2
    kl_weight: float = 0.1
    #: ``(task, weight)`` pairs of the tasks beside the four exp025 terms (their ``weight``
    #: option); a term named in neither gets weight 1.
    extra: tuple[tuple[str, float], ...] = attrs.field(default=(), converter=tuple)

    def for_terms(self, terms: Sequence[str]) -> dict[str, float]:
        """The fixed weight of each active term, by name."""
        table = {
            "multiclass": self.alpha,
            "binary": 1.0 - self.alpha,
            "nine_class": self.nine_class_loss_weight,
            "kl": self.kl_weight,
            **dict(self.extra),
        }
        return {term: table.get(term, 1.0) for term in terms}


class LossWeighting(nn.Module):
    """Base class of weighting strategies.

    Subclasses implement :meth:`forward` and, when they learn something,
    :meth:`effective_weights` and :meth:`raw_values` so the trainer can log them.
    Logged values are detached 0-d tensors (or floats): the trainer hands them to
    ``self.log`` without a device sync; call ``float()`` on them for a report.

    Three declarations let the contract kit (``cmi_core.testing``) check what a strategy
    promises rather than guess it from option names: :attr:`learns`,
    :meth:`parameter_range` and :meth:`reference_total` (docs/weighting.md).
    """

    #: True when the weights change during training, through learnable parameters or state
    #: kept in buffers (a loss history); the kit then requires that state to change after a step,
    #: and requires it to stay put when False.
    learns: ClassVar[bool] = False

    kind: ClassVar[str] = "loss"
    """``"loss"``: ``forward(losses) -> total`` and one backward; ``"gradient"``: see
    :class:`GradientWeighting`. The model picks its training path from this."""

    def __init__(self, terms: Sequence[str], fixed: FixedWeights) -> None:
        super().__init__()
        bad = [t for t in terms if not isinstance(t, str) or not t.isidentifier()]
        if bad or len(set(terms)) != len(terms) or not terms:
            raise ValueError(f"terms must be distinct task names, got {list(terms)}")
        self.terms: tuple[str, ...] = tuple(terms)
        self.fixed = fixed

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def effective_weights(self) -> dict[str, Tensor | float]:
        """The weight each term's raw loss is multiplied by now (logged as ``weights/<term>``)."""
        return dict(self.fixed.for_terms(self.terms))

    def raw_values(self) -> dict[str, Tensor | float]:
        """Raw learnable values (logged as ``weighting/<name>``); empty when nothing is learned."""
        return {}

    def after_optimizer_step(self) -> None:
        """Called by the trainer after each optimizer step (clamping, collapse warnings)."""

    def parameter_range(self) -> tuple[float, float] | None:
        """The ``(low, high)`` range every learnable parameter is held in; None when unbounded.

        A strategy that clamps returns its range here, whatever its option is called, so the
        kit can check the forward pass and the projection after a step honour it.
        """
        return None

    def reference_total(self, losses: Mapping[str, float]) -> float | None:
        """The total this strategy should return for ``losses``, at its current state.

        Written independently of :meth:`forward`, in plain Python floats, straight from the
        strategy's documented formula: the kit compares the two on random losses and random
        parameter values. None (the default) when the strategy states no reference.
        """
        return None

    def before_train_epoch(self) -> None:
        """Called by the trainer when a training epoch starts (per-epoch statistics).

        At the start rather than the end: a run resumed from an end-of-epoch checkpoint starts
        the next epoch, so an epoch's statistics are closed exactly once either way.
        """

    @torch.no_grad()
    def clamp_parameters_(self, low: float, high: float) -> None:
        """Project every learnable parameter back into ``[low, high]``.

        Strategies that clamp in ``forward`` call this after each optimizer step too: a
        parameter left outside the range would get a zero gradient and never come back.
        """
        for param in self.parameters():
            param.clamp_(low, high)


def weighted_sum(losses: Mapping[str, Tensor], weights: Mapping[str, Tensor | float]) -> Tensor:
    """``w_1*L_1 + w_2*L_2 + ...`` over the terms of ``weights``, added left to right.

    The left fold is bit-identical to writing the fixed formula out by hand.
    """
    terms = iter(weights)
    first = next(terms)
    total = losses[first] * weights[first]
    for term in terms:
        total = total + losses[term] * weights[term]
    return total


# -- gradient level ----------------------------------------------------------------------------

WHERE = ("representation", "parameters")  # see cmi_core.gradient_options.GradientOptions


@attrs.frozen
class GradientUpdate:
    """What a gradient-level strategy makes of one Jacobian.

    ``direction [N]`` replaces the shared part's gradient; ``weights [T]`` (optional) are logged
    as ``weights/<term>``; ``auxiliary`` (optional) is a scalar whose gradient trains the
    strategy's own parameters (GradNorm's balance loss), added to the same backward pass.
    """

    direction: Tensor
    weights: Tensor | None = None
    auxiliary: Tensor | None = None


class GradientWeighting(LossWeighting):
    """Base class of gradient-level strategies: per-task gradients in, one update out.

    The model computes the Jacobian of the task losses (one row per term, in ``terms`` order)
    with respect to the shared part chosen by ``where``: ``"representation"``, the heads' input
    (backbone embedding + demographics embedding, flattened over the batch), or
    ``"parameters"``, the backbone and demographics parameters. :meth:`combine` turns it into
    the shared part's update; head parameters keep their own task gradients. ``forward`` only
    reports the monitored total (the plain sum of the losses) and is never differentiated.
    """

    kind: ClassVar[str] = "gradient"

    def __init__(self, terms: Sequence[str], fixed: FixedWeights, where: str) -> None:
        super().__init__(terms, fixed)
        if where not in WHERE:
            raise ValueError(f"where must be one of {list(WHERE)}, got {where!r}")
        self.where = where
        self._last_weights: Tensor | None = None

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return torch.stack([losses[t] for t in self.terms]).sum()

    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        """``jacobian [T, N]`` (float32, unscaled) and ``losses [T]`` (detached) -> the update."""
        raise NotImplementedError

    def update(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        """:meth:`combine`, remembering the weights for :meth:`effective_weights`."""
        result = self.combine(jacobian, losses)
        if result.weights is not None:
            self._last_weights = result.weights.detach()
        return result

    def effective_weights(self) -> dict[str, Tensor | float]:
        """The last step's aggregation weights; empty before the first step or without any."""
        if self._last_weights is None:
            return {}
        return dict(zip(self.terms, self._last_weights.unbind(), strict=True))


class AggregatorWeighting(GradientWeighting):
    """A gradient-level strategy around a Jacobian aggregator (e.g. a ``torchjd.aggregation``
    ``Aggregator``): any callable ``[T, N] -> [N]``.

    An aggregator with a ``weighting`` attribute (torchjd's ``WeightedAggregator``) is split into
    its weights and ``weights @ jacobian``, so its weights are logged without running it twice.
    """

    def __init__(
        self,
        terms: Sequence[str],
        fixed: FixedWeights,
        where: str,
        aggregator: Callable[[Tensor], Tensor],
    ) -> None:
        super().__init__(terms, fixed, where)
        self.aggregator = aggregator

    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        if not jacobian.any():  # nothing to combine; some solvers (Nash-MTL) fail on it
            return GradientUpdate(torch.zeros_like(jacobian[0]))
        weighting = getattr(self.aggregator, "weighting", None)
        if weighting is None:
            return GradientUpdate(self.aggregator(jacobian))
        weights = weighting(jacobian)
        return GradientUpdate(weights @ jacobian, weights)
