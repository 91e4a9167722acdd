"""Ctrl-C or SIGTERM before the suite's own handlers exist: one line and exit 128+signal.

Locust imports for about half a second (gevent, Flask, its runners) before it loads a locustfile,
and Python's default answer to Ctrl-C there is a KeyboardInterrupt traceback from deep inside an
import. Nothing has been started at that point, so there is nothing to clean up: print one line
and leave. `make setup` installs a one-line .pth file into the virtualenv that calls install() at
interpreter start for `locust` commands only (see GUARD_PTH_LINE); the locustfile also calls it when
it is imported, which covers environments set up without make. init replaces these handlers with
the suite's own (lifecycle.startup).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

# What `make setup` writes into <venv site-packages>/gemini_locust_guard.pth: runs at interpreter
# start, costs nothing for any command that is not Locust.
GUARD_PTH_LINE = (
    "import sys; any(a == 'locust' or a.endswith('/locust') for a in sys.orig_argv[1:3]) "
    "and __import__('lifecycle.guard').guard.install()\n"
)


def _stop(signum: int, _frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    os.write(2, f"{name} while Locust was loading: stopped before start-up\n".encode())
    os._exit(128 + signum)


def install() -> None:
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)


def write_pth(site_packages: str) -> str:
    """Write the .pth hook (for `make setup`); returns its path."""
    path = os.path.join(site_packages, "gemini_locust_guard.pth")
    with open(path, "w", encoding="utf-8") as out:
        out.write(GUARD_PTH_LINE)
    return path


if __name__ == "__main__":
    import sysconfig

    print(write_pth(sys.argv[1] if len(sys.argv) > 1 else sysconfig.get_path("purelib")))
