"""Each test (or module) starts its own emulator on port 0, so tests can run in parallel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.launcher import EmulatorProcess


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """A fast default-profile emulator shared by one test module (time scale 0.01)."""
    emu = EmulatorProcess(time_scale=0.01, seed=7)
    emu.start()
    yield emu
    emu.stop()
    emu.close_logs()


@pytest.fixture()
def start_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Factory for tests that need their own profile/config; every one is stopped at teardown.

    `config_dict={...}` is written to a temporary JSON file and passed as --config.
    """
    started: list[EmulatorProcess] = []

    def start(config_dict: dict[str, Any] | None = None, **kwargs: Any) -> EmulatorProcess:
        kwargs.setdefault("time_scale", 0.01)
        kwargs.setdefault("seed", 11)
        if config_dict is not None:
            path = tmp_path_factory.mktemp("emu") / "config.json"
            path.write_text(json.dumps(config_dict))
            kwargs["config"] = str(path)
        emu = EmulatorProcess(**kwargs)
        emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
        emu.close_logs()
