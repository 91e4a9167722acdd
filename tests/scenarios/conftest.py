"""Fixtures for the scenario tests: Environments wired like the locustfile's, against the shared fast
`emulator` of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from locust.env import Environment
from scenario_helpers import make_options

from emulator.launcher import EmulatorProcess
from users.pricing import PriceTable
from users.settings import GeminiSettings
from users.state import use_settings


@pytest.fixture
def make_env(emulator: EmulatorProcess) -> Callable[..., Environment]:
    """A real Locust Environment wired the way the locustfile wires it, against the emulator."""

    def build(user_classes: list[type], **values: Any) -> Environment:
        options = make_options(**values)
        env = Environment(user_classes=list(user_classes), host=emulator.url, parsed_options=options)
        use_settings(env, GeminiSettings.from_options(options, emulator=True), PriceTable.load())
        return env

    return build
