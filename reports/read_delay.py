"""How late the load generator read the replies: the kernel's arrival stamps against read times.

A call's times are taken from the kernel's receive stamps where its socket gave them (the request
log's `arrival_clock` "kernel"); then `read_delay_ms` says how long after the bytes arrived the
generator read them, and the latency figures do not include it. Where there was no stamp ("read":
the legacy SDK over https, a proxy, a platform without SO_TIMESTAMPNS), the times are read times
and hold that lateness.
"""

from __future__ import annotations

import pandas as pd

from core.quantiles import nearest_rank_quantiles
from reports.html import Table, fmt_ms, fmt_number, fmt_share

KERNEL = "kernel"
READ = "read"
# A p99 read delay from here up: the generator, not the service, is what a read-time TTFT measures.
LATE_READ_MS = 100.0


def read_delay_part(requests: pd.DataFrame | None) -> tuple[list[str], Table | None, list[str]]:
    """(notes, table per transport, warnings) about read delay; nothing for a log that predates it."""
    if requests is None or "arrival_clock" not in requests or requests.empty:
        return [], None, []
    clocks = requests["arrival_clock"].astype(str)
    timed = requests[clocks.isin((KERNEL, READ))]
    if timed.empty:
        return [], None, []
    transports = timed["transport"].astype(str) if "transport" in timed else pd.Series("", index=timed.index)
    rows, warnings = [], []
    for transport, part in timed.groupby(transports, sort=True):
        stamped = part["arrival_clock"].astype(str) == KERNEL
        delays = pd.to_numeric(part["read_delay_ms"], errors="coerce") if "read_delay_ms" in part else None
        p50, p95, p99, top = (
            nearest_rank_quantiles(delays[stamped], (0.5, 0.95, 0.99, 1.0))
            if delays is not None
            else [float("nan")] * 4
        )
        rows.append(
            [
                str(transport) or "–",
                fmt_number(len(part), 0),
                fmt_share(float(stamped.mean())),
                fmt_ms(p50),
                fmt_ms(p95),
                fmt_ms(p99),
                fmt_ms(top),
            ]
        )
        if p99 == p99 and p99 >= LATE_READ_MS:
            warnings.append(
                f"The load generator read {transport} replies late: p99 {p99:,.0f} ms after their bytes "
                "arrived. TTFT and e2e are taken at arrival, so this wait is not in them; but a generator "
                "this busy also sends late, and dates chunks that waited together by the last of them: "
                "add workers (--processes) before trusting the run's figures."
            )
    notes = [
        "Read delay: how long after a reply's bytes arrived (the kernel's receive stamp) the generator "
        "read them, at worst over each call's chunks. TTFT, chunk gaps and e2e are taken at arrival, "
        "so a busy generator does not inflate them."
    ]
    unstamped = int((clocks == READ).sum())
    if unstamped:
        notes.append(
            f"{unstamped:,} call(s) were timed when read, not when their bytes arrived: the legacy SDK "
            "over https, a proxy's connections, and platforms without SO_TIMESTAMPNS give the reader no "
            "kernel stamp, so their times include the generator's own lateness (the event-loop lag "
            "above bounds it)."
        )
    table = Table(
        columns=("Transport", "Calls", "Timed at arrival", "Read delay p50", "p95", "p99", "max"),
        numeric=(False, True, True, True, True, True, True),
        rows=rows,
        caption="Read delay per transport (ms), over the calls timed from kernel stamps",
    )
    return notes, table, warnings
