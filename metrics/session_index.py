"""A web-UI session's index page: one row per test with its start, duration, shape, calls, failures,
verdict and a link to its report, written into the session's folder (core/results.py's layout).

The page is a function of the folder: each test folder's run.json and whether its report.html
exists, so it can be rewritten at any moment (a test ended, its report was built, the session quit)
and says the truth about a test that is still running or whose report was never written. One
self-contained HTML file (no script, no remote asset); every text from the run is escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from core.results import (
    REPORT_HTML,
    RUN_JSON,
    SESSION_INDEX_HTML,
    ResultsFileError,
    RunInfo,
    session_test_folders,
    write_atomically,
)


@dataclass(frozen=True)
class TestRow:
    """One test as the index shows it."""

    folder: str
    started: str
    duration: str
    shape: str
    calls: str
    failures: str
    verdict: str
    passed: bool | None  # None: no verdict either way (running, nothing to judge)
    report: str | None  # the link, relative to the session folder; None without a report

    __test__ = False  # not a pytest class, whatever imports it


def verdict_of(info: RunInfo) -> tuple[str, bool | None]:
    """A few words on how the test went, and whether that is a pass (None: neither)."""
    if info.ended_at is None:
        return "running", None
    notes: list[str] = []
    passed: bool | None = None
    if info.slo:
        failed = sum(gate.passed is not True for gate in info.slo)
        passed = failed == 0
        notes.append(f"{failed} of {len(info.slo)} SLO gates failed" if failed else "SLO gates passed")
    elif info.slo_error:
        notes.append("SLO gates not judged")
    if info.capacity is not None:
        found = info.capacity.get("capacity_rps")
        notes.append(f"capacity {found:g} requests/s" if found is not None else "no capacity found")
        passed = found is not None if passed is None else passed and found is not None
    calls = info.llm.requests if info.llm else 0
    failures = info.llm.failures if info.llm else 0
    if not calls:
        notes.append("nothing measured")
        passed = False
    elif not info.slo and info.capacity is None:
        notes.append(f"{failures:,} failed calls" if failures else "no failed call")
        passed = failures == 0
    if info.budget is not None and info.budget.reached:
        notes.append("stopped by the budget")
    if info.interrupted:
        notes.append(f"interrupted: {info.interrupted}")
    if info.emulator_died is not None:
        notes.append("the emulator died")
        passed = False
    if info.lost_workers:
        notes.append(f"{len(info.lost_workers)} worker(s) lost")
        passed = False
    return "; ".join(notes), passed


def row_of(folder: Path) -> TestRow:
    """The index row of one test folder; a run.json that cannot be read says so in the row."""
    report = f"{quote(folder.name)}/{REPORT_HTML}" if (folder / REPORT_HTML).is_file() else None
    try:
        info = RunInfo.read(folder / RUN_JSON)
    except (ResultsFileError, OSError) as exc:
        return TestRow(folder.name, "", "", "", "", "", f"run.json unreadable: {exc}", False, report)
    started, ended = info.started, info.ended
    duration = f"{ended - started:,.0f} s" if started is not None and ended is not None else ""
    verdict, passed = verdict_of(info)
    return TestRow(
        folder=folder.name,
        started=(info.started_at or "").replace("T", " ").removesuffix("+00:00"),
        duration=duration,
        shape=info.shape.name if info.shape is not None else "none",
        calls=f"{info.llm.requests:,}" if info.llm else "",
        failures=f"{info.llm.failures:,}" if info.llm else "",
        verdict=verdict,
        passed=passed,
        report=report,
    )


_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #1d2330; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid #dde1ea; }
th { background: #f3f5f9; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.pass td.verdict { color: #17692f; }
tr.fail td.verdict { color: #a4161a; font-weight: 600; }
.muted { color: #6b7385; }
"""


def render(session: Path, rows: list[TestRow]) -> str:
    """The index page's HTML."""
    esc = html.escape
    lines = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Web-UI session {esc(session.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Web-UI session {esc(session.name)}</h1>",
    ]
    if not rows:
        lines.append('<p class="muted">No test has been started in this session yet.</p>')
    else:
        lines.append(
            f"<p>{len(rows)} test(s). Each has its own folder, run.json and report.</p>"
            "<table><thead><tr><th>Test</th><th>Started (UTC)</th><th>Duration</th><th>Shape</th>"
            "<th>Calls</th><th>Failures</th><th>Verdict</th><th>Report</th></tr></thead><tbody>"
        )
        for row in rows:
            css = "" if row.passed is None else "pass" if row.passed else "fail"
            if row.report:
                link = f'<a href="{esc(row.report)}">report</a>'
            else:
                link = f'<span class="muted">{"when it ends" if row.verdict == "running" else "not written"}</span>'
            lines.append(
                f'<tr class="{css}"><td>{esc(row.folder)}</td><td>{esc(row.started)}</td>'
                f'<td class="number">{esc(row.duration)}</td><td>{esc(row.shape)}</td>'
                f'<td class="number">{esc(row.calls)}</td><td class="number">{esc(row.failures)}</td>'
                f'<td class="verdict">{esc(row.verdict)}</td><td>{link}</td></tr>'
            )
        lines.append("</tbody></table>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def write_session_index(session: Path) -> Path:
    """Write (or rewrite) index.html in a web-UI session's folder from its test folders."""
    rows = [row_of(folder) for folder in session_test_folders(session)]
    return write_atomically(session / SESSION_INDEX_HTML, render(session, rows))
