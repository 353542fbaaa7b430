"""The test-side view of the gateway stand-in in ``cmi_core/predict/gateway.py``: the same
replay, plus a record of every server the notebook under test created."""

from __future__ import annotations

from typing import ClassVar

from cmi_core.predict.gateway import LocalInferenceServer, PredictFn, gateway_calls

__all__ = ["FakeInferenceServer", "gateway_calls"]


class FakeInferenceServer(LocalInferenceServer):
    """``LocalInferenceServer`` that remembers its instances for the test to read."""

    instances: ClassVar[list[FakeInferenceServer]] = []

    def __init__(self, predict: PredictFn) -> None:
        super().__init__(predict)
        FakeInferenceServer.instances.append(self)
