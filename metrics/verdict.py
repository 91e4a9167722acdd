"""The process's exit code: one pure function over everything that decides it.

    None    nothing decided it: Locust's own rule applies (--exit-code-on-error, 1, when any call
            failed, else 0)
    0       the SLO gates passed (failures within error_rate's limit do not fail the run), or a
            capacity search found a capacity
    2       start-up failed after init had returned (web UI, workers): a bad option, a preparation
            or emulator failure. (A failure inside init exits 2 at once, before any verdict.)
    3       an SLO gate failed, or a capacity search found no capacity
    128+N   signal N ended the run before any call completed: nothing was measured

A run that its cost budget stopped ended as it was asked to: the budget never changes the code.

Precedence, as the callers apply it in order of the run's life: a start-up failure ends the
process before anything is judged; an interrupt with nothing measured sets 128+N; the SLO verdict
then overrides it when it fails (or when a capacity search decides), and a passing SLO verdict
leaves an earlier code in place.
"""

from __future__ import annotations

START_UP_EXIT_CODE = 2
SLO_EXIT_CODE = 3
SIGNAL_EXIT_BASE = 128


def exit_code(
    previous: int | None,
    *,
    start_up_failed: bool = False,
    interrupted_by: int | None = None,
    slo_passed: bool | None = None,
    capacity_found: bool | None = None,
) -> int | None:
    """The exit code to set, given the one already set (`previous`) and what happened.

    start_up_failed: start-up failed after init returned.
    interrupted_by: the signal number that ended the run before any call completed.
    slo_passed: whether every --slo gate passed; None when no gates were judged (none given, or a
        bad expression that was reported instead).
    capacity_found: whether a capacity search found a capacity; None when the run was not one.
        A capacity search breaks its SLO on purpose at its last step, so finding a capacity, not
        the whole run's gates, is its verdict.
    """
    if start_up_failed:
        return START_UP_EXIT_CODE
    code = previous
    if interrupted_by is not None:
        code = SIGNAL_EXIT_BASE + interrupted_by
    if slo_passed is None:
        return code
    if capacity_found is not None:
        return 0 if capacity_found else SLO_EXIT_CODE
    if not slo_passed:
        return SLO_EXIT_CODE
    return 0 if code is None else code
