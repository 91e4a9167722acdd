"""The report, built in its own process: `python -m reports FOLDER`.

Its own process and session, so a Ctrl-C stops the wait for it at once and the terminal's Ctrl-C
never reaches the child itself; the main greenlet (or a session's reporter greenlet) waits for it
cooperatively.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger("gemini_locust")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A web-UI session builds a test's report while the next test may already run: the report yields
# the CPU to the load generator, whose timings it would otherwise inflate.
BACKGROUND_NICENESS = 10


def build_report_in_child(folder: Path, background: bool = False) -> Path | None:
    """`python -m reports FOLDER` in its own process and session, which the main greenlet waits
    for cooperatively: a Ctrl-C (delivered to the main greenlet) stops the wait and the child at
    once, and the terminal's Ctrl-C never reaches the child itself. The report path, or None."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-m", "reports", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=(lambda: os.nice(BACKGROUND_NICENESS)) if background else None,
    )
    try:
        out, err = child.communicate()
    except BaseException:
        child.kill()
        child.wait()
        raise
    for line in err.splitlines():
        if line.startswith("warning: "):
            logger.warning("report: %s", line.removeprefix("warning: "))
        elif line.strip():
            logger.error("report not written: %s", line.removeprefix("error: "))
    lines = out.strip().splitlines()
    if child.returncode != 0 or not lines:
        return None
    return Path(lines[-1])
