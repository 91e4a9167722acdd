"""The generator-health section's read delay: percentiles per transport over the calls timed from
kernel arrival stamps, a note for calls timed when read, a warning when the generator read late,
and nothing for a log that predates the columns."""

from __future__ import annotations

from report_html import section

from reports import build_report


def _calls(transport: str, clock: str, delays: list[float | None]) -> list[dict]:
    return [
        dict(transport=transport, arrival_clock=clock, read_delay_ms=delay, start_time=1_700_000_000.0 + i)
        for i, delay in enumerate(delays)
    ]


def test_read_delay_percentiles_per_transport(request_log) -> None:
    calls = _calls("http", "kernel", [float(n) for n in range(1, 101)])
    calls += _calls("genai", "kernel", [400.0] * 50) + _calls("legacy", "read", [None] * 7)
    html = section(build_report(request_log(calls)).read_text(encoding="utf-8"), "health")
    rows = {row[0]: row for row in _rows(html)}
    # Nearest rank over 1..100 ms: p50 50, p95 95, p99 99, max 100.
    assert rows["http"][1:] == ["100", "100.00%", "50.0", "95.0", "99.0", "100"]
    assert rows["genai"][5] == "400"
    assert rows["legacy"][2] == "0.00%" and rows["legacy"][3] == "–"
    assert "7 call(s) were timed when read" in html
    assert html.count("read genai replies late: p99 400 ms") == 1  # once in its section
    assert "read http replies late" not in html


def test_a_log_without_the_columns_has_no_read_delay(request_log) -> None:
    folder = request_log(_calls("http", "kernel", [5.0]), without=("arrival_clock", "read_delay_ms"))
    assert "Read delay" not in build_report(folder).read_text(encoding="utf-8")


def _rows(html: str) -> list[list[str]]:
    import re

    table = html[html.index("Read delay per transport") :]
    table = table[: table.index("</table>")]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
        if "<td" in row
    ]
