"""Transports driven directly (construct, call .call(spec, CallTimer())) against real emulators."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator.launcher import EmulatorProcess


@pytest.fixture(scope="module")
def start_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmulatorProcess]]:
    """Factory: an emulator with a profile and a config dict, stopped when the module ends."""
    started: list[EmulatorProcess] = []

    def start(profile: str = "fast", config: dict[str, Any] | None = None, **kwargs: Any) -> EmulatorProcess:
        kwargs.setdefault("time_scale", 0.05)
        kwargs.setdefault("seed", 5)
        if config is not None:
            path = tmp_path_factory.mktemp("emu") / "config.json"
            path.write_text(json.dumps(config))
            kwargs["config"] = str(path)
        emu = EmulatorProcess(profile=profile, **kwargs)
        emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
        emu.close_logs()
