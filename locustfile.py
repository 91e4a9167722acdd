"""What Locust loads: the Gemini user classes, the suite's options and its lifecycle listeners.

With no --host, the run goes to the bundled emulator, started on a free loopback port and stopped
when Locust quits. The listeners' work lives in lifecycle/; everything else in users/, metrics/,
reports/, shapes/ and emulator/.
"""

from __future__ import annotations

from lifecycle import guard

# Until init installs the suite's own handlers, Ctrl-C or SIGTERM ends the process with one line.
guard.install()

import logging  # noqa: E402
from typing import Any  # noqa: E402

from locust import events  # noqa: E402

import shapes  # noqa: E402
from lifecycle import app_service, arms, finish, startup, webui_options  # noqa: E402
from metrics import llm, results  # noqa: E402
from users.app import AppUser  # noqa: E402
from users.moderation import TextModerationUser  # noqa: E402
from users.scenario_options import add_scenario_arguments  # noqa: E402
from users.settings import add_arguments as add_gemini_arguments  # noqa: E402
from users.streaming import StreamingUser  # noqa: E402
from users.vision import VisionUser  # noqa: E402

__all__ = ["AppUser", "StreamingUser", "TextModerationUser", "VisionUser"]

webui_options.install()  # before Locust builds its web UI

# One INFO line per HTTP request from the SDKs' clients would drown Locust's own output.
for _chatty in ("httpx", "httpx2", "google_genai", "google_genai.models"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    # The web UI (and its start form, which can carry an API key) listens on loopback unless the
    # user asks otherwise with --web-host.
    # Likewise the master's port for workers: multi-host runs pass --master-bind-host 0.0.0.0.
    parser.set_defaults(web_host="127.0.0.1", master_bind_host="127.0.0.1")
    add_gemini_arguments(parser)
    add_scenario_arguments(parser)
    shapes.add_shape_arguments(parser)
    llm.add_arguments(parser)
    results.add_arguments(parser)
    arms.add_arguments(parser)
    app_service.add_arguments(parser)
    # Start-up options only: the emulator starts before the web UI, so they stay off its form.
    parser.add_argument(
        "--emulator-profile",
        default="",
        help="bundled emulator profile: realistic (default), smooth, free-tier, small-capacity, flaky, overload, fast",
        include_in_web_ui=False,
    )
    parser.add_argument(
        "--emulator-config",
        default="",
        help="JSON file that tunes the bundled emulator",
        include_in_web_ui=False,
    )
    parser.add_argument(
        "--emulator-seed",
        default="",
        help="seed of the bundled emulator's random draws (answers, latency, faults, overload episodes), "
        "for a repeatable run; default: a fresh one",
        include_in_web_ui=False,
    )


events.init.add_listener(startup.on_init)
events.test_start.add_listener(startup.on_test_start)
events.test_stop.add_listener(finish.on_test_stop)
events.quitting.add_listener(finish.on_quitting)
