from __future__ import annotations

# Locust gevent-patches the standard library when imported. Patch first, before any test module
# imports ssl through an SDK, so the whole tree runs in one consistently patched process.
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


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
