"""Each gradient-level strategy against its paper's update on hand-computed cases."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

import cmi_core
from cmi_core.weighting import GradientUpdate, GradientWeighting

TWO = ("multiclass", "binary")
THREE = ("multiclass", "binary", "nine_class")
LOSSES = torch.tensor([1.0, 1.0, 1.0])
EXACT = {"norm_eps": 1e-8, "reg_eps": 1e-8}  # UPGrad/DualProj's QP regularisation, near 0


def combine(name: str, jacobian: list[list[float]], **options: Any) -> GradientUpdate:
    terms = (TWO, THREE)[len(jacobian) - 2]
    strategy = cmi_core.build_weighting(name, terms, **options)
    assert isinstance(strategy, GradientWeighting)
    return strategy.update(torch.tensor(jacobian), LOSSES[: len(terms)])


def close(actual: Tensor, expected: list[float], atol: float = 1e-4) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected), atol=atol, rtol=0)


def test_pcgrad_projects_two_conflicting_gradients() -> None:
    # g1.g2 = -1: g1' = g1 - (-1/2) g2 = [0.5, 0.5]; g2' = g2 - (-1/1) g1 = [0, 1]
    close(combine("pcgrad", [[1.0, 0.0], [-1.0, 1.0]]).direction, [0.5, 1.5])


def test_pcgrad_leaves_a_non_conflicting_third_gradient_alone() -> None:
    update = combine("pcgrad", [[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    close(update.direction, [0.5, 1.5, 1.0])


def test_mgda_two_tasks_is_the_closed_form_min_norm_point() -> None:
    # w = (g2-g1).g2 / |g1-g2|^2 = ([-1, 2].[0, 2]) / 5 = 0.8; d = 0.8 g1 + 0.2 g2
    update = combine("mgda", [[1.0, 0.0], [0.0, 2.0]], epsilon=1e-6, max_iters=1000)
    close(update.direction, [0.8, 0.4], atol=1e-3)
    close(update.weights, [0.8, 0.2], atol=1e-3)


def test_mgda_picks_the_shorter_gradient_when_it_is_the_min_norm_point() -> None:
    # w = (g2-g1).g2 / |g1-g2|^2 = [0, 1].[1, 1] / 1 = 1: d = g1, on the segment's end
    close(combine("mgda", [[1.0, 0.0], [1.0, 1.0]]).direction, [1.0, 0.0], atol=1e-3)


@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_without_conflict_upgrad_and_dualproj_are_the_mean(name: str) -> None:
    close(combine(name, [[1.0, 0.0], [1.0, 1.0]]).direction, [1.0, 0.5])


@pytest.mark.parametrize(
    ("name", "options"), [("upgrad", EXACT), ("dualproj", EXACT), ("mgda", {})]
)
def test_the_update_conflicts_with_no_task(name: str, options: dict[str, float]) -> None:
    """Non-conflict (UPGrad, DualProj, MGDA): ``J d >= 0`` on random conflicting gradients."""
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        jacobian = torch.randn(3, 6, generator=generator)
        strategy = cmi_core.build_weighting(name, THREE, **options)
        direction = strategy.update(jacobian, LOSSES).direction
        assert (jacobian @ direction >= -1e-4).all(), jacobian @ direction


def test_upgrad_projects_each_conflicting_gradient_onto_the_dual_cone() -> None:
    # g1 = [1, 0], g2 = [-1, 1]: g1 projected onto {d: g2.d >= 0} -> [0.5, 0.5];
    # g2 projected onto {d: g1.d >= 0} -> [0, 1]; the mean is [0.25, 0.75]
    close(combine("upgrad", [[1.0, 0.0], [-1.0, 1.0]], **EXACT).direction, [0.25, 0.75])


def test_dualproj_projects_the_mean_onto_the_dual_cone() -> None:
    # mean of [1, 0] and [-2, 1] = [-0.5, 0.5] conflicts with g1; its projection onto
    # {d: g1.d >= 0} is [0, 0.5], which does not conflict with g2
    close(combine("dualproj", [[1.0, 0.0], [-2.0, 1.0]], **EXACT).direction, [0.0, 0.5])


def test_cagrad_with_c_zero_is_the_mean() -> None:
    close(combine("cagrad", [[1.0, 0.0], [-2.0, 1.0]], c=0.0).direction, [-0.5, 0.5])


def test_cagrad_improves_the_worst_task_over_the_mean() -> None:
    jacobian = torch.tensor([[1.0, 0.0], [-2.0, 1.0]])
    strategy = cmi_core.build_weighting("cagrad", TWO, c=0.5)
    direction = strategy.update(jacobian, LOSSES[:2]).direction
    assert (jacobian @ direction).min() > (jacobian @ jacobian.mean(dim=0)).min()


def test_imtl_g_gives_equal_projections_on_the_unit_gradients() -> None:
    # d = a g1 + (1-a) g2 with g1 = [1, 0], g2 = [0, 2]: d.u1 = a = d.u2 = 2(1-a) -> a = 2/3
    update = combine("imtl_g", [[1.0, 0.0], [0.0, 2.0]])
    close(update.direction, [2 / 3, 2 / 3])
    close(update.weights, [2 / 3, 1 / 3])


def test_nash_mtl_solves_the_bargaining_equations() -> None:
    # G = diag(1, 4): alpha_i (G alpha)_i = 1 -> alpha = [1, 0.5]; d = [1, 1] (no norm clip)
    update = combine("nash_mtl", [[1.0, 0.0], [0.0, 2.0]], max_norm=0.0, optim_niter=50)
    close(update.weights, [1.0, 0.5], atol=1e-2)


def test_aligned_mtl_equalises_orthogonal_gradients_at_the_smallest_scale() -> None:
    # G = diag(1, 4): B = sigma_min V L^-1/2 V^T = diag(1, 0.5); alpha = B [0.5, 0.5]
    update = combine("aligned_mtl", [[1.0, 0.0], [0.0, 2.0]])
    close(update.weights, [0.5, 0.25])
    close(update.direction, [0.5, 0.5])


def test_graddrop_with_full_leak_is_the_sum() -> None:
    close(combine("graddrop", [[1.0, -2.0], [3.0, 1.0]], leak=1.0).direction, [4.0, -1.0])


def test_graddrop_keeps_a_sign_with_its_purity_as_probability() -> None:
    # column 0 is pure (P = 1): both kept, 4; column 1: P = (1 + (-1)/3) / 2 = 1/3 keeps +1,
    # else -2: expected 1/3 * 1 + 2/3 * (-2) = -1
    torch.manual_seed(0)
    strategy = cmi_core.build_weighting("graddrop", TWO)
    jacobian = torch.tensor([[1.0, -2.0], [3.0, 1.0]])
    draws = torch.stack([strategy.update(jacobian, LOSSES[:2]).direction for _ in range(4000)])
    assert (draws[:, 0] == 4.0).all()
    assert set(draws[:, 1].tolist()) == {1.0, -2.0}
    assert abs(draws[:, 1].mean().item() + 1.0) < 0.1


def test_gradnorm_one_step_follows_the_paper() -> None:
    """Chen et al. 2018, Algorithm 1, by hand: L(0) = [1, 2], L = [0.5, 2], asymmetry 1,
    |g| = [1, 3], w = [1, 1]: G = [1, 3], mean 2; Lt = [0.5, 1], r = [2/3, 4/3];
    target = 2 r = [4/3, 8/3]; dLgrad/dw = sign(G - target) |g| = [-1, 3];
    SGD lr 0.1: w = [1.1, 0.7], renormalised to sum 2: [1.1, 0.7] * 2 / 1.8."""
    strategy = cmi_core.build_weighting("gradnorm", TWO, asymmetry=1.0)
    jacobian = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    strategy.update(jacobian, torch.tensor([1.0, 2.0]))  # the first step records L(0)
    update = strategy.update(jacobian, torch.tensor([0.5, 2.0]))
    close(update.direction, [1.0, 3.0])
    update.auxiliary.backward()
    close(strategy.w.grad, [-1.0, 3.0])
    with torch.no_grad():
        strategy.w -= 0.1 * strategy.w.grad
    strategy.after_optimizer_step()
    close(strategy.w.detach(), [1.1 * 2 / 1.8, 0.7 * 2 / 1.8])
    close(torch.stack(list(strategy.effective_weights().values())), [1.1 / 0.9, 0.7 / 0.9])
