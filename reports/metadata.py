"""Run metadata from run.json: shown without secrets, and the shape's stages for every time chart."""

from __future__ import annotations

import json
import re
from typing import Any

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


def metadata_rows(data: RunData) -> list[tuple[str, str]]:
    """(label, value) pairs for the metadata section, secrets hidden."""
    run = scrub(data.run.document())  # only the fields the run wrote: an absent one is not shown
    rows: list[tuple[str, str]] = [("Results folder", str(data.results_dir))]
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
    for group, label in (("settings", "Setting"), ("options", "Option"), ("versions", "Version")):
        values = run.get(group)
        if isinstance(values, dict):
            # Options nobody set (None or empty) would bury the ones that matter.
            rows.extend(
                (f"{label} {key}", _text(value))
                for key, value in sorted(values.items())
                if value is not None and value != ""
            )
    if data.emulator_stats:
        rows.append(("Emulator stats", _text(scrub(data.emulator_stats))))
    return rows
