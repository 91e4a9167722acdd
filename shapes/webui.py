"""Picking the shape from the web UI's start form.

Locust starts a shape run from /swarm only if environment.shape_class is already set, and it copies
the form's values into parsed_options inside that same handler. So the swarm view is wrapped: the
shape is chosen from the form's values first (a bad value answers with the form's own error
message), then Locust's handler runs as before. A running test being edited keeps its shape.
"""

from __future__ import annotations

import argparse
import logging
from functools import wraps
from typing import Any

from locust.runners import STATE_INIT, STATE_STOPPED

from core.options import OptionError
from shapes.selection import option_dests, select_shape

logger = logging.getLogger(__name__)
# Option values the shapes read from the form besides their own (--slo belongs to metrics/).
_SHARED_DESTS = {"slo"}


def _options_from_form(environment: Any, form: Any) -> argparse.Namespace:
    options = argparse.Namespace(**vars(environment.parsed_options or argparse.Namespace()))
    for key in option_dests() | _SHARED_DESTS:
        if key in form:
            setattr(options, key, form.get(key))
    if form.get("run_time"):
        options.run_time = form.get("run_time")  # a string: parse_duration reads it like Locust does
    elif "run_time" in form:
        options.run_time = None
    return options


def install_web_ui_hook(environment: Any) -> bool:
    """Wrap the web UI's /swarm so the form's --shape choice takes effect; False when no web UI."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return False
    from flask import jsonify, request  # only needed with a web UI

    app = web_ui.app
    endpoint = next(
        (rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.endswith("/swarm")), None
    )
    if endpoint is None:
        logger.warning("web UI has no /swarm route: --shape can only be chosen on the command line")
        return False
    original = app.view_functions[endpoint]

    @wraps(original)
    def swarm_with_shape(*args: Any, **kwargs: Any) -> Any:
        runner = environment.runner
        if runner is not None and runner.state in (STATE_INIT, STATE_STOPPED) and request.method == "POST":
            try:
                shape = select_shape(environment, _options_from_form(environment, request.form))
            except OptionError as error:
                return jsonify({"success": False, "message": str(error), "host": environment.host})
            environment.shape_class = shape
        return original(*args, **kwargs)

    # Locust's own auth check runs first, so an anonymous POST cannot change the shape.
    app.view_functions[endpoint] = web_ui.auth_required_if_enabled(swarm_with_shape)
    return True
