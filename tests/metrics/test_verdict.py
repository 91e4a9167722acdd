"""The exit code: one pure function over what decides it, case by case, in the order a run lives."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from metrics.verdict import (
    CODES,
    NOTHING_MEASURED_EXIT_CODE,
    RUN_BROKEN_EXIT_CODE,
    SLO_EXIT_CODE,
    START_UP_EXIT_CODE,
    exit_code,
)

SIGINT, SIGTERM = int(signal.SIGINT), int(signal.SIGTERM)
NOTHING, BROKEN = NOTHING_MEASURED_EXIT_CODE, RUN_BROKEN_EXIT_CODE
ROOT = Path(__file__).resolve().parents[2]


def test_the_codes_users_rely_on() -> None:
    # Documented in the README, the CI examples and the tests that run real processes.
    assert (START_UP_EXIT_CODE, SLO_EXIT_CODE, NOTHING, BROKEN) == (2, 3, 5, 6)


@pytest.mark.parametrize("doc", ["README.md", "docs/DESIGN.md"])
def test_every_code_is_documented_in_one_table(doc: str) -> None:
    """README and DESIGN.md show the same table: every code of metrics/verdict.py, nothing else."""
    text = (ROOT / doc).read_text()
    rows = re.findall(r"^\| `([0-9+N]+)` \| (.+?) \|$", text, flags=re.M)
    assert [code for code, _ in rows] == [code for code, _ in CODES], rows


@pytest.mark.parametrize(
    ("previous", "kwargs", "expected"),
    [
        # Nothing decided: Locust's own rule (1 on failed calls, else 0) applies.
        (None, {}, None),
        (None, {"slo_passed": None, "capacity_found": None}, None),
        # Passing gates are the verdict: failures within error_rate's limit do not fail the run...
        (None, {"slo_passed": True}, 0),
        # ...but never hide a code already set (an interrupt with nothing measured).
        (128 + SIGINT, {"slo_passed": True}, 128 + SIGINT),
        # A failing gate fails the run, whatever was set before.
        (None, {"slo_passed": False}, SLO_EXIT_CODE),
        (0, {"slo_passed": False}, SLO_EXIT_CODE),
        (128 + SIGTERM, {"slo_passed": False}, SLO_EXIT_CODE),
        # A capacity search: finding a capacity is its verdict, not the gates it broke on purpose.
        (None, {"slo_passed": False, "capacity_found": True}, 0),
        (None, {"slo_passed": True, "capacity_found": False}, SLO_EXIT_CODE),
        (128 + SIGINT, {"slo_passed": False, "capacity_found": True}, 0),
        # Without gates judged (none given, or a bad --slo that was reported) nothing is decided,
        # even for a capacity search.
        (None, {"capacity_found": True}, None),
        (1, {"capacity_found": False}, 1),
        # Interrupted before any call completed: 128 + the signal.
        (None, {"interrupted_by": SIGINT}, 128 + SIGINT),
        (None, {"interrupted_by": SIGTERM}, 128 + SIGTERM),
        # ...which failing gates then override, and passing ones keep.
        (None, {"interrupted_by": SIGTERM, "slo_passed": False}, SLO_EXIT_CODE),
        (None, {"interrupted_by": SIGTERM, "slo_passed": True}, 128 + SIGTERM),
        # A start-up failure after init returned ends the process with 2, before anything is judged.
        (None, {"start_up_failed": True}, START_UP_EXIT_CODE),
        (None, {"start_up_failed": True, "slo_passed": True}, START_UP_EXIT_CODE),
        (0, {"start_up_failed": True, "interrupted_by": SIGINT}, START_UP_EXIT_CODE),
        # ...and nothing later replaces it: a worker refused mid-start, then the gates are judged.
        (START_UP_EXIT_CODE, {"slo_passed": False}, START_UP_EXIT_CODE),
        (START_UP_EXIT_CODE, {"nothing_measured": True}, START_UP_EXIT_CODE),
        (START_UP_EXIT_CODE, {"run_broken": True}, START_UP_EXIT_CODE),
        # A test that ran and measured nothing (not interrupted) is never a success...
        (None, {"nothing_measured": True}, NOTHING),
        (0, {"nothing_measured": True}, NOTHING),
        # ...an interrupt says more about why, and keeps its code...
        (128 + SIGINT, {"nothing_measured": True}, 128 + SIGINT),
        (None, {"interrupted_by": SIGTERM, "nothing_measured": True}, 128 + SIGTERM),
        # ...and the gates, which fail without data, say 3 as with an interrupt.
        (NOTHING, {"slo_passed": False}, SLO_EXIT_CODE),
        (NOTHING, {"slo_passed": None}, NOTHING),
        # A lost worker or a dead emulator broke the run: 6, whatever the gates say...
        (None, {"run_broken": True}, BROKEN),
        (None, {"run_broken": True, "slo_passed": True}, BROKEN),
        (None, {"run_broken": True, "slo_passed": False}, BROKEN),
        (None, {"run_broken": True, "slo_passed": False, "capacity_found": True}, BROKEN),
        (BROKEN, {"slo_passed": True}, BROKEN),
        (BROKEN, {"slo_passed": False, "capacity_found": False}, BROKEN),
        (BROKEN, {"nothing_measured": True}, BROKEN),
        (BROKEN, {"interrupted_by": SIGINT}, BROKEN),
        (128 + SIGTERM, {"run_broken": True}, BROKEN),
        # ...but a start-up failure still comes first.
        (BROKEN, {"start_up_failed": True}, START_UP_EXIT_CODE),
    ],
)
def test_exit_code(previous: int | None, kwargs: dict, expected: int | None) -> None:
    assert exit_code(previous, **kwargs) == expected
