"""The web UI's LLM tab: live LLM stats per scenario and model, and the LLM CSVs for download.

The table uses Locust's own extension points: template_args["extended_tabs"] adds the tab,
["extended_tables"] its columns, ["extended_csv_files"] the download links, and the rows ride
along in the /stats/requests JSON the page already polls, as "extended_stats". The React app
camel-cases both the table's column keys and the JSON's row keys; plain lowercase keys keep the two
identical by construction. The live verdicts and charts above the table are metrics/webui_live.py's
(our own script: the React app draws an extended tab as a table only). Locust #3240 reports the official example's tab not rendering:
tests/metrics/test_webui.py proves this one renders, with live rows, in Chromium.

Also the start page's banner (start_page_notices). The start form's values are checked by
lifecycle/form.py, which runs metrics/options.py's check_form_options with the rest. The LLM tab is installed by the process that holds the whole
run (metrics/roles.py's RunMetrics: the master or the only process).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust.env import Environment

from core.context import run_context
from metrics import web_formats as fmt
from metrics import webui_live
from metrics.llm_files import HISTORY_FILE, STATS_FILE, stats_csv_text
from metrics.llm_stats import FAILURE_KIND_NAMES, LlmStats

logger = logging.getLogger(__name__)

TAB_KEY = "llm"
# Short titles and one merged failure column keep the table inside a 1,366 px screen; the numbers are
# formatted here (metrics/web_formats.py), so a column never mixes precisions.
# (row key, column title, how a row of llm_stats.csv gives the cell)
WEB_COLUMNS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("model", "Model", lambda row: row["model"] or ""),
    ("scenario", "Scenario", lambda row: row["scenario"] or ""),
    ("requests", "Calls", lambda row: fmt.count(row["requests"])),
    ("failures", "Failed", lambda row: fmt.count(row["failures"])),
    ("errors", "Failed by kind", lambda row: failure_kinds(row)),  # "429 ×3 · 5xx ×1"
    ("blocked", "Blocked", lambda row: fmt.count(row["blocked"])),
    ("cancelled", "Cut off", lambda row: fmt.count(row["cancelled"])),  # by the stop: no verdict on the API
    ("ttftmedian", "TTFT p50 ms", lambda row: fmt.ms(row["ttft_p50_ms"])),
    ("ttftninetyfive", "TTFT p95 ms", lambda row: fmt.ms(row["ttft_p95_ms"])),
    ("endtoendmedian", "E2E p50 ms", lambda row: fmt.ms(row["e2e_p50_ms"])),
    ("endtoendninetyfive", "E2E p95 ms", lambda row: fmt.ms(row["e2e_p95_ms"])),
    ("tpotmedian", "ms/token p50", lambda row: fmt.ms_per_token(row["tpot_p50_ms"])),
    ("tokensin", "Tokens in", lambda row: fmt.count(row["prompt_tokens"])),
    ("tokensout", "Tokens out", lambda row: fmt.count(row["output_tokens"])),
    ("thinking", "Thinking tokens", lambda row: fmt.count(row["thoughts_tokens"])),
    ("tokenspersecond", "Out tokens/s", lambda row: fmt.count(row["output_tokens_per_s"])),
    ("cost", "Cost USD", lambda row: fmt.usd(row["cost_usd"])),
)
# Failure kinds as short labels in the merged column ("429 ×3 · 5xx ×1")
KIND_LABELS = {
    "rate_limited": "429",
    "server_error": "5xx",
    "timeout": "timeout",
    "connection": "connection",
    "client_error": "4xx",
    "invalid_response": "invalid",
}


def failure_kinds(row: dict[str, Any]) -> str:
    return " · ".join(
        f"{KIND_LABELS.get(kind, kind)} ×{fmt.count(row[kind])}"
        for kind in FAILURE_KIND_NAMES
        if row.get(kind)
    )


def web_rows(stats: LlmStats) -> list[dict[str, str]]:
    return [{key: cell(row) for key, _, cell in WEB_COLUMNS} for row in stats.rows()]


def notice_banner(text: str, poll_url: str) -> str:
    """A banner over the start page that follows the notice and goes away when it is empty."""
    return (
        '<div id="gemini-notice" role="status" style="position:fixed;top:0;left:0;right:0;z-index:2000;'
        'background:#fff3cd;color:#664d03;padding:8px 16px;font:14px sans-serif;text-align:center">'
        f"{html.escape(text)}</div>"
        "<script>(function poll(){setTimeout(function(){fetch(" + json.dumps(poll_url) + ")"
        ".then(function(r){return r.json()}).then(function(d){var b=document.getElementById('gemini-notice');"
        "if(!b)return;if(d.notice){b.textContent=d.notice;poll()}else{b.remove()}})"
        ".catch(poll)},1000)})();</script>"
    )


def start_page_notices(environment: Environment) -> list[Callable[[], str]]:
    """Sources of the start page's banner (e.g. "requests are still being prepared"), which other
    rooms add to; each is read at every request and an empty text shows nothing."""
    return run_context(environment).ensure(StartPageNotices).sources


@dataclass
class StartPageNotices:
    sources: list[Callable[[], str]] = field(default_factory=list)


def install_llm_tab(
    environment: Environment, source: webui_live.LiveSource, folder: Callable[[], Path | None]
) -> bool:
    """Add the LLM tab (table, live verdicts and charts), its CSV routes and the start page's banner;
    False without a web UI."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return False
    from flask import Response, jsonify, request  # only needed with a web UI

    def stats() -> LlmStats:
        return source.stats

    app = web_ui.app
    base = str(getattr(environment.parsed_options, "web_base_path", "") or "").rstrip("/")
    web_ui.template_args["extended_tabs"] = [{"title": "LLM", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title, _ in WEB_COLUMNS]}
    ]
    web_ui.template_args["extended_csv_files"] = [
        {"href": "./llm_stats/csv", "title": "Download LLM stats CSV"},
        {"href": "./llm_stats_history/csv", "title": "Download LLM stats history CSV"},
    ]

    @app.after_request
    def add_llm_rows(response: Any) -> Any:
        if request.path == f"{base}/stats/requests" and response.status_code == 200 and response.is_json:
            document = response.get_json()
            document["extended_stats"] = [{"key": TAB_KEY, "data": web_rows(stats())}]
            response.set_data(json.dumps(document))
        return response

    def current_notice() -> str:
        # Registered by other rooms (e.g. "requests are still being prepared"); read at each request.
        return " ".join(text for text in (notice() for notice in start_page_notices(environment)) if text)

    @app.after_request
    def add_to_start_page(response: Any) -> Any:
        if request.path != f"{base}/" or response.status_code != 200 or response.mimetype != "text/html":
            return response
        page = response.get_data(as_text=True)
        page = page.replace("</head>", webui_live.page_head_tags(base) + "</head>", 1)
        text = current_notice()
        if text:
            page = page.replace("<body>", "<body>" + notice_banner(text, f"{base}/gemini/notice"), 1)
        response.set_data(page)
        return response

    def notice_json() -> Response:
        return jsonify({"notice": current_notice()})

    app.add_url_rule(f"{base}/gemini/notice", "gemini_notice", web_ui.auth_required_if_enabled(notice_json))
    webui_live.install_live_routes(web_ui, base, source)

    def download(name: str, text: str) -> Response:
        return Response(
            text,
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={name}"},
        )

    def stats_csv() -> Response:
        return download(STATS_FILE, stats_csv_text(stats().rows()))

    def history_csv() -> Response:
        where = folder()
        path = where / HISTORY_FILE if where else None
        text = path.read_text(encoding="utf-8") if path and path.exists() else ""
        return download(HISTORY_FILE, text)

    app.add_url_rule(f"{base}/llm_stats/csv", "llm_stats_csv", web_ui.auth_required_if_enabled(stats_csv))
    app.add_url_rule(
        f"{base}/llm_stats_history/csv", "llm_stats_history_csv", web_ui.auth_required_if_enabled(history_csv)
    )
    return True
