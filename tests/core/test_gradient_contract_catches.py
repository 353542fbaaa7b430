"""Broken gradient-level strategies: each one fails the contract kit with a clear sentence."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from torch import Tensor, nn

from cmi_core.testing import gradient_contract as kit
from cmi_core.weighting import TERMS, FixedWeights, GradientUpdate, GradientWeighting
from cmi_weighting_none.strategy import FixedWeighting


class Mean(GradientWeighting):
    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        return GradientUpdate(jacobian.mean(dim=0))


class ZeroUpdate(Mean):
    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        return GradientUpdate(torch.zeros_like(jacobian[0]))


class FirstTaskOnly(Mean):
    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        return GradientUpdate(jacobian[0], torch.eye(len(self.terms))[0])


class NanWhenHuge(Mean):
    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        update = super().combine(jacobian, losses)
        return (
            update if jacobian.abs().max() < 1e3 else GradientUpdate(update.direction * torch.nan)
        )


class UntrainedParameter(Mean):
    """Learnable weights that no auxiliary loss ever trains."""

    def __init__(self, terms: Sequence[str], fixed: FixedWeights, where: str) -> None:
        super().__init__(terms, fixed, where)
        self.w = nn.Parameter(torch.ones(len(self.terms)))

    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        return GradientUpdate(self.w.detach() @ jacobian, self.w.detach())


class StateOutsideTheStateDict(Mean):
    """Counts its steps in a plain attribute: a restored copy starts from zero again."""

    def __init__(self, terms: Sequence[str], fixed: FixedWeights, where: str) -> None:
        super().__init__(terms, fixed, where)
        self.steps = 0

    def combine(self, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
        self.steps += 1
        return GradientUpdate(jacobian.mean(dim=0) / self.steps)


def _build(cls: type) -> Callable[..., object]:
    def build(terms: Sequence[str] = TERMS) -> object:
        return cls(terms, FixedWeights(), "representation")

    return build


@pytest.mark.parametrize(
    ("cls", "check", "message"),
    [
        (ZeroUpdate, kit.check_every_task_moves, "every task must get a share"),
        (FirstTaskOnly, kit.check_every_task_moves, "every task must get a share"),
        (NanWhenHuge, kit.check_extreme_jacobians_stay_finite, "finite direction"),
        (UntrainedParameter, kit.check_learned_state_trains, "must return GradientUpdate.aux"),
        (StateOutsideTheStateDict, kit.check_state_dict_round_trip, "restored strategy differs"),
    ],
)
def test_the_kit_fails_a_broken_strategy(cls: type, check: Callable, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check(_build(cls))


def test_the_kit_fails_a_loss_level_strategy() -> None:
    def build(terms: Sequence[str] = TERMS) -> FixedWeighting:
        return FixedWeighting(terms, FixedWeights())

    with pytest.raises(AssertionError, match=r"must subclass cmi_core\.GradientWeighting"):
        kit.check_kind_and_terms(build)


@pytest.mark.parametrize(
    "check",
    [
        kit.check_every_task_moves,
        kit.check_extreme_jacobians_stay_finite,
        kit.check_learned_state_trains,
        kit.check_state_dict_round_trip,
        kit.check_agreeing_tasks_keep_their_direction,
    ],
)
def test_the_kit_passes_a_sound_strategy(check: Callable) -> None:
    check(_build(Mean))
