"""Fixtures for the scenario tests: a fast emulator and Environments wired like the locustfile's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from locust.env import Environment
from scenario_helpers import make_options

from emulator.launcher import EmulatorProcess
from users.pricing import PriceTable
from users.settings import GeminiSettings


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(time_scale=0.01, seed=11)
    emu.start()
    yield emu
    emu.stop()
    emu.close_logs()


@pytest.fixture
def make_env(emulator: EmulatorProcess) -> Callable[..., Environment]:
    """A real Locust Environment wired the way the locustfile wires it, against the emulator."""

    def build(user_classes: list[type], **values: Any) -> Environment:
        options = make_options(**values)
        env = Environment(user_classes=list(user_classes), host=emulator.url, parsed_options=options)
        env.gemini_settings = GeminiSettings.from_options(options, emulator=True)
        env.gemini_prices = PriceTable.load()
        return env

    return build
