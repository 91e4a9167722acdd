"""The LLM tab's live part: SLO gates judged as the run goes, the budget line and its banner, a capacity
search's progress, and charts; served as JSON that a small script of ours draws into the page.

Locust's React app renders an extended tab as a table only, so the page gets one script and one
stylesheet (metrics/static/, served by the web UI's own Flask app: no CDN, works offline). The script
polls GET <base>/gemini/llm/live and puts its section right above the LLM table whenever that table
is on screen, and the budget banner above the whole app.

The charts are hand-written SVG (about 150 lines of JavaScript) rather than a vendored chart library:
four line charts need no more, nothing third-party has to be packaged, licensed or kept up to date,
and a test can read the drawn points straight from the SVG.

Every verdict here is the final verdict's own code on the same merged stats: gates.live_results
(which is gates.evaluate_run), BudgetGuard.live_status, shapes.capacity_result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from locust.env import Environment

import shapes
from metrics import gates
from metrics import web_formats as fmt
from metrics.budget import OPTION as BUDGET_OPTION
from metrics.budget import BudgetGuard
from metrics.llm_series import LlmSeries
from metrics.llm_stats import LlmStats

STATIC_DIR = Path(__file__).resolve().parent / "static"
# name -> mimetype: the only files the route serves (no path from the request reaches the disk)
STATIC_FILES = {"llm_live.js": "text/javascript", "llm_live.css": "text/css"}
LIVE_PATH = "/gemini/llm/live"
STATIC_PATH = "/gemini/static/"


class LiveSource(Protocol):
    """What the live view reads: metrics/roles.py's RunMetrics."""

    environment: Environment
    stats: LlmStats
    series: LlmSeries
    budget: BudgetGuard

    def estimated_spend_usd(self) -> float: ...


def gate_rows(options: Any, stats: LlmStats) -> tuple[list[dict[str, Any]], str]:
    results, error = gates.live_results(options, stats)
    rows = [
        {
            "expr": result.gate.expr,
            "value": result.value,
            "shown": fmt.gate_value(result),
            "passed": result.passed,
        }
        for result in results
    ]
    return rows, error


def budget_line(guard: BudgetGuard, spent_usd: float) -> dict[str, Any] | None:
    status = guard.live_status(spent_usd)
    if status is None:
        return None
    limit = status["max_cost_usd"]
    share = f" ({fmt.percent(100.0 * spent_usd / limit)})" if limit else ""
    status["text"] = f"Budget: {fmt.usd(spent_usd)} of {fmt.usd(limit)} USD spent{share}"
    status["banner"] = ""
    if status["reached"]:
        at_stop = status["spent_at_stop_usd"]
        status["banner"] = (
            f"The cost budget stopped this test: estimated spend {fmt.usd(at_stop)} USD reached "
            f"{BUDGET_OPTION} {fmt.usd(limit)} USD"
        )
    return status


def capacity_line(environment: Environment) -> dict[str, Any] | None:
    """A capacity search's step and the capacity found so far, read from the shape's live state."""
    result = shapes.capacity_result(environment)
    if result is None:
        return None
    found = result.get("capacity_rps")
    judged = len(result.get("steps") or ())
    found_text = f"{found:g} requests/s" if found is not None else "none yet"
    if result.get("stop_reason") == "running":
        step = len(shapes.stage_log(environment))
        stage = shapes.current_stage(environment)
        text = f"Capacity search: step {step} ({stage}), {judged} judged; capacity so far: {found_text}"
    else:
        verdict = f"{found:g} requests/s" if found is not None else "none found"
        text = f"Capacity search over ({result.get('stop_reason')}): capacity {verdict}"
    return {
        "capacity_rps": found,
        "steps_judged": judged,
        "stop_reason": result.get("stop_reason"),
        "text": text,
    }


def live_state(source: LiveSource) -> dict[str, Any]:
    """The JSON the LLM tab's script polls."""
    environment = source.environment
    gate_list, gate_error = gate_rows(environment.parsed_options, source.stats)
    budget = budget_line(source.budget, source.estimated_spend_usd())
    runner = environment.runner
    return {
        "state": str(getattr(runner, "state", "")),
        "gates": gate_list,
        "gates_error": gate_error,
        "budget": budget,
        "banner": budget["banner"] if budget else "",
        "capacity": capacity_line(environment),
        "series": source.series.as_json(),
    }


def page_head_tags(base: str) -> str:
    """What the start page's <head> gets: our stylesheet and script, from our own routes."""
    return (
        f'<link rel="stylesheet" href="{base}{STATIC_PATH}llm_live.css">'
        f'<script defer src="{base}{STATIC_PATH}llm_live.js" data-live-url="{base}{LIVE_PATH}"></script>'
    )


def install_live_routes(web_ui: Any, base: str, source: LiveSource) -> None:
    """GET <base>/gemini/llm/live and the two static files, behind the web UI's login if enabled."""
    from flask import Response, abort, jsonify  # only needed with a web UI

    def live() -> Response:
        response = jsonify(live_state(source))
        response.headers["Cache-Control"] = "no-store"
        return response

    def static_file(name: str) -> Response:
        mimetype = STATIC_FILES.get(name)
        if mimetype is None:
            abort(404)
        return Response((STATIC_DIR / name).read_bytes(), mimetype=mimetype)

    auth = web_ui.auth_required_if_enabled
    web_ui.app.add_url_rule(f"{base}{LIVE_PATH}", "gemini_llm_live", auth(live))
    web_ui.app.add_url_rule(f"{base}{STATIC_PATH}<name>", "gemini_llm_static", auth(static_file))
