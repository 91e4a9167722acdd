"""Arms compared: one row per run of the same workload with one option changed (`--compare`).

`python -m reports arms DIR1 DIR2 ... [--flag FLAG] -o OUT` reads each arm's results folder (this
package's own loader) and writes OUT (report.html) and a CSV of its table beside it (arms.csv).
Per arm: goodput (answered calls, ok or blocked, per second of the arm's measured run), the server's
final 429s and 503s, the client's sheds, fallbacks and time held (reports/policy.py), p50/p95 of
answered calls' end-to-end time, cost per 1,000 answers and, for moderation, accuracy, items per
second and cost per 1,000 items (reports/items.py: batched calls scored per item). The option's
value of each arm is read from its run.json; FLAG is the option compared (client-policy titles the
report "Policies compared"), found as the one option that differs when not given.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.quantiles import nearest_rank_quantiles
from core.results import REPORT_HTML
from reports import arms_charts, policy
from reports import llm_analysis as la
from reports.errors import ReportInputError
from reports.html import Section, Table, fmt_ms, fmt_number, fmt_share, render
from reports.items import moderation_items
from reports.loading import RunData, load_results

EXIT_OK = 0
EXIT_BAD_INPUT = 2
ARMS_CSV = "arms.csv"
POLICY_DEST = "client_policy"
# Options that differ between any two runs, whatever was compared.
RUN_SPECIFIC = frozenset({"results_dir", "emulator_url", "host", "compare", "compare_policies"})
CSV_COLUMNS = (
    "value", "folder", "calls", "answered", "duration_s", "goodput_per_s", "rate_limited_429",
    "server_errors_5xx", "shed", "fallback", "held_calls", "held_s", "held_p95_ms", "e2e_p50_ms",
    "e2e_p95_ms", "attempts", "cost_usd", "cost_per_1k_answers_usd", "items", "items_answered",
    "accuracy", "items_per_s", "cost_per_1k_items_usd", "notes",
)  # fmt: skip


@dataclass
class Arm:
    folder: Path
    value: str
    data: RunData | None  # None: nothing readable in the folder (`problem` says why)
    problem: str = ""

    @property
    def report_link(self) -> str:
        return f"{self.folder.name}/{REPORT_HTML}"


def load_arm(folder: Path) -> tuple[RunData | None, str]:
    """The arm's data, or None and one line naming the folder when nothing in it is usable."""
    if not folder.is_dir():
        raise ReportInputError(f"{folder}: not a results folder (it does not exist or is a file)")
    try:
        return load_results(folder), ""
    except ReportInputError as error:
        return None, f"{folder.name}: {error}"


def option_dest(flag: str) -> str:
    return flag.strip().lstrip("-").replace("-", "_")


def compared_option(datas: list[RunData]) -> str:
    """The one option whose value differs between the arms (run.json), as its flag; "" if not one."""
    options = [data.run.options for data in datas]
    names = set().union(*options) - RUN_SPECIFIC if options else set()
    differing = sorted(name for name in names if len({repr(o.get(name)) for o in options}) > 1)
    return differing[0].replace("_", "-") if len(differing) == 1 else ""


def _arm_value(data: RunData | None, dest: str, folder: Path) -> str:
    if data is not None and dest in data.run.options:
        value = data.run.options[dest]
        return str(value) if value not in (None, "") else "(none)"
    return folder.name  # no run.json to read it from: the folder's name says it


def measured_span(data: RunData, requests: pd.DataFrame) -> tuple[float, float]:
    """(start, end) epoch seconds of the arm's measured run: its test's span in run.json, else its
    calls' first start to last end."""
    runs = data.run.runs
    if runs and runs[-1].end is not None:
        return runs[-1].start, runs[-1].end
    return la.run_span(requests)


def _notes(data: RunData) -> str:
    run = data.run
    notes = []
    if run.interrupted:
        notes.append(f"interrupted: {run.interrupted}")
    if run.lost_workers:
        notes.append(f"{len(run.lost_workers)} worker(s) lost")
    if run.emulator_died is not None:
        notes.append("the emulator died")
    if any(result.passed is False for result in run.slo):
        notes.append("an SLO gate failed")
    return "; ".join(notes)


def arm_row(arm: Arm) -> dict[str, Any]:
    """The CSV_COLUMNS of one arm (NaN where not known)."""
    nan = float("nan")
    row: dict[str, Any] = dict.fromkeys(CSV_COLUMNS, nan)
    row.update(value=arm.value, folder=arm.folder.name, notes=arm.problem)
    data = arm.data
    if data is None or data.requests is None or data.requests.empty:
        if data is not None:
            row["notes"] = "; ".join(filter(None, [_notes(data), "no per-request log"]))
        return row
    requests = la.add_derived(data.requests)
    start, end = measured_span(data, requests)
    duration = max(end - start, 1e-9)
    answered = requests[requests["answered"]]
    said_no = policy.rejections(requests).sum()
    # The server's refusals per answer it sent (a final-status count misses those a retry or the
    # run's stop hid); the client's own per call.
    limited, server_errors = policy.server_refusals(requests)
    held = policy.held_figures(requests)
    p50, p95 = nearest_rank_quantiles(answered["e2e_ms"], (0.5, 0.95))
    cost = float(requests["cost_usd"].sum())
    row.update(
        calls=len(requests),
        answered=len(answered),
        duration_s=duration,
        goodput_per_s=len(answered) / duration,
        rate_limited_429=limited,
        server_errors_5xx=server_errors,
        shed=int(said_no["shed"]),
        fallback=int(said_no["fallback"]),
        held_calls=int(held["held"]),
        held_s=held["held_s"],
        held_p95_ms=held["p95_all_ms"],
        e2e_p50_ms=p50,
        e2e_p95_ms=p95,
        attempts=la.attempts_sent(requests),
        cost_usd=cost,
        cost_per_1k_answers_usd=cost / len(answered) * 1000 if len(answered) else nan,
        notes=_notes(data),
    )
    items = moderation_items(requests)
    if len(items):
        judged = items["correct"].dropna()
        answered_items = int(items["answered"].sum())
        items_cost = float(items["cost_usd"].sum())
        row.update(
            items=len(items),
            items_answered=answered_items,
            accuracy=float(judged.mean()) if len(judged) else nan,
            items_per_s=answered_items / duration,
            cost_per_1k_items_usd=items_cost / answered_items * 1000 if answered_items else nan,
        )
    return row


