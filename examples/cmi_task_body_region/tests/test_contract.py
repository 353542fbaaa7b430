"""The cmi-trainer contract kit, run on the installed ``body_region`` task."""

import pytest
import torch

import cmi_core
from cmi_core.testing import TaskContract


class TestBodyRegion(TaskContract):
    @pytest.fixture
    def plugin_name(self):
        return "body_region"


def test_each_gesture_maps_to_its_region_by_name():
    task = cmi_core.build_task("body_region")
    neck = cmi_core.GESTURES.index("Neck - scratch")
    leg = cmi_core.GESTURES.index("Write name on leg")
    target = task.target({"y18": torch.tensor([neck, leg, -1])})
    assert target.tolist() == [2, 3, -1]
