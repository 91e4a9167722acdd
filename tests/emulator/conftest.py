"""Each test (or module) starts its own emulator on port 0, so tests can run in parallel.

The `emulator` (one per module) and `start_emulator` (a factory, stopped at teardown) fixtures are
tests/conftest.py's; this folder's shared emulator uses its own seed.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def emulator_options() -> dict[str, Any]:
    return {"time_scale": 0.01, "seed": 7}
