"""The metrics room's options, --max-cost and --slo, and their one check.

check_form_options() is the same check for the command line (at init, through metrics.llm's
check_options) and for the web UI's start form (metrics/webui.py's /swarm hook): a bad value or a
missing budget raises core.options.OptionError with the one line the user sees.
"""

from __future__ import annotations

from typing import Any

from core.options import OptionError
from metrics import budget, gates


def add_arguments(parser: Any) -> None:
    """Register --max-cost and --slo (both in the web UI form).

    Safe to call twice (a test locustfile that wraps the real one may also call it)."""
    known = getattr(parser, "_option_string_actions", {})
    if budget.OPTION not in known:
        budget.add_arguments(parser)
    if "--slo" not in known:
        gates.add_arguments(parser)


def check_form_options(options: Any) -> None:
    """Raise OptionError for a bad --max-cost, a missing budget or a bad --slo; None when fine.

    `options` holds the run's values as attributes: `host` (the host the run would load: the
    form's, else the environment's; empty means the bundled emulator), `max_cost` and `slo`.
    The budget is checked first, so a run off loopback without one is told that first.
    """
    budget.require_budget(getattr(options, "host", None), getattr(options, "max_cost", 0.0))
    try:
        gates.gates_from_options(options)
    except OptionError as exc:
        raise OptionError(str(exc)) from None
