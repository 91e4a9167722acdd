"""The process's exit code: one pure function over everything that decides it.

    None    nothing decided it: Locust's own rule applies (--exit-code-on-error, 1, when any call
            failed, else 0)
    0       the SLO gates passed (failures within error_rate's limit do not fail the run), or a
            capacity search found a capacity
    2       start-up failed after init had returned (web UI, workers): a bad option, a preparation
            or emulator failure, a worker that refused to start (its reason is printed on the
            master). (A failure inside init exits 2 at once, before any verdict.)
    3       an SLO gate failed, or a capacity search found no capacity
    5       nothing was measured: the test ran and not one call completed
    6       the run broke: a worker was lost, or the bundled emulator died, mid-run; the results
            cover only part of the load that was asked for
    128+N   signal N ended the run before any call completed: nothing was measured

A run that its cost budget stopped ended as it was asked to: the budget never changes the code.

Precedence, highest first: 2, then 6, then the SLO verdict (3 when it fails; a capacity search's
0 or 3), then 128+N or 5. A passing SLO verdict leaves an earlier code in place. The callers apply
the inputs in the order of the run's life, each call passing the code already set (`previous`):
a start-up failure or a broken run is never overridden by anything later, a failing SLO verdict
overrides an interrupt or "nothing measured", and "nothing measured" never replaces an interrupt.
"""

from __future__ import annotations

START_UP_EXIT_CODE = 2
SLO_EXIT_CODE = 3
NOTHING_MEASURED_EXIT_CODE = 5
RUN_BROKEN_EXIT_CODE = 6
SIGNAL_EXIT_BASE = 128

# (code, meaning) for the documentation (README, docs/DESIGN.md) and the tests that check it.
CODES: tuple[tuple[str, str], ...] = (
    ("0", "all good: every --slo gate passed, or no gate was given and no call failed"),
    ("1", "some call failed and no --slo was given (Locust's --exit-code-on-error)"),
    ("2", "a bad option or input, or a start-up failure (a worker that refused to start)"),
    ("3", "an --slo gate failed, or a capacity search found no capacity"),
    ("5", "nothing was measured: not one call completed"),
    ("6", "the run broke: a worker was lost or the bundled emulator died mid-run"),
    ("128+N", "signal N (130 Ctrl-C, 143 SIGTERM) before any call completed"),
)


def exit_code(
    previous: int | None,
    *,
    start_up_failed: bool = False,
    run_broken: bool = False,
    interrupted_by: int | None = None,
    nothing_measured: bool = False,
    slo_passed: bool | None = None,
    capacity_found: bool | None = None,
) -> int | None:
    """The exit code to set, given the one already set (`previous`) and what happened.

    start_up_failed: start-up failed after init returned (a worker refused to start included).
    run_broken: a worker was lost, or the bundled emulator died, while the test ran.
    interrupted_by: the signal number that ended the run before any call completed.
    nothing_measured: the test ran to its end and not one call completed.
    slo_passed: whether every --slo gate passed; None when no gates were judged (none given, or a
        bad expression that was reported instead).
    capacity_found: whether a capacity search found a capacity; None when the run was not one.
        A capacity search breaks its SLO on purpose at its last step, so finding a capacity, not
        the whole run's gates, is its verdict.
    """
    if start_up_failed or previous == START_UP_EXIT_CODE:
        return START_UP_EXIT_CODE
    if run_broken or previous == RUN_BROKEN_EXIT_CODE:
        return RUN_BROKEN_EXIT_CODE
    code = previous
    if interrupted_by is not None:
        code = SIGNAL_EXIT_BASE + interrupted_by
    elif nothing_measured and code in (None, 0):
        code = NOTHING_MEASURED_EXIT_CODE
    if slo_passed is None:
        return code
    if capacity_found is not None:
        return 0 if capacity_found else SLO_EXIT_CODE
    if not slo_passed:
        return SLO_EXIT_CODE
    return 0 if code is None else code
