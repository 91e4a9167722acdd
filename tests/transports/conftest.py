"""Transports driven directly (construct, call .call(spec, CallTimer())) against real emulators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.launcher import EmulatorProcess


@pytest.fixture(scope="module")
def start_emulator(
    tmp_path_factory: pytest.TempPathFactory, emulator_starter: type
) -> Iterator[Callable[..., EmulatorProcess]]:
    """Factory: an emulator with a profile and a config dict, stopped when the module ends."""
    starter = emulator_starter(tmp_path_factory, time_scale=0.05, seed=5)

    def start(profile: str = "fast", config: dict[str, Any] | None = None, **kwargs: Any) -> EmulatorProcess:
        return starter(config_dict=config, profile=profile, **kwargs)

    yield start
    starter.close()
