"""The report's account of Vertex AI sign-in (reports/auth.py), from auth-*.csv rows."""

from __future__ import annotations

import pandas as pd

from reports.auth import auth_part


def frame(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"timestamp": 1.0 + i, "node": n, "event": e, "duration_ms": d, "detail": x}
            for i, (n, e, d, x) in enumerate(rows)
        ]
    )


def test_renewals_failures_and_waits_are_counted_and_warned_about() -> None:
    notes, table, warnings = auth_part(
        frame(
            ("worker-a-1", "refresh", 12.0, "expires_in_s=3599"),
            ("worker-b-2", "refresh", 30.0, "expires_in_s=3599"),
            ("worker-a-1", "refresh_failed", 5.0, "RefreshError: ('invalid_grant: ...')"),
            ("worker-a-1", "wait", 40.0, ""),
        )
    )
    assert "2 access token(s) fetched by 2 process(es)" in notes[0]
    assert table is not None
    assert [row[:2] for row in table.rows] == [
        ["renewed", "2"],
        ["renewal failed", "1"],
        ["call waited", "1"],
    ]
    assert len(warnings) == 2
    assert "1 access-token renewal(s) failed" in warnings[0] and "invalid_grant" in warnings[0]
    assert "1 call(s) found the access token expired" in warnings[1]


def test_a_test_that_ran_on_an_earlier_token_says_so_and_a_run_without_vertex_says_nothing() -> None:
    notes, table, warnings = auth_part(frame(("local-a-1", "in_force", 0.0, "expires_in_s=3000")))
    assert "ran this test on the token they had fetched before it" in notes[0]
    assert table is None and warnings == []
    assert auth_part(None) == ([], None, [])
