"""The LightningModule: a :class:`~cmi_core.train.network.CMINetwork`, named losses, a weighting.

The module receives the built network and weighting modules and never looks a plugin name up.
Logged tags (flat, named in :mod:`cmi_core.tags`), every step Lightning writes to the loggers
(``log_every_n_steps``; the others skip the logging work): ``loss/<term>`` (raw),
``loss/total``, ``weights/<term>`` (effective weight), ``weighting/<param>`` (raw learnable
value), ``lr``; ``grad/norm/<term>`` and ``grad/cosine/<a>__<b>`` (task gradients on
the shared part) on logging steps, for gradient-level strategies and when
``monitor_gradients`` is on; per training epoch (mean): ``train/loss/<term>``,
``train/loss/total``; per validation epoch: ``val/loss/<term>``, ``val/loss/total``,
``val/cmi_score``, ``val/binary_f1``, ``val/macro_f1``, and ``val/task/<task>/<metric>`` for each
task with a validation metric.
Validation keeps the epoch's probabilities, labels and confusion matrix on the module
(``last_val_probs``, ``last_val_targets``, ``last_val_confusion``) for callbacks and reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from cmi_core.builders import task_names
from cmi_core.config import LossConfig, OptimizerConfig
from cmi_core.data.schema import GESTURES
from cmi_core.errors import NonFiniteError
from cmi_core.metrics import competition_score
from cmi_core.tags import (
    LOSS_TOTAL,
    LR,
    loss_tag,
    task_metric_tag,
    train_tag,
    val_tag,
    weight_tag,
    weighting_tag,
)
from cmi_core.task import Task
from cmi_core.train.jacobian import (
    PendingBackward,
    SharedPart,
    gradient_stats,
    gradient_step,
    representation_jacobian,
)
from cmi_core.train.losses import task_losses
from cmi_core.train.network import CMINetwork
from cmi_core.train.optim import ScheduleFreeModeSwitch, build_optimizer
from cmi_core.weighting import LossWeighting

NETWORK_PARTS = ("backbone", "demographics", "heads", "image_branch")


class CMIModel(pl.LightningModule):
    """Trains a :class:`CMINetwork`: named losses, their weighting, the optimizer.

    The network's parts are registered under the names fold checkpoints have always used
    (``backbone``, ``weighting``, ``demographics``, ``heads``, in that order), so the training
    checkpoint is the network's state dict plus the weighting's.
    """

    def __init__(
        self,
        network: CMINetwork,
        weighting: LossWeighting,
        loss: LossConfig,
        optimizer: OptimizerConfig,
        *,
        lr_scale: float = 0.1,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        expected = task_names(loss)
        if tuple(weighting.terms) != expected:
            raise ValueError(f"weighting terms {weighting.terms} do not match the loss {expected}")
        by_name = {task.name: task for task in network.tasks}
        if not set(expected) <= set(by_name) or not set(network.heads) <= set(expected):
            raise ValueError(
                f"the network's tasks {list(by_name)} do not match the loss {expected}"
            )
        #: the tasks whose losses are computed, in the weighting's term order
        self.loss_tasks = tuple(by_name[t] for t in weighting.terms)
        self.backbone, self.weighting = network.backbone, weighting
        self.demographics, self.heads = network.demographics, network.heads
        if network.image_branch is not None:  # registered only where a config reads ToF images
            self.image_branch = network.image_branch
        self.__dict__["network"] = network  # not a second child: its parts are registered above
        self.loss_cfg, self.optimizer_cfg = loss, optimizer
        self.lr_scale, self.total_steps = lr_scale, total_steps
        self._pending_backward: PendingBackward | None = None
        self._train_sums = WeightedSums()
        self._val_sums = WeightedSums()
        self._val_probs: list[Tensor] = []
        self._val_targets: list[Tensor] = []
        self._val_task_outputs: dict[str, list[tuple[Tensor, Tensor]]] = {}
        self.last_val_probs: np.ndarray | None = None
        self.last_val_targets: np.ndarray | None = None
        self.last_val_confusion: np.ndarray | None = None

    network: CMINetwork

    def __setattr__(self, name: str, value: Any) -> None:
        """Replacing a network part (a test swapping the backbone) replaces it in the network
        too, so the module and the network it runs never disagree."""
        super().__setattr__(name, value)
        if name in NETWORK_PARTS and "network" in self.__dict__:
            setattr(self.network, name, value)

    # -- model -------------------------------------------------------------------------------

    def forward(
        self, x: Tensor, mask: Tensor, demographics: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Logits by head: ``multiclass [B, 18]``, ``binary [B]``, ``nine_class [B, 9]``."""
        return self.network(x, mask, demographics)

    def shared_representation(
        self, x: Tensor, mask: Tensor, demographics: Tensor | None = None
    ) -> Tensor:
        return self.network.shared_representation(x, mask, demographics)

    def heads_forward(self, features: Tensor) -> dict[str, Tensor]:
        return self.network.heads_forward(features)

    def shared_parameters(self) -> list[nn.Parameter]:
        return self.network.shared_parameters()

    def _forward_batch(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self(batch["x"], batch["mask"], batch.get("demographics"))

    # -- training ----------------------------------------------------------------------------

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        features = self.shared_representation(batch["x"], batch["mask"], batch.get("demographics"))
        by_gradient = self.weighting.kind == "gradient"
        head_input = features.detach().requires_grad_() if by_gradient else features
        losses = task_losses(self.loss_tasks, self.heads_forward(head_input), batch)
        total = self.weighting(losses)
        if not torch.isfinite(total):
            raise NonFiniteError(_non_finite_message(self.global_step, losses, total))
        jacobian = self._task_jacobian(losses, features, head_input)
        size = batch["x"].shape[0]
        loss_values = {loss_tag(t): v.detach() for t, v in losses.items()}
        loss_values[LOSS_TOTAL] = total.detach()
        self._train_sums.add(loss_values, size)
        if not self._logs_this_step():  # Lightning would not write them: skip its bookkeeping
            return total
        step_values = dict(loss_values)
        step_values |= {weight_tag(t): w for t, w in self.weighting.effective_weights().items()}
        step_values |= {weighting_tag(n): v for n, v in self.weighting.raw_values().items()}
        if jacobian is not None:
            step_values |= gradient_stats(self.weighting.terms, jacobian)
        if self._trainer is not None:
            step_values[LR] = _current_lr(self.trainer.optimizers[0])
        self.log_dict(step_values, on_step=True, on_epoch=False, batch_size=size)
        return total

    def on_train_epoch_end(self) -> None:
        """``train/loss/*``: the epoch's batch-size-weighted means, logged once per epoch.

        Accumulated here rather than through ``self.log(on_epoch=True)`` at every step, whose
        bookkeeping cost ~7 ms per step on a CPU, about 8 % of an exp025 fold.
        """
        means = self._train_sums.means()
        if means:
            values = {train_tag(k): v for k, v in means.items()}
            self.log_dict(values, on_step=False, on_epoch=True, sync_dist=True)

    def _task_jacobian(
        self, losses: Mapping[str, Tensor], features: Tensor, head_input: Tensor
    ) -> Tensor | None:
        """Gradient-level: run the strategy, keep its backward pass for :meth:`backward`, and
        return the Jacobian it saw. Loss-level with ``monitor_gradients``: the Jacobian at the
        representation, on logged steps only (the loss-level step keeps its speed)."""
        if self.weighting.kind == "gradient":
            shared = SharedPart(features, head_input, self.shared_parameters())
            self._pending_backward, jacobian = gradient_step(
                self.weighting, losses, shared, self._gradient_scale()
            )
            return jacobian
        if self.loss_cfg.weighting.monitor_gradients and self._logs_this_step():
            terms = self.weighting.terms
            return representation_jacobian([losses[t] for t in terms], features)
        return None

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Loss-level: the usual backward of the total. Gradient-level: the pass
        ``training_step`` prepared (its gradients already carry the scaler's factor)."""
        pending, self._pending_backward = self._pending_backward, None
        if pending is None:
            super().backward(loss, *args, **kwargs)
        else:
            pending.run()

    def _gradient_scale(self) -> float:
        """The mixed-precision gradient scaler's factor, 1 without one."""
        precision = self.trainer.precision_plugin if self._trainer is not None else None
        scaler = getattr(precision, "scaler", None)
        return float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0

    def _logs_this_step(self) -> bool:
        """Whether Lightning writes this step's logged values (every ``log_every_n_steps``)."""
        if self._trainer is None:
            return True
        return bool(self.trainer._logger_connector.should_update_logs)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        self.weighting.after_optimizer_step()

    def on_train_epoch_start(self) -> None:
        self._train_sums.clear()
        self.weighting.before_train_epoch()

    def configure_optimizers(self) -> Any:
        total = self.total_steps or int(self.trainer.estimated_stepping_batches)
        optimizer, scheduler = build_optimizer(
            self, self.optimizer_cfg, self.weighting.parameters(), self.lr_scale, total
        )
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def configure_callbacks(self) -> list[pl.Callback]:
        """Schedule-free optimizers need their train/eval switch; it belongs to the model."""
        if self.optimizer_cfg.name.startswith("schedulefree"):
            return [ScheduleFreeModeSwitch()]
        return []

    # -- validation and prediction -----------------------------------------------------------

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        outputs = self._forward_batch(batch)
        losses = task_losses(self.loss_tasks, outputs, batch)
        values = {val_tag(loss_tag(t)): v for t, v in losses.items()}
        values[val_tag(LOSS_TOTAL)] = self.weighting(losses)
        self._val_sums.add(values, batch["x"].shape[0])
        self._val_probs.append(outputs["multiclass"].float().softmax(dim=-1))
        self._val_targets.append(batch["y18"])
        for task in self._metric_tasks():
            logits, target = outputs[task.name].detach(), task.target(batch)
            self._val_task_outputs.setdefault(task.name, []).append((logits, target))

    def on_validation_epoch_start(self) -> None:
        self._val_sums.clear()
        self._val_probs.clear()
        self._val_targets.clear()
        self._val_task_outputs.clear()

    def _metric_tasks(self) -> list[Task]:
        """The tasks with a head, a target and a validation metric."""
        return [t for t in self.network.tasks if t.metric_name is not None and t.name in self.heads]

    def _log_task_metrics(self) -> None:
        """Each task's metric over the epoch, as ``val/task/<task>/<metric>`` (this rank)."""
        values = {}
        for task in self._metric_tasks():
            pairs = self._val_task_outputs.get(task.name, [])
            if pairs:
                logits = torch.cat([p[0] for p in pairs])
                target = torch.cat([p[1] for p in pairs])
                value = task.metric(logits, target)
                if value is not None:
                    values[task_metric_tag(task.name, str(task.metric_name))] = float(value)
        self._val_task_outputs.clear()
        if values:
            self.log_dict(values)

    def on_validation_epoch_end(self) -> None:
        self._log_task_metrics()
        means = self._val_sums.means()  # val/loss/*: one log call per epoch, not per batch
        if means:
            self.log_dict(means, on_epoch=True, sync_dist=True)
        if not self._val_probs:
            return
        probs, targets = torch.cat(self._val_probs), torch.cat(self._val_targets)
        self._val_probs.clear()
        self._val_targets.clear()
        if self._trainer is not None and self.trainer.world_size > 1:
            probs = self.all_gather(probs).flatten(0, 1)  # DistributedSampler pads ranks equally
            targets = self.all_gather(targets).flatten(0, 1)
        probs_np, targets_np = probs.cpu().numpy(), targets.cpu().numpy()
        predictions = probs_np.argmax(axis=1)
        scores = competition_score(
            [GESTURES[i] for i in targets_np], [GESTURES[i] for i in predictions]
        )
        n = len(GESTURES)
        self.last_val_probs, self.last_val_targets = probs_np, targets_np
        self.last_val_confusion = np.bincount(
            targets_np * n + predictions, minlength=n * n
        ).reshape(n, n)
        self.log_dict({val_tag(k): v for k, v in scores.items()}, sync_dist=True)

    def predict_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        """18-class probabilities ``[B, 18]`` (columns in ``schema.GESTURES`` order)."""
        return self._forward_batch(batch)["multiclass"].float().softmax(dim=-1)


class WeightedSums:
    """Batch-size-weighted running sums of logged tensors, kept on their device (no sync).

    What Lightning's ``self.log(..., on_epoch=True, batch_size=n)`` computes, accumulated in
    the same order, for the price of one in-place add per value.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0

    def add(self, values: Mapping[str, Tensor], size: int) -> None:
        for key, value in values.items():
            weighted = value.detach().float() * size
            previous = self.sums.get(key)
            self.sums[key] = weighted if previous is None else previous + weighted
        self.count += size

    def means(self) -> dict[str, Tensor]:
        return {key: total / self.count for key, total in self.sums.items()} if self.count else {}

    def clear(self) -> None:
        self.sums.clear()
        self.count = 0


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    group = optimizer.param_groups[0]
    return float(group.get("scheduled_lr") or group["lr"])  # schedule-free reports warm-up lr


def _non_finite_message(step: int, losses: Mapping[str, Tensor], total: Tensor) -> str:
    values = ", ".join(f"{t}={v.item():.6g}" for t, v in losses.items())
    return f"non-finite loss at step {step}: {values}, total={total.item():.6g}"
