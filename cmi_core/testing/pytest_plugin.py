"""The ``cmi_contract`` pytest plugin (entry point ``pytest11``): registers the marker.

Every contract test carries ``@pytest.mark.cmi_contract``, so ``pytest -m cmi_contract`` runs
only the contract checks, also under ``--strict-markers``. Kept free of torch: pytest loads it
in every session of an environment where cmi-trainer is installed.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cmi_contract: a check of the cmi-trainer plugin contract kit (cmi_core.testing)"
    )
