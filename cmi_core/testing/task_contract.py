"""The contract every task plugin must meet: its head, target, loss, mixup and dependencies;
per-frame tasks (``TaskSpec(level="frame")``) get per-frame features and targets, and their
loss must skip the frames whose label is unknown (``-1``: padding, test files)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
import torch
from torch import Tensor

from cmi_core.builders import build_task
from cmi_core.data.schema import (
    COMPOSITE_CLASSES,
    FRAME_LABELS,
    GESTURE_IS_TARGET,
    GESTURE_TO_NINE,
)
from cmi_core.specs import PluginSpec
from cmi_core.task import Task
from cmi_core.testing.plugin_contract import PluginContract

Build = Callable[[], Task]
IN_DIM, BATCH, FRAMES = 24, 6, 10


def kit_batch(size: int = BATCH, seed: int = 0) -> dict[str, Tensor]:
    """A batch with every target the dataset gives (``y18``, ``ybin``, ``y9``, ``yorient``,
    ``ycomposite``), all known, drawn at random; the per-frame ones (``yphase``, ``ybehavior``,
    ``[size, FRAMES]``) unknown (``-1``) on the first frames of each sequence, as on padding."""
    generator = torch.Generator().manual_seed(seed)
    y18 = torch.randint(0, 18, (size,), generator=generator)
    batch = {
        "y18": y18,
        "ybin": torch.as_tensor(GESTURE_IS_TARGET)[y18].float(),
        "y9": torch.as_tensor(GESTURE_TO_NINE)[y18],
        "yorient": torch.randint(0, 4, (size,), generator=generator),
        "ycomposite": torch.randint(0, len(COMPOSITE_CLASSES), (size,), generator=generator),
    }
    padding = torch.arange(FRAMES) < torch.arange(size).unsqueeze(1) % 3
    for column, classes in FRAME_LABELS.items():
        labels = torch.randint(0, len(classes), (size, FRAMES), generator=generator)
        batch[f"y{column}"] = labels.masked_fill(padding, -1)
    return batch


def kit_features(task: Task, seed: int | None = None) -> Tensor:
    """Random head input of the task's level: ``[BATCH, IN_DIM]`` or per frame
    ``[BATCH, FRAMES, IN_DIM]``."""
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    shape = (BATCH, FRAMES, IN_DIM) if task.level == "frame" else (BATCH, IN_DIM)
    return torch.randn(shape, generator=generator)


class TaskContract(PluginContract):
    """Checks of a task plugin; override the ``plugin_name`` fixture."""

    kind = "task"

    @pytest.fixture
    def build(
        self, plugin_name: str, plugin_options: dict[str, Any], plugin_modules: Sequence[str]
    ) -> Build:
        def build() -> Task:
            torch.manual_seed(0)
            return build_task(plugin_name, modules=plugin_modules, **plugin_options)

        return build

    @pytest.fixture
    def tasks(self, build: Build, spec: PluginSpec, plugin_modules: Sequence[str]) -> list[Task]:
        """The task and the tasks it declares it depends on (built as registered)."""
        depends = getattr(spec, "depends_on", ())
        return [build(), *(build_task(d, modules=plugin_modules) for d in depends)]

    def test_the_factory_builds_a_named_task(self, build: Build, plugin_name: str) -> None:
        task = build()
        assert isinstance(task, Task), (
            f"the factory returned a {type(task).__name__}: a task plugin must build a "
            "cmi_core.Task"
        )
        assert task.name == plugin_name, (
            f"the task is named {task.name!r}, registered as {plugin_name!r}: the factory must "
            "pass its name argument on to Task.__init__"
        )

    def test_the_task_has_the_level_its_spec_declares(self, build: Build, spec: PluginSpec) -> None:
        declared, built = getattr(spec, "level", "sequence"), build().level
        assert built == declared, (
            f"TaskSpec(level={declared!r}) but the task's level is {built!r}: the network "
            "gives a head the input of the task's level and cmi check reads the spec's"
        )

    def test_the_head_gives_one_row_of_logits_per_sequence(self, build: Build) -> None:
        task = build()
        head = task.build_head(IN_DIM, 0.0)
        if head is None:
            pytest.skip("the task has no head")
        logits = task.logits(head(kit_features(task)))
        assert logits.shape[0] == BATCH and torch.isfinite(logits).all(), (
            f"logits of shape {tuple(logits.shape)} for a batch of {BATCH}: the head must give "
            "finite logits with the batch first"
        )
        if task.level == "frame":
            assert logits.shape[1] == FRAMES, (
                f"logits of shape {tuple(logits.shape)} for {FRAMES} frames: a per-frame "
                "task's head must give logits for every frame, [B, T, ...]"
            )
        target = task.target(kit_batch())
        assert target is not None and target.shape[0] == BATCH, (
            "a task with a head must read a target with the batch first from the batch"
        )

    def test_a_frame_loss_skips_frames_without_a_label(self, tasks: list[Task]) -> None:
        task, batch = tasks[0], kit_batch()
        if task.level != "frame":
            pytest.skip("a sequence-level task")
        outputs, _ = _outputs(tasks)
        unknown = task.target(batch) < 0
        changed = {**outputs, task.name: outputs[task.name].masked_fill(unknown[..., None], 1e4)}
        with torch.no_grad():
            torch.testing.assert_close(
                task.loss(changed, batch),
                task.loss(outputs, batch),
                msg=lambda detail: (
                    "the logits of frames labelled -1 (padding, unknown) changed the loss: a "
                    "per-frame loss must count only the frames with a known label. " + detail
                ),
            )

    def test_the_loss_trains_the_heads_it_reads(self, tasks: list[Task]) -> None:
        outputs, parameters = _outputs(tasks)
        loss = _loss(tasks[0], outputs, kit_batch())
        assert loss.shape == () and torch.isfinite(loss), (
            f"the loss is {loss!r}: it must be a finite scalar"
        )
        loss.backward()
        reached = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in parameters]
        assert reached and any(reached), (
            "the loss sends no gradient to the head(s) it reads: it must be computed from the "
            "outputs it is given, without detaching them"
        )

    def test_the_loss_reads_only_the_outputs_it_declares(
        self, tasks: list[Task], spec: PluginSpec
    ) -> None:
        outputs, _ = _outputs(tasks)
        allowed = {spec.name, *getattr(spec, "depends_on", ())}
        try:
            tasks[0].loss(_Declared(outputs, allowed), kit_batch())
        except _Undeclared as exc:
            pytest.fail(
                f"the loss reads the output {exc.args[0]!r}, which it does not declare: name "
                "the tasks it reads in TaskSpec(depends_on=...) so a config without them is "
                "refused"
            )

    def test_the_loss_is_mixup_aware(self, tasks: list[Task]) -> None:
        task = tasks[0]
        batch = kit_batch()
        if task.target(batch) is None:
            pytest.skip("the task reads no target")
        with torch.no_grad():
            outputs, _ = _outputs(tasks)
            perm = torch.arange(BATCH - 1, -1, -1)
            swapped = {k: v[perm] for k, v in batch.items()}
            mixed = task.loss(
                outputs, {**batch, "mix_index": perm, "mix_lambda": torch.tensor(0.0)}
            )
            expected = task.loss(outputs, swapped)
        torch.testing.assert_close(
            mixed,
            expected,
            msg=lambda detail: (
                "with mix_lambda = 0 the loss must be the loss of the partners' targets "
                "(lam * L(y) + (1 - lam) * L(y[mix_index]), docs/writing-a-plugin.md). " + detail
            ),
        )

    def test_a_predicting_task_has_a_head(self, build: Build, spec: PluginSpec) -> None:
        if getattr(spec, "predicts", False):
            assert build().build_head(IN_DIM, 0.0) is not None, (
                "TaskSpec(predicts=True) but the task builds no head: only a head can be read "
                "at prediction time"
            )

    def test_the_metric_is_a_finite_number(self, tasks: list[Task]) -> None:
        task = tasks[0]
        if task.metric_name is None:
            pytest.skip("the task declares no validation metric")
        outputs, _ = _outputs(tasks)
        value = task.metric(outputs[task.name].detach(), task.target(kit_batch()))
        assert isinstance(value, float) and value == value, (
            f"metric() returned {value!r}: it must be a float (logged as "
            f"val/task/{task.name}/{task.metric_name})"
        )


def _loss(task: Task, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
    """The task's loss; a check skips when it reads an output no declared task gives (the
    fault of test_the_loss_reads_only_the_outputs_it_declares, reported there)."""
    try:
        return task.loss(outputs, batch)
    except KeyError as exc:
        if exc.args and exc.args[0] not in outputs and exc.args[0] not in batch:
            pytest.skip(f"the loss reads the undeclared output {exc.args[0]!r}")
        raise


def _outputs(tasks: Sequence[Task]) -> tuple[dict[str, Tensor], list[torch.nn.Parameter]]:
    """The logits of every task with a head on random features, and the heads' parameters."""
    outputs, parameters = {}, []
    for task in tasks:
        head = task.build_head(IN_DIM, 0.0)
        if head is not None:
            outputs[task.name] = task.logits(head(kit_features(task, seed=0)))
            parameters += list(head.parameters())
    return outputs, parameters


class _Undeclared(KeyError):
    """An output was read that the task does not declare."""


class _Declared(Mapping[str, Tensor]):
    """The outputs, refusing any key but the task's own and those of its dependencies."""

    def __init__(self, outputs: Mapping[str, Tensor], allowed: set[str]) -> None:
        self._outputs, self._allowed = outputs, allowed

    def __getitem__(self, key: str) -> Tensor:
        if key not in self._allowed:
            raise _Undeclared(key)
        return self._outputs[key]

    def __iter__(self) -> Any:
        return (k for k in self._outputs if k in self._allowed)

    def __len__(self) -> int:
        return sum(1 for _ in self)
