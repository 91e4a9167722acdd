"""The web UI's start form laid out by concern, and the current stage of a shaped run.

Locust 2.47 renders every custom option (`include_in_web_ui`) in one "Custom parameters" accordion,
sorted by name (Flask's tojson sorts the keys of template_args), each labelled "Name (whole help
text)"; it has no groups, no short labels and no way to hide an option (checked in locust/web.py and
the bundled React app; Locust #2560: argument groups never reach the web UI). So the layout is data
here, sent in template_args[TEMPLATE_KEY], and a small local script (lifecycle/static/form_layout.js)
applies it to the rendered form:

- groups (Gemini, scenarios, shape, budget and SLOs, other) in that order, short labels, the full
  argparse help on hover (the field's title);
- a shape's own options only while that shape is chosen, and Locust's "Number of users" and "Ramp
  up" hidden while any shape drives the users (as stock Locust does for a LoadTestShape);
- the current stage, polled from STAGE_ROUTE, during a shaped run.

The script only sets CSS order, classes, titles and label text: it never moves, disables or
changes an input, so the form submits exactly the values it did before. Which shape uses which
option comes from the shape registry, and a registered scenario's options join the scenarios
group, so a plug-in's options are placed without an entry here (labelled from their name).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust.env import Environment

from shapes import current_stage
from shapes.registry import shape_kind, shape_names
from shapes.selection import NO_SHAPE
from users.scenarios import scenario_options

TEMPLATE_KEY = "gemini_form"
STAGE_ROUTE = "/gemini/stage"
ASSET_ROUTE = "/gemini/form/"
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = ("form_layout.js", "form_layout.css")
SHAPE_OPTION = "shape"
# Locust's own start fields that a shape makes meaningless: the shape sets the users itself.
COMMON_FIELDS = ("user_count", "spawn_rate")


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    options: tuple[str, ...]  # dests, in the order the form shows them


GEMINI = Group(
    "gemini",
    "Gemini",
    # model and transport, the client's patience, thinking, then the answer's tokens
    ("model", "backend", "project", "location", "api_key", "transport", "timeout", "retries", "thinking_level", "thinking_budget",
     "max_output_tokens", "temperature", "pricing"),
)  # fmt: skip
SCENARIOS = Group(
    "scenarios",
    "Scenarios",
    ("mix", "prompt_size", "prompts_file", "posts_file", "policy_file", "image_mode", "image_transport",
     "image_set", "images_dir", "max_image_side", "media_resolution", "inline_limit_mb"),
)  # fmt: skip
SHAPE = Group("shape", "Load shape", (SHAPE_OPTION,))
BUDGET = Group("budget", "Budget and SLOs", ("max_cost", "slo"))
POLICY = Group(
    "policy",
    "Client policy",
    ("client_policy", "aimd_start", "aimd_min", "aimd_max", "aimd_decrease", "breaker_window",
     "breaker_threshold", "breaker_min_calls", "breaker_cooldown", "breaker_fallback", "limit_rpm",
     "limit_tpm", "quota_tier"),
)  # fmt: skip
OTHER = Group("other", "Other", ())

# Short labels; the help text stays the argparse help (shown on hover). An option missing here is
# labelled from its name, as Locust does.
LABELS: dict[str, str] = {
    "model": "Model",
    "api_key": "API key",
    "backend": "Backend (gemini or vertex)",
    "project": "Project (Vertex)",
    "location": "Location (Vertex)",
    "transport": "Transport",
    "timeout": "Timeout (s)",
    "retries": "Retries",
    "thinking_level": "Thinking level",
    "thinking_budget": "Thinking budget",
    "max_output_tokens": "Max output tokens",
    "temperature": "Temperature",
    "pricing": "Price table",
    "mix": "Scenario mix",
    "prompt_size": "Prompt size",
    "prompts_file": "Prompts file (stream)",
    "posts_file": "Posts file (moderation)",
    "policy_file": "Policy file (moderation)",
    "context_cache": "Context cache (policy)",
    "batch_size": "Batch size (moderation)",
    "escalate_to": "Escalate to model",
    "escalate_below": "Escalate below confidence",
    "image_mode": "Image mode (vision)",
    "image_transport": "Image transport (vision)",
    "image_set": "Image set (vision)",
    "images_dir": "Images folder (vision)",
    "max_image_side": "Max image side (px)",
    "media_resolution": "Media resolution (vision)",
    "inline_limit_mb": "Inline limit (MiB)",
    "app_url": "App URL (app)",
    "app_method": "App method (app)",
    "app_body": "App body template (app)",
    "app_expect_status": "App success status (app)",
    "app_expect_json": "App answer field (app)",
    "request_id_header": "Request id header (app)",
    SHAPE_OPTION: "Load shape",
    "peak_users": "Peak users",
    "ramp_up": "Ramp-up time",
    "hold": "Hold time",
    "ramp_down": "Ramp-down time",
    "step_users": "Users per step",
    "steps": "Steps",
    "step_duration": "Step duration",
    "base_users": "Baseline users",
    "spike_users": "Spike users",
    "spike_at": "Spike at",
    "spike_duration": "Spike duration",
    "recovery": "Recovery time",
    "soak_users": "Soak users",
    "warm_up": "Warm-up time",
    "rate": "Arrival rate (/s)",
    "start_rate": "Start rate (/s)",
    "rate_step": "Rate step (/s)",
    "max_users": "Max users",
    "stage_classes": "Stage classes",
    "max_cost": "Max cost (USD)",
    "slo": "SLO gates",
    "client_policy": "Client policy",
    "aimd_start": "AIMD start limit",
    "aimd_min": "AIMD min limit",
    "aimd_max": "AIMD max limit",
    "aimd_decrease": "AIMD decrease factor",
    "breaker_window": "Breaker window (s)",
    "breaker_threshold": "Breaker error rate",
    "breaker_min_calls": "Breaker min calls",
    "breaker_cooldown": "Breaker cooldown (s)",
    "breaker_fallback": "Breaker fallback",
    "limit_rpm": "Limiter RPM",
    "limit_tpm": "Limiter TPM",
    "quota_tier": "Quota tier",
}


def shapes_by_option() -> dict[str, tuple[str, ...]]:
    """Each shape option's dest -> the shapes that read it, from the registry; options used by one
    shape first (registration order), options several shapes share after them."""
    users: dict[str, list[str]] = {}
    for name in shape_names():
        for spec in shape_kind(name).options:
            users.setdefault(spec.dest, []).append(name)
    ordered = sorted(users.items(), key=lambda item: len(item[1]) > 1)  # stable: keeps registry order
    return {dest: tuple(names) for dest, names in ordered}


def form_layout(stage_url: str) -> dict[str, Any]:
    """What the form script needs, as plain JSON: the groups in order, each option's short label and
    the shapes it applies to (absent: every shape and none)."""
    shape_options = shapes_by_option()
    scenario_dests = tuple(spec.dest for spec in scenario_options() if spec.dest not in SCENARIOS.options)
    groups = (
        GEMINI,
        Group(SCENARIOS.key, SCENARIOS.title, SCENARIOS.options + scenario_dests),
        Group(SHAPE.key, SHAPE.title, SHAPE.options + tuple(shape_options)),
        BUDGET,
        POLICY,
        OTHER,
    )
    return {
        "groups": [{"key": g.key, "title": g.title, "options": list(g.options)} for g in groups],
        "other_group": OTHER.key,
        "labels": dict(LABELS),
        "shapes": {dest: list(names) for dest, names in shape_options.items()},
        "shape_option": SHAPE_OPTION,
        "no_shape": NO_SHAPE,
        "common_fields": list(COMMON_FIELDS),
        "stage_url": stage_url,
    }


def stage_status(environment: Environment) -> dict[str, str]:
    """The shape running now and its current stage ("" for both outside a shaped run)."""
    stage = current_stage(environment)
    shape = getattr(environment.shape_class, "shape_name", "") if stage else ""
    return {"shape": str(shape or ""), "stage": stage}


def _version(name: str) -> str:
    # A changed script after an upgrade is fetched again, not taken from the browser's cache.
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def head_tags(base: str) -> str:
    """The <link> and <script> the start page gets before </head>."""
    css, js = (
        f"{base}{ASSET_ROUTE}{name}?v={_version(name)}" for name in ("form_layout.css", "form_layout.js")
    )
    return f'<link rel="stylesheet" href="{css}"><script defer src="{js}"></script>'


def install_form_layout(environment: Environment) -> bool:
    """Lay out the start form and show the current stage; False without a web UI."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return False
    from flask import abort, jsonify, request, send_from_directory  # only needed with a web UI

    app = web_ui.app
    base = str(getattr(environment.parsed_options, "web_base_path", "") or "").rstrip("/")
    web_ui.template_args[TEMPLATE_KEY] = form_layout(f"{base}{STAGE_ROUTE}")
    tags = head_tags(base)

    @app.after_request
    def add_form_script(response: Any) -> Any:
        # The start page only. Inserted before </head>, which stays in place, so another hook that
        # adds its own tags there (or at <body>, as the LLM tab's banner does) composes with this one.
        if request.path != f"{base}/" or response.status_code != 200 or response.mimetype != "text/html":
            return response
        page = response.get_data(as_text=True)
        if "</head>" in page and tags not in page:
            response.set_data(page.replace("</head>", tags + "</head>", 1))
        return response

    def asset(name: str) -> Any:
        if name not in ASSETS:
            abort(404)
        return send_from_directory(STATIC, name)

    def stage() -> Any:
        return jsonify(stage_status(environment))

    app.add_url_rule(
        f"{base}{ASSET_ROUTE}<name>", "gemini_form_asset", web_ui.auth_required_if_enabled(asset)
    )
    app.add_url_rule(f"{base}{STAGE_ROUTE}", "gemini_stage", web_ui.auth_required_if_enabled(stage))
    return True
