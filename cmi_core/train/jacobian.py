"""Per-task gradients on the model's shared part, and the one backward pass that applies them.

The model runs its heads on a detached copy of the shared representation (``head_input``), so
each task's gradient with respect to it costs a backward pass through the heads only. The
final update is one ``torch.autograd.backward`` call that reaches every parameter: under DDP
the gradient hooks fire as usual and the ranks' gradients are averaged, so parameters stay
identical.

Under DDP the strategy sees the same Jacobian on every rank, the one a single process would
see on the union of the ranks' batches: at the representation, the ranks' columns are
gathered (each divided by the world size, as the loss is a mean over the union); at the
parameters, the ranks' rows are averaged. Each rank then applies its own slice of the update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import torch
import torch.distributed as dist
from torch import Tensor, nn

from cmi_core.tags import grad_cosine_tag, grad_norm_tag
from cmi_core.weighting import GradientUpdate, GradientWeighting


@attrs.define
class PendingBackward:
    """The tensors and gradients of the step's one backward pass, run by ``model.backward``."""

    tensors: list[Tensor]
    grads: list[Tensor]

    def run(self) -> None:
        torch.autograd.backward(self.tensors, self.grads)


def representation_jacobian(losses: Sequence[Tensor], representation: Tensor) -> Tensor:
    """``[T, B*D]``: row ``i`` is ``dL_i / d representation``, flattened (graph kept)."""
    rows = [
        torch.autograd.grad(loss, representation, retain_graph=True)[0].reshape(-1)
        for loss in losses
    ]
    return torch.stack(rows)


def parameter_jacobian(
    features: Tensor, feature_rows: Tensor, params: Sequence[nn.Parameter]
) -> Tensor:
    """``[T, P]``: each row of ``feature_rows`` pulled back through ``features`` to ``params``."""
    rows = []
    for row in feature_rows:
        grads = torch.autograd.grad(
            features, params, row.view_as(features), retain_graph=True, allow_unused=True
        )
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, params, strict=True)
                ]
            )
        )
    return torch.stack(rows)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_columns(jacobian: Tensor) -> Tensor:
    """The ranks' ``[T, N]`` Jacobians side by side ``[T, W*N]``, over the union's mean loss."""
    _, size = world()
    if size == 1:
        return jacobian
    parts = [torch.empty_like(jacobian) for _ in range(size)]
    dist.all_gather(parts, jacobian.contiguous())
    return torch.cat(parts, dim=1) / size


def mean_over_ranks(values: Tensor) -> Tensor:
    """The average of ``values`` over the ranks (itself in one process)."""
    _, size = world()
    if size == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / size


def gradient_stats(terms: Sequence[str], jacobian: Tensor) -> dict[str, Tensor]:
    """``grad/norm/<term>`` and ``grad/cosine/<a>__<b>`` of the task gradients (the rows)."""
    jacobian = jacobian.detach().float()
    norms = jacobian.norm(dim=1)
    unit = jacobian / norms.clamp_min(1e-12)[:, None]
    cosine = unit @ unit.T
    stats = {grad_norm_tag(t): n for t, n in zip(terms, norms.unbind(), strict=True)}
    for i, a in enumerate(terms):
        for j in range(i + 1, len(terms)):
            stats[grad_cosine_tag(a, terms[j])] = cosine[i, j]
    return stats


@attrs.frozen
class SharedPart:
    """Where the shared part of a forward pass is: its output, the heads' detached copy of it,
    and the parameters that produced it."""

    features: Tensor
    head_input: Tensor
    params: Sequence[nn.Parameter]


def gradient_step(
    weighting: GradientWeighting, losses: Mapping[str, Tensor], shared: SharedPart, scale: float
) -> tuple[PendingBackward, Tensor]:
    """Run the strategy on this step's Jacobian; returns the backward to run and the Jacobian.

    ``scale`` is the gradient scaler's factor (1 without one): the Jacobian is computed from
    the scaled losses (no float16 underflow), the strategy sees it unscaled, and every gradient
    of the final backward is scaled again, so the scaler's unscale and inf checks stay right.
    """
    values = [losses[t] * scale for t in weighting.terms]
    jacobian = representation_jacobian(values, shared.head_input)
    by_parameter = weighting.where == "parameters"
    if by_parameter:
        jacobian = mean_over_ranks(parameter_jacobian(shared.features, jacobian, shared.params))
    else:
        jacobian = gather_columns(jacobian)
    jacobian = jacobian.float() / scale
    task_losses = mean_over_ranks(torch.stack(values).detach().float() / scale)
    update = _combine(weighting, jacobian, task_losses)
    direction = update.direction * scale
    tensors: list[Tensor] = [torch.stack(values).sum()]
    grads: list[Tensor] = [torch.ones_like(tensors[0])]
    if by_parameter:
        offsets = [p.numel() for p in shared.params]
        for param, part in zip(shared.params, direction.split(offsets), strict=True):
            tensors.append(param)
            grads.append(part.view_as(param).to(param.dtype))
    else:
        rank, size = world()
        n = shared.features.numel()
        mine = direction[rank * n : (rank + 1) * n] * size
        tensors.append(shared.features)
        grads.append(mine.view_as(shared.features).to(shared.features.dtype))
    if update.auxiliary is not None:
        tensors.append(update.auxiliary * scale)
        grads.append(torch.ones_like(tensors[-1]))
    return PendingBackward(tensors, grads), jacobian


def _combine(weighting: GradientWeighting, jacobian: Tensor, losses: Tensor) -> GradientUpdate:
    """The strategy's update in float32 (outside autocast); a non-finite Jacobian (a float16
    overflow) passes through as the plain sum, so the gradient scaler skips the step."""
    if not torch.isfinite(jacobian).all():
        return GradientUpdate(jacobian.sum(dim=0))
    with torch.autocast(device_type=jacobian.device.type, enabled=False):
        return weighting.update(jacobian, losses)
