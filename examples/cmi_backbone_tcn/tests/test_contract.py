"""The cmi-trainer backbone contract kit, run on the installed ``tcn`` plugin."""

import pytest
import torch

import cmi_core
from cmi_core.testing import BackboneContract


class TestTcn(BackboneContract):
    @pytest.fixture
    def plugin_name(self):
        return "tcn"


class TestTcnWide(TestTcn):
    @pytest.fixture
    def plugin_options(self):
        return {"channels": 16, "kernel_size": 3, "levels": 4}


def test_the_receptive_field_grows_with_the_levels():
    """A frame's output depends on frames up to sum(dilation * (k - 1) / 2) away."""
    backbone = cmi_core.build_backbone("tcn", 3, levels=2, kernel_size=3, dropout=0.0).eval()
    x = torch.zeros(1, 16, 3, requires_grad=True)
    mask = torch.ones(1, 16, dtype=torch.bool)
    h = backbone.stem(backbone.input_norm(x, mask)).transpose(1, 2)
    for block in backbone.blocks:
        h = block(h, mask)
    h[0, :, 8].sum().backward()
    reached = (x.grad[0].abs().sum(dim=1) > 0).nonzero().flatten().tolist()
    assert reached == list(range(8 - 3, 8 + 4))  # 1 + 2 frames each side
