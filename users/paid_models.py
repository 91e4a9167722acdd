"""Every model a run may call has a price before it calls a paid host: the budget fails closed.

A run calls its `--model`, and may call two more: a circuit breaker's fallback (`--breaker-fallback`)
and the escalation tier (`--escalate-to`). A model with no price would cost money `--max-cost` never
sees, so start-up and the web UI's start form refuse it here, one line naming the option.
"""

from __future__ import annotations

from typing import Any

from users.policies.options import FAIL
from users.policies.runtime import check_policy_options
from users.pricing import PriceTable, PricingError
from users.tiering import require_escalation_price


def require_prices(options: Any, prices: PriceTable, model: str) -> None:
    """PricingError (one line naming the option) for the first model of the run that has no price."""
    prices.require_price(model)
    breaker = check_policy_options(options, model=model).breaker
    if breaker is not None and breaker.fallback != FAIL:
        try:
            prices.require_price(breaker.fallback)
        except PricingError as exc:
            raise PricingError(f"--breaker-fallback: {exc}") from None
    require_escalation_price(options, prices)