def comparison_frame(arms: list[Arm]) -> pd.DataFrame:
    return pd.DataFrame([arm_row(arm) for arm in arms], columns=list(CSV_COLUMNS))


def section_title(flag: str) -> str:
    return "Policies compared" if option_dest(flag) == POLICY_DEST else f"{flag or 'Runs'} compared"


def _table(frame: pd.DataFrame, arms: list[Arm]) -> Table:
    moderation = frame["items"].notna().any()
    columns = [
        "Value", "Calls", "Goodput (answers/s)", "429 answers", "5xx answers", "Shed", "Fallback", "Held (s)",
        "Held p95 (ms)", "e2e p50 (ms)", "e2e p95 (ms)", "Attempts", "USD per 1,000 answers",
    ]  # fmt: skip
    if moderation:
        columns += ["Accuracy", "Items/s", "USD per 1,000 items"]
    columns += ["Report", "Notes"]
    rows = []
    for arm, row in zip(arms, frame.to_dict("records"), strict=True):
        cells: list[Any] = [
            row["value"], fmt_number(row["calls"], 0), fmt_number(row["goodput_per_s"], 2),
            fmt_number(row["rate_limited_429"], 0), fmt_number(row["server_errors_5xx"], 0), fmt_number(row["shed"], 0),
            fmt_number(row["fallback"], 0), fmt_number(row["held_s"], 1), fmt_ms(row["held_p95_ms"]),
            fmt_ms(row["e2e_p50_ms"]), fmt_ms(row["e2e_p95_ms"]), fmt_number(row["attempts"], 0),
            fmt_number(row["cost_per_1k_answers_usd"], 4),
        ]  # fmt: skip
        if moderation:
            cells += [
                fmt_share(row["accuracy"]),
                fmt_number(row["items_per_s"], 2),
                fmt_number(row["cost_per_1k_items_usd"], 4),
            ]
        link = {"href": arm.report_link, "text": arm.folder.name} if arm.data is not None else arm.folder.name
        cells += [link, row["notes"] if isinstance(row["notes"], str) else ""]
        rows.append(cells)
    numeric = [False] + [True] * (len(columns) - 3) + [False, False]
    return Table(columns=columns, rows=rows, numeric=numeric)


def comparison_section(flag: str, arms: list[Arm], frame: pd.DataFrame) -> Section:
    section = Section(
        "arms",
        section_title(flag),
        notes=[
            f"The same workload and shape run once per value of --{flag or '?'}, one after the other, each "
            "against a fresh bundled emulator with the same profile and seed (or the same --host).",
            "Goodput: answered calls (ok or blocked) per second of the arm's measured run. 429 and 5xx "
            "answers: every answer the server gave with that status, retries included (the server said "
            "no). Shed and fallback: "
            "calls the client's policy did not send, or sent to its fallback model; held: time it held "
            "calls before sending them (p95 over every call). Latency of answered calls, nearest rank.",
        ],
        tables=[_table(frame, arms)],
    )
    section.warnings += [arm.problem for arm in arms if arm.problem]
    section.charts += arms_charts.arm_charts([(arm.value, arm.data) for arm in arms if arm.data is not None])
    return section


def write_comparison(folders: list[Path], output: Path, flag: str = "") -> Path:
    """Write the comparison report to `output` and its table as arms.csv beside it; its path.
    ReportInputError (one line naming the folder) for a folder that is not there, or when no arm
    holds anything to compare."""
    loaded = [(folder, *load_arm(folder)) for folder in folders]
    readable = [data for _, data, _ in loaded if data is not None]
    if not readable:
        raise ReportInputError("no arm folder holds results to compare: " + "; ".join(p for *_, p in loaded))
    flag = flag.strip().lstrip("-") or compared_option(readable)
    dest = option_dest(flag)
    arms = [Arm(folder, _arm_value(data, dest, folder), data, problem) for folder, data, problem in loaded]
    frame = comparison_frame(arms)
    output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(output.parent / ARMS_CSV, index=False)
    section = comparison_section(flag, arms, frame)
    warnings = [f"{arm.folder.name}: {w}" for arm in arms if arm.data is not None for w in arm.data.warnings]
    html = render(
        "report.html.j2",
        title=section.title,
        subtitle=f"{len(arms)} arms: " + ", ".join(arm.value for arm in arms),
        warnings=warnings,
        sections=[section],
        metadata=[],
        results_dir=", ".join(str(folder) for folder in folders),
    )
    output.write_text(html, encoding="utf-8")
    return output


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports arms",
        description="Compare runs of the same workload with one option changed (what --compare writes).",
    )
    parser.add_argument("folders", nargs="+", metavar="DIR", help="each arm's results folder, in order")
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the comparison report to write"
    )
    parser.add_argument("--flag", default="", help="the option compared (default: the one that differs)")
    args = parser.parse_args(argv)  # one folder is a comparison stopped after its first arm
    path = write_comparison([Path(folder) for folder in args.folders], Path(args.output), args.flag)
    print(path)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - `python -m reports arms`
    sys.exit(main(sys.argv[1:]))
