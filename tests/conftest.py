from __future__ import annotations

# Locust gevent-patches the standard library when imported. Patch first, before any test module
# imports ssl through an SDK, so the whole tree runs in one consistently patched process.
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from emulator.launcher import EmulatorProcess  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright drives it instead of a downloaded one


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The environment for a child Locust: no real keys, no proxies that could route traffic away."""
    env = {k: v for k, v in os.environ.items() if k not in {"GEMINI_API_KEY", "GOOGLE_API_KEY"}}
    env["NO_PROXY"] = "127.0.0.1,localhost,::1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---- bundled emulators on port 0 (so test processes can run in parallel) --------------------------


class EmulatorStarter:
    """Starts emulators with the given defaults and stops every one it started on close().

    `config_dict={...}` is written to a temporary JSON file and passed as the emulator's --config;
    other keywords go to EmulatorProcess (profile, time_scale, seed, config as a path ...).
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, **defaults: Any) -> None:
        self._tmp = tmp_path_factory
        self._defaults = defaults
        self._started: list[EmulatorProcess] = []

    def __call__(self, config_dict: dict[str, Any] | None = None, **kwargs: Any) -> EmulatorProcess:
        kwargs = {**self._defaults, **kwargs}
        if config_dict is not None:
            path = self._tmp.mktemp("emu") / "config.json"
            path.write_text(json.dumps(config_dict))
            kwargs["config"] = str(path)
        emu = EmulatorProcess(**kwargs)
        emu.start()
        self._started.append(emu)
        return emu

    def close(self) -> None:
        for emu in self._started:
            emu.stop()
            emu.close_logs()
        self._started.clear()


@pytest.fixture(scope="session")
def emulator_starter() -> type[EmulatorStarter]:
    """The starter class, for a folder whose own factory fixture needs another scope or defaults:
    `starter = emulator_starter(tmp_path_factory, profile="fast"); yield starter; starter.close()`."""
    return EmulatorStarter


@pytest.fixture()
def start_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorStarter]:
    """Factory for tests that need their own profile or config; every one is stopped at teardown."""
    starter = EmulatorStarter(tmp_path_factory, time_scale=0.01, seed=11)
    yield starter
    starter.close()


@pytest.fixture(scope="module")
def emulator_options() -> dict[str, Any]:
    """EmulatorProcess keywords of the shared `emulator`; a folder's conftest may override them."""
    return {"time_scale": 0.01, "seed": 11}


@pytest.fixture(scope="module")
def emulator(
    tmp_path_factory: pytest.TempPathFactory, emulator_options: dict[str, Any]
) -> Iterator[EmulatorProcess]:
    """A fast default-profile emulator shared by one test module (time scale 0.01)."""
    starter = EmulatorStarter(tmp_path_factory, **emulator_options)
    yield starter()
    starter.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright (a playwright Browser); skips when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: browser checks need Debian's chromium")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()
