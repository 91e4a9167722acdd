"""Run metadata from run.json: shown without secrets, and the shape's stages for every time chart."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.results import LOCUST_CSV_PREFIX, RunInfo
from reports.charts import Stage
from reports.loading import RunData

# Options whose name suggests a secret are never shown, whatever their value.
# Whole words of the name, so `api_key` or `web_auth` are hidden but `max_output_tokens` is shown.
_SECRET_NAME = re.compile(
    r"(?i)(^|[_\-])(key|token|secret|password|passwd|auth|credentials?|cookie)($|[_\-])"
)
# Values that look like a Google API key are hidden even under an innocent option name.
_SECRET_VALUE = re.compile(r"AIza[0-9A-Za-z_\-]{20,}")
HIDDEN = "(hidden)"


def scrub(value: Any) -> Any:
    """Copy of an options/params structure with secret-looking names and values hidden."""
    if isinstance(value, dict):
        return {
            str(key): (
                HIDDEN if _SECRET_NAME.search(str(key)) and item not in (None, "", False) else scrub(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(HIDDEN, value)
    return value


def stages(data: RunData) -> list[Stage]:
    """run.json stages as elapsed seconds from the run origin; a stage without a positive span is
    skipped."""
    found = []
    origin = data.origin
    for entry in data.run.stages:
        if entry.end is None or entry.end <= entry.start:
            continue
        found.append(Stage(entry.name, entry.start - origin, entry.end - origin))
    return found


def _text(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


@dataclass(frozen=True)
class MetadataGroup:
    """One block of the run metadata; a folded one is drawn closed (<details>)."""

    title: str
    rows: list[tuple[str, str]]
    folded: bool = True
    preformatted: bool = False  # one row holding a JSON document, shown as such


def _run_rows(data: RunData, run: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("Results folder", str(data.results_dir))]
    if data.prefix != LOCUST_CSV_PREFIX:
        rows.append(("Locust CSVs", f"{data.prefix}_*.csv"))
    for label, key in (("Run id", "run_id"), ("Started (UTC)", "started_at"), ("Ended (UTC)", "ended_at")):
        if key in run:
            rows.append((label, _text(run[key])))
    started, ended = data.run.started, data.run.ended
    if started is not None and ended is not None:
        rows.append(("Duration", f"{ended - started:,.0f} s"))
    if "host" in run:
        rows.append(("Host", _text(run["host"])))
    if "emulator" in run:
        rows.append(("Bundled emulator", "yes" if run["emulator"] else "no"))
    shape = run.get("shape")
    if isinstance(shape, dict):
        rows.append(("Shape", f"{_text(shape.get('name'))} {_text(shape.get('params', {}))}"))
    elif "shape" in run:
        rows.append(("Shape", "none (fixed users)" if shape is None else _text(shape)))
    for stage in stages(data):
        rows.append((f"Stage {stage.name}", f"{stage.start_s:,.0f} s to {stage.end_s:,.0f} s"))
    return rows


# Values the suite fills in itself (the bundled emulator's address), never typed by the user.
SET_BY_THE_SUITE = frozenset({"emulator_url"})


def _left(name: str, value: Any, defaults: dict[str, Any]) -> bool:
    """Whether an option was left alone: its recorded value is its recorded default (both written
    the same way by the run), or the suite filled it in; an option without a default counts as set."""
    if name in SET_BY_THE_SUITE:
        return True
    return name in defaults and value == defaults[name]


def metadata_groups(data: RunData) -> list[MetadataGroup]:
    """The run metadata, secrets hidden: what ran and the options the user set open; every default,
    the resolved settings, versions and the emulator's counters folded."""
    run = scrub(data.run.document())  # only the fields the run wrote: an absent one is not shown
    groups = [MetadataGroup("Run", _run_rows(data, run), folded=False)]
    options = run.get("options")
    defaults = run.get("option_defaults")
    if isinstance(options, dict) and options and isinstance(defaults, dict) and defaults:
        chosen = [
            (key, _text(value)) for key, value in sorted(options.items()) if not _left(key, value, defaults)
        ]
        left = [(key, _text(value)) for key, value in sorted(options.items()) if _left(key, value, defaults)]
        groups.append(
            MetadataGroup(
                "Options you set", chosen or [("(none)", "every option was left at its default")], False
            )
        )
        groups.append(MetadataGroup(f"Options left at Locust's and the suite's defaults ({len(left)})", left))
    elif isinstance(options, dict) and options:
        # An older run.json: which options were set is not known, so none is claimed as the user's.
        rows = [(key, _text(value)) for key, value in sorted(options.items())]
        groups.append(MetadataGroup(f"Options (defaults not recorded) ({len(rows)})", rows))
    for key, title in (("settings", "Resolved Gemini settings"), ("versions", "Versions")):
        values = run.get(key)
        if isinstance(values, dict) and values:
            groups.append(
                MetadataGroup(title, [(name, _text(value)) for name, value in sorted(values.items())])
            )
    if data.emulator_stats:
        text = json.dumps(scrub(data.emulator_stats), indent=2, sort_keys=True, default=str)
        groups.append(MetadataGroup("Emulator stats (emulator_stats.json)", [("", text)], preformatted=True))
    return groups


def _moment(run: RunInfo, iso: str | None) -> str:
    """'at 12:00:03 UTC, 12 s into the run' from an ISO time of run.json."""
    if not iso:
        return "at an unknown time"
    when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    text = f"at {when.astimezone(UTC):%H:%M:%S} UTC"
    if run.started is not None and when.timestamp() >= run.started:
        text += f", {when.timestamp() - run.started:,.0f} s into the run"
    return text


def run_events(run: RunInfo) -> list[str]:
    """One line each for what broke the run (from run.json): a worker that refused to start, a
    lost worker with the load it carried and its calls that never reached the master, the bundled
    emulator's death, a test that measured nothing. Shown as warnings at the top of the report."""
    lines = []
    for refused in run.refused_workers:
        lines.append(
            f"Worker {refused.worker} refused to start {_moment(run, refused.at)}: {refused.reason}. "
            "The run was stopped."
        )
    for lost in run.lost_workers:
        name = lost.node or lost.worker
        if lost.users is not None:
            name += (
                f" ({lost.users} of {lost.total_users} users)"
                if lost.total_users
                else f" ({lost.users} users)"
            )
        when = (
            _moment(run, lost.missing_at)
            if lost.missing_at
            else f"after its last report ({_moment(run, lost.last_report_at)})"
        )
        if lost.unreported_requests:
            calls = (
                f"{lost.unreported_requests:,} calls in its request log ({lost.request_log}) never reached "
                "the master and are missing from these figures"
            )
        elif lost.unreported_requests == 0:
            calls = "every call in its request log reached the master"
        else:
            calls = "its calls after its last report never reached the master (its request log is not here)"
        lines.append(f"Worker {name} was lost {when}: the rest of the run ran without its load, and {calls}.")
    if run.emulator_died is not None:
        died = run.emulator_died
        lines.append(
            f"The bundled emulator died {_moment(run, died.at)} ({died.how}): the run was stopped there, "
            "and calls in flight then failed."
        )
    if run.llm is not None and run.llm.requests == 0:
        lines.append("No call completed: nothing was measured.")
    return lines
