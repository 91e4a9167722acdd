"""Cost budget: --max-cost USD stops the run when the estimated spend reaches it.

The spend is estimated from the server's token counts and the price table (Outcome.cost_usd), and is
judged where the whole run is known: the master in distributed runs, the only process otherwise.
Against any host that is not loopback a budget is required, so a mistyped --host cannot run up a
bill unbounded. The budget fails closed: against any host but the bundled emulator, a model with no
price (built-in table or --pricing) refuses to start (users.pricing.PriceTable.require_price, checked
at start-up), since its calls would count as 0 USD. Thinking tokens count at the output price, cached
prompt tokens at the cached-input price (full input price when the table has none). Calls still in
flight when the budget stops the run finish and are billed, so the final spend can exceed the budget
by about (users x cost of one call).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust.env import Environment

from core.options import OptionError

logger = logging.getLogger(__name__)
OPTION = "--max-cost"


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        OPTION,
        default=0.0,  # a float default: the web UI converts what is typed with the default's type
        type=float,
        include_in_web_ui=True,
        env_var="LOCUST_MAX_COST",
        help="cost budget in USD: the run stops when the estimated spend reaches it "
        "(0 = none; required for any host that is not loopback)",
    )


def parse_max_cost(value: Any) -> float:
    """--max-cost as a float >= 0 (0 = no budget); raises OptionError on anything else."""
    if value in (None, ""):
        return 0.0
    try:
        usd = float(str(value).strip().removeprefix("$").removesuffix("usd").removesuffix("USD"))
    except ValueError:
        raise OptionError(f"{OPTION} {value!r} is not an amount in USD (e.g. {OPTION} 5)") from None
    if not math.isfinite(usd) or usd < 0:
        raise OptionError(f"{OPTION} {value!r} must be 0 (no budget) or a positive amount in USD")
    return usd


def is_loopback_host(host: str | None) -> bool:
    """True for an empty host (the bundled emulator), localhost and 127.0.0.0/8 or ::1 URLs."""
    if not host:
        return True
    hostname = urlsplit(host if "://" in host else f"http://{host}").hostname or ""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _display_host(host: str) -> str:
    """The host without any user:password@ part, for messages."""
    parts = urlsplit(host if "://" in host else f"http://{host}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def require_budget(host: str | None, max_cost: Any) -> None:
    """Raises OptionError for a bad --max-cost, or for no budget against a host off loopback."""
    usd = parse_max_cost(max_cost)
    if usd > 0 or is_loopback_host(host):
        return
    raise OptionError(
        f"--host {_display_host(str(host))} is not loopback: a run against a real endpoint needs a cost "
        f"budget. Pass {OPTION} USD (e.g. {OPTION} 5); the run stops when the estimated spend reaches it"
    )


def budget_error(host: str | None, max_cost: Any) -> str | None:
    """The refusal message for this host and budget, or None when the run may start."""
    try:
        require_budget(host, max_cost)
    except OptionError as exc:
        return str(exc)
    return None


class BudgetGuard:
    """Stops the run once when the estimated spend reaches the budget (master or single process).

    `clock` gives reached_at (epoch seconds); `stopper` is the greenlet that stops the run, once
    spawned, so a caller can wait for it.
    """

    def __init__(self, environment: Environment, clock: Callable[[], float] = time.time) -> None:
        self.environment = environment
        self.clock = clock
        self.max_cost_usd = 0.0
        self.reached_at: float | None = None
        self.spent_at_stop_usd: float | None = None
        self.stopper: gevent.Greenlet | None = None

    def arm(self) -> None:
        """Read the budget for a new test (the web UI form may have changed it)."""
        try:
            self.max_cost_usd = parse_max_cost(getattr(self.environment.parsed_options, "max_cost", 0.0))
        except OptionError as exc:
            logger.error("%s: no budget is enforced", exc)
            self.max_cost_usd = 0.0
        self.reached_at = None
        self.spent_at_stop_usd = None
        self.stopper = None

    @property
    def active(self) -> bool:
        return self.max_cost_usd > 0

    def check(self, spent_usd: float) -> bool:
        """True the first time the spend reaches the budget; the run is then stopped."""
        if not self.active or self.reached_at is not None or spent_usd < self.max_cost_usd:
            return False
        self.reached_at = self.clock()
        self.spent_at_stop_usd = spent_usd
        logger.warning(
            "cost budget reached: estimated spend %.6f USD >= %s %.6f USD; stopping the run",
            spent_usd,
            OPTION,
            self.max_cost_usd,
        )
        # A separate greenlet: this check may run inside a user or the runner's message loop,
        # both of which stopping the run kills.
        self.stopper = gevent.spawn(_stop_run, self.environment)
        return True

    def live_status(self, spent_usd: float) -> dict[str, Any] | None:
        """The web UI's budget line while a test runs and after: None without a budget. `reached`
        stays set until the next test arms the guard."""
        if not self.active and self.reached_at is None:
            return None
        return {
            "max_cost_usd": self.max_cost_usd,
            "spent_usd": spent_usd,
            "reached": self.reached_at is not None,
            "reached_at": self.reached_at,
            "spent_at_stop_usd": self.spent_at_stop_usd,
        }

    def summary(self, final_spent_usd: float) -> dict[str, Any]:
        """run.json["budget"]."""
        return {
            "max_cost_usd": self.max_cost_usd or None,
            "spent_usd": round(final_spent_usd, 9),
            "reached": self.reached_at is not None,
            "reached_at": self.reached_at,
            "spent_at_stop_usd": None if self.spent_at_stop_usd is None else round(self.spent_at_stop_usd, 9),
        }


def _stop_run(environment: Environment) -> None:
    runner = environment.runner
    if runner is None:
        return
    headless = bool(getattr(environment.parsed_options, "headless", False))
    if headless or environment.web_ui is None:
        runner.quit()  # what Locust's own --run-time does in a headless run: the process then exits
    else:
        runner.stop()  # the web UI stays up with the results
