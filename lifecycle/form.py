"""What a start must pass, from the command line or the web UI's start form: one check, one error
type per bad value, answered in the form (nothing starts) or as one line and exit 2 (lifecycle.startup).

Locust starts a shape run from /swarm only if environment.shape_class is already set, and copies the
form's values into parsed_options inside that same handler. So the one /swarm check wraps Locust's
view: every value the form can change is checked first (budget and --slo, Gemini settings, scenario
levers and mix, the shape, which it then sets), the start waits until everything is prepared, and
then Locust's handler runs as before. A running test being edited is left alone. The form's layout
(groups, short labels, the fields the chosen shape uses) is lifecycle/form_layout.py's.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from locust.env import Environment
from locust.runners import STATE_INIT, STATE_STOPPED, MasterRunner

from core.options import OptionError
from emulator.launcher import EmulatorStartError
from fixtures.loading import FixtureError
from lifecycle.app_service import check_app_options, ran_app
from lifecycle.form_layout import install_form_layout
from lifecycle.reachable import check_model_served, check_reachable
from metrics.options import check_form_options
from shapes import select_shape
from shapes.load_shapes import SuiteShape
from users.app import AppUser
from users.images import ImageLimitError
from users.mix import parse_mix
from users.paid_models import require_prices
from users.policies.runtime import check_policy_options
from users.preparation import PreparationFailed
from users.pricing import PriceTable, PricingError
from users.scenario_options import ScenarioSettings
from users.settings import GeminiSettings

logger = logging.getLogger("gemini_locust")

# What a bad option, fixture or price file raises: each carries one line naming what to fix.
CONFIG_ERRORS = (OptionError, PricingError, FixtureError, ImageLimitError, PreparationFailed)


def check_host(host: str | None) -> None:
    parts = urlsplit(host or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(
            f"--host {host!r} is not an http(s) URL: use e.g. https://generativelanguage.googleapis.com, "
            "or drop --host to use the bundled emulator"
        )


def to_bundled_emulator(options: argparse.Namespace, host: str | None) -> bool:
    """Whether `host` is the bundled emulator this process started (options.emulator_url)."""
    emulator_url = getattr(options, "emulator_url", None)
    return bool(emulator_url) and host == emulator_url


def model_served_warning(host: str, settings: GeminiSettings) -> str | None:
    """The start-up models.get check (lifecycle.reachable); the Developer API's only: on Vertex AI
    the first call answers for the model."""
    if settings.backend != "gemini":
        return None
    return check_model_served(host, settings.model, settings.api_key)


def form_options(environment: Environment, form: Any) -> argparse.Namespace:
    """The options a start from this form would run with: the process's, overlaid with the form's
    values; `host` is the form's, else the environment's."""
    options = argparse.Namespace(**vars(environment.parsed_options or argparse.Namespace()))
    for name, value in form.items():
        if name == "run_time":
            # a string: the shapes parse it like Locust does; empty means none
            options.run_time = value or None
        else:
            setattr(options, name, value)
    options.host = form.get("host") or environment.host
    return options


def check_start(environment: Environment, options: argparse.Namespace) -> SuiteShape | None:
    """Every value a start can change, checked; the shape it asks for. Raises CONFIG_ERRORS."""
    check_form_options(options)  # the cost budget rule and --slo
    to_emulator = to_bundled_emulator(options, options.host)
    settings = GeminiSettings.from_options(options, emulator=to_emulator)
    notice = settings.model_notice()
    if notice:
        logger.warning("%s", notice)
    check_policy_options(options, model=settings.model)
    if not to_emulator:
        # The budget fails closed: a model with no price would cost money --max-cost never sees.
        prices = PriceTable.load(
            getattr(options, "pricing", "") or None, vertex_location=settings.vertex_location
        )
        require_prices(options, prices, settings.model)
    scenarios = ScenarioSettings.from_options(options)
    parse_mix(str(getattr(options, "mix", "") or ""))
    check_app_options(options)
    if ran_app(options):
        AppUser.check_inputs(scenarios)  # a bad URL, status or body template: answered in the form
    shape = select_shape(environment, options)
    if not to_emulator and not isinstance(environment.runner, MasterRunner):
        # A host typed into the form is checked like one on the command line: a down or mistyped
        # host is answered in the form, not found by a run of "connection refused". Last, so nothing
        # reaches a host the budget rule refuses.
        check_host(options.host)
        check_reachable(options.host)
        warning = model_served_warning(options.host, settings)
        if warning:
            logger.warning("%s", warning)
    return shape


def install_start_form_check(environment: Environment, wait_until_ready: Callable[[], None]) -> bool:
    """Wrap the web UI's /swarm with the one check and lay the form out by concern
    (lifecycle/form_layout.py); False without a web UI."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return False
    install_form_layout(environment)
    from flask import jsonify, request  # only needed with a web UI
    from werkzeug.datastructures import ImmutableMultiDict

    app = web_ui.app
    endpoint = next(
        (rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.endswith("/swarm")), None
    )
    if endpoint is None:
        logger.warning("web UI has no /swarm route: the start form's values cannot be checked")
        return False
    original = app.view_functions[endpoint]

    def refusal(message: str) -> Any:
        logger.error("%s", message)
        return jsonify({"success": False, "message": message, "host": environment.host})

    @wraps(original)
    def checked_swarm(*args: Any, **kwargs: Any) -> Any:
        runner = environment.runner
        if runner is not None and runner.state in (STATE_INIT, STATE_STOPPED) and request.method == "POST":
            emulator_url = getattr(environment.parsed_options, "emulator_url", "")
            if emulator_url and "host" in request.form and not request.form["host"].strip():
                # A cleared Host field means what no --host means: the bundled emulator. Locust's own
                # handler would set the host to "" and the test would stop at its first call.
                request.form = ImmutableMultiDict({**request.form.to_dict(), "host": emulator_url})
            try:
                shape = check_start(environment, form_options(environment, request.form))
                # A start waits until this process (and every worker) has prepared its requests.
                wait_until_ready()
            except CONFIG_ERRORS as exc:
                return refusal(str(exc))
            except EmulatorStartError as exc:
                return refusal(f"the bundled emulator did not start: {exc}")
            environment.shape_class = shape
        return original(*args, **kwargs)

    # Locust's own auth check runs first, so an anonymous POST cannot change anything.
    app.view_functions[endpoint] = web_ui.auth_required_if_enabled(checked_swarm)
    return True
