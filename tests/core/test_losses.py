"""The named task losses, against hand computations and the real gesture names."""

from __future__ import annotations

import math

import pytest
import torch

from cmi_core.config import LossConfig
from cmi_core.data.schema import GESTURES, NINE_CLASSES, NON_TARGET_GESTURES, TARGET_GESTURES
from cmi_core.train.losses import compute_losses, nine_class_aggregation
from cmi_core.weighting import TERMS

from .conftest import make_batch


def _outputs(batch_size: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "multiclass": torch.randn(batch_size, 18, generator=generator, requires_grad=True),
        "binary": torch.randn(batch_size, generator=generator, requires_grad=True),
        "nine_class": torch.randn(batch_size, 9, generator=generator, requires_grad=True),
    }


def _nine_class_probs(p18: torch.Tensor) -> torch.Tensor:
    """Aggregate by looking each gesture name up: the hand version of the aggregation."""
    p9 = torch.zeros(p18.shape[0], 9)
    for i, name in enumerate(GESTURES):
        j = NINE_CLASSES.index(name if name in TARGET_GESTURES else "non_target")
        p9[:, j] += p18[:, i]
    return p9


def test_every_target_lands_in_its_own_bin_and_non_targets_in_non_target() -> None:
    aggregation = nine_class_aggregation()
    assert aggregation.sum().item() == 18  # every gesture goes to exactly one bin
    for name in TARGET_GESTURES:
        column = aggregation[:, NINE_CLASSES.index(name)]
        assert column.sum().item() == 1
        assert GESTURES[int(column.argmax())] == name
    non_target = aggregation[:, NINE_CLASSES.index("non_target")]
    assert sorted(GESTURES[i] for i in non_target.nonzero().flatten()) == sorted(
        NON_TARGET_GESTURES
    )


def test_sorted_order_targets_are_not_the_first_eight() -> None:
    # The original bug: "Drink from bottle/cup" (sorted index 2) was summed as a target and
    # "Neck - scratch" (sorted index 10) into non_target.
    aggregation = nine_class_aggregation()
    drink, neck = GESTURES.index("Drink from bottle/cup"), GESTURES.index("Neck - scratch")
    assert drink == 2 and neck == 10
    assert NINE_CLASSES[int(aggregation[drink].argmax())] == "non_target"
    assert NINE_CLASSES[int(aggregation[neck].argmax())] == "Neck - scratch"


def test_one_hot_and_uniform_probabilities_aggregate_by_name() -> None:
    p18 = torch.zeros(2, 18)
    p18[0, GESTURES.index("Cheek - pinch skin")] = 1.0
    p18[1] = 1.0 / 18
    p9 = p18 @ nine_class_aggregation()
    assert p9[0, NINE_CLASSES.index("Cheek - pinch skin")] == 1.0
    torch.testing.assert_close(p9[1, NINE_CLASSES.index("non_target")], torch.tensor(10 / 18))
    torch.testing.assert_close(p9[1, :8], torch.full((8,), 1 / 18))


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_kl_matches_a_hand_computation(temperature: float) -> None:
    outputs, batch = _outputs(), make_batch()
    loss = compute_losses(outputs, batch, LossConfig(kl_temperature=temperature), ["kl"])["kl"]
    p9 = _nine_class_probs(torch.softmax(outputs["multiclass"].detach() / temperature, dim=1))
    q9 = torch.softmax(outputs["nine_class"].detach() / temperature, dim=1)
    expected = (p9 * (p9.log() - q9.log())).sum(dim=1).mean()
    torch.testing.assert_close(loss, expected)


def test_kl_is_zero_when_the_heads_agree_and_reaches_both_heads() -> None:
    outputs = _outputs()
    p9 = _nine_class_probs(torch.softmax(outputs["multiclass"].detach(), dim=1))
    agreeing = {**outputs, "nine_class": p9.log()}
    zero = compute_losses(agreeing, make_batch(), LossConfig(), ["kl"])["kl"]
    assert abs(zero.item()) < 1e-6
    loss = compute_losses(outputs, make_batch(), LossConfig(), ["kl"])["kl"]
    loss.backward()
    assert outputs["multiclass"].grad.abs().sum() > 0
    assert outputs["nine_class"].grad.abs().sum() > 0


def test_cross_entropy_and_bce_match_hand_computations() -> None:
    outputs, batch = _outputs(), make_batch()
    eps = 0.1
    losses = compute_losses(outputs, batch, LossConfig(label_smoothing=eps), TERMS)

    def smoothed_ce(logits: torch.Tensor, target: torch.Tensor) -> float:
        total = 0.0
        for row, y in zip(logits.detach().tolist(), target.tolist(), strict=True):
            log_z = math.log(sum(math.exp(v) for v in row))
            log_p = [v - log_z for v in row]
            total += -(1 - eps) * log_p[y] - eps * sum(log_p) / len(row)
        return total / len(target)

    def bce(logits: torch.Tensor, target: torch.Tensor) -> float:
        values = [
            -(t * math.log(1 / (1 + math.exp(-z))) + (1 - t) * math.log(1 / (1 + math.exp(z))))
            for z, t in zip(logits.detach().tolist(), target.tolist(), strict=True)
        ]
        return sum(values) / len(values)

    assert losses["multiclass"].item() == pytest.approx(
        smoothed_ce(outputs["multiclass"], batch["y18"]), rel=1e-5
    )
    assert losses["nine_class"].item() == pytest.approx(
        smoothed_ce(outputs["nine_class"], batch["y9"]), rel=1e-5
    )
    assert losses["binary"].item() == pytest.approx(bce(outputs["binary"], batch["ybin"]), rel=1e-5)


def test_only_the_requested_terms_are_computed() -> None:
    outputs = _outputs()
    del outputs["nine_class"]  # head disabled: its loss and the KL are not requested
    losses = compute_losses(outputs, make_batch(), LossConfig(), ("multiclass", "binary"))
    assert list(losses) == ["multiclass", "binary"]


@pytest.mark.parametrize("per_sample", [False, True])
def test_mixup_mixes_the_losses_of_both_label_sets(per_sample: bool) -> None:
    outputs, batch = _outputs(), make_batch()
    perm = torch.tensor([2, 0, 3, 1])
    lam = torch.tensor([0.7, 0.2, 0.9, 0.5]) if per_sample else torch.tensor(0.7)
    mixed = compute_losses(
        outputs, {**batch, "mix_index": perm, "mix_lambda": lam}, LossConfig(), TERMS
    )
    cfg = LossConfig()
    for term, label in (("multiclass", "y18"), ("binary", "ybin"), ("nine_class", "y9")):
        per_item = []
        for i in range(4):
            one = {k: v[i : i + 1] for k, v in outputs.items()}
            own = compute_losses(one, {label: batch[label][i : i + 1]}, cfg, [term])[term]
            other = compute_losses(one, {label: batch[label][perm[i] : perm[i] + 1]}, cfg, [term])
            weight = lam[i] if per_sample else lam
            per_item.append(weight * own + (1 - weight) * other[term])
        torch.testing.assert_close(mixed[term], torch.stack(per_item).mean())
    plain = compute_losses(outputs, batch, cfg, TERMS)
    torch.testing.assert_close(mixed["kl"], plain["kl"])  # KL does not use labels
