"""Vertex AI sign-in: the access-token renewals of the run (core/results.AUTH_LOG).

A renewal runs in the background, ahead of the token's expiry, so it is never inside a call's
latency; a call that found the token expired waited for the renewal before its clock started.
Both are shown here, so a run whose token endpoint was slow or refusing says so.
"""

from __future__ import annotations

import pandas as pd

from core.quantiles import nearest_rank_quantiles
from reports.html import Table, fmt_ms, fmt_number


def auth_part(auth: pd.DataFrame | None) -> tuple[list[str], Table | None, list[str]]:
    """(notes, table, warnings) about the run's token renewals; nothing for a run without them
    (no table for a test that renewed nothing)."""
    if auth is None or auth.empty:
        return [], None, []
    events = auth["event"].astype(str)
    durations = pd.to_numeric(auth["duration_ms"], errors="coerce")
    rows = []
    for event, label in (
        ("refresh", "renewed"),
        ("refresh_failed", "renewal failed"),
        ("wait", "call waited"),
    ):
        chosen = durations[events == event].dropna()
        if chosen.empty:
            continue
        p50, p99, top = nearest_rank_quantiles(chosen, (0.5, 0.99, 1.0))
        rows.append([label, fmt_number(len(chosen), 0), fmt_ms(p50), fmt_ms(p99), fmt_ms(top)])
    processes = auth["node"].astype(str).nunique() if "node" in auth else 0
    fetched = int((events == "refresh").sum())
    notes = [
        f"Vertex AI sign-in: {fetched:,} access token(s) fetched by {processes:,} process(es), each "
        "renewed in the background before it expired; a renewal is never part of a call's latency."
        if fetched
        else f"Vertex AI sign-in: {processes:,} process(es) ran this test on the token they had fetched "
        "before it; none needed renewing during the test."
    ]
    warnings = []
    failed = auth[events == "refresh_failed"]
    if not failed.empty:
        last = str(failed["detail"].iloc[-1]) if "detail" in failed else ""
        warnings.append(
            f"{len(failed):,} access-token renewal(s) failed (last: {last}); calls sent with an expired "
            "token are refused with 401 and counted as client errors."
        )
    waits = int((events == "wait").sum())
    if waits:
        warnings.append(
            f"{waits:,} call(s) found the access token expired and waited for its renewal before their "
            "clock started: the renewal ran late (a failing token endpoint or a busy generator)."
        )
    table = (
        Table(
            columns=("Event", "Count", "p50", "p99", "max"),
            numeric=(False, True, True, True, True),
            rows=rows,
            caption="Access-token renewals (ms)",
        )
        if rows
        else None
    )
    return notes, table, warnings
