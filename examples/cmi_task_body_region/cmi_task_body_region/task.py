"""The ``body_region`` task itself (imports torch: loaded when the task is built)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

import cmi_core

REGIONS = ("head", "face", "neck", "leg", "away")
REGION_OF = {  # by name, never by index: GESTURES is sorted, not grouped
    "Above ear - pull hair": "head",
    "Cheek - pinch skin": "face",
    "Eyebrow - pull hair": "face",
    "Eyelash - pull hair": "face",
    "Forehead - pull hairline": "face",
    "Forehead - scratch": "face",
    "Glasses on/off": "face",
    "Pull air toward your face": "face",
    "Drink from bottle/cup": "face",
    "Neck - pinch skin": "neck",
    "Neck - scratch": "neck",
    "Write name on leg": "leg",
    "Scratch knee/leg skin": "leg",
    "Pinch knee/leg skin": "leg",
    "Wave hello": "away",
    "Write name in air": "away",
    "Text on phone": "away",
    "Feel around in tray and pull out an object": "away",
}


class BodyRegionTask(cmi_core.ClassificationTask):
    """Cross-entropy over the 5 regions (mixup-aware, ``[loss] label_smoothing``); validation
    accuracy, logged as ``val/task/body_region/accuracy``."""

    n_classes = len(REGIONS)
    hidden = 64

    def target(self, batch: Mapping[str, Tensor]) -> Tensor:
        table = torch.tensor([REGIONS.index(REGION_OF[g]) for g in cmi_core.GESTURES])
        y18 = batch["y18"]
        return torch.where(y18 >= 0, table.to(y18.device)[y18.clamp(min=0)], -1)
