"""Number formats of the web UI's LLM tab: one rule per kind of number, so a column never mixes them.

    counts, tokens, tokens/s     integers with thousands separators     12,345
    milliseconds                 0 decimals                             2,161
    ms per token (TPOT)          1 decimal: most are under 10 ms         5.6
    USD                          cents from 1 USD up, else 4 significant digits     12.35   0.003457  0.002
    percent                      up to 2 decimals                        0.25 %

The browser's charts format their axes with the same rules (metrics/static/llm_live.js).
"""

from __future__ import annotations

import math

from core.slo import GateResult

EMPTY = ""


def _finite(value: float | None) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def count(value: float | None) -> str:
    return f"{round(value):,}" if _finite(value) else EMPTY


def ms(value: float | None) -> str:
    return f"{round(value):,}" if _finite(value) else EMPTY


def ms_per_token(value: float | None) -> str:
    return f"{value:,.1f}" if _finite(value) else EMPTY


def usd(value: float | None) -> str:
    if not _finite(value):
        return EMPTY
    if value == 0:
        return "0"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    # 4 significant digits, trailing zeros dropped: 0.003457, 0.1235, 0.002; never 3.457e-05
    decimals = 3 - math.floor(math.log10(abs(value)))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def percent(value: float | None) -> str:
    if not _finite(value):
        return EMPTY
    return f"{value:.2f}".rstrip("0").rstrip(".") + " %"


def gate_value(result: GateResult) -> str:
    """A live gate's current value in its unit ("no data yet" before the first sample)."""
    value, unit = result.value, result.gate.unit
    if not _finite(value):
        return "no data yet"
    if unit == "ms":
        per_token = result.gate.metric.startswith("tpot")
        return f"{ms_per_token(value)} ms/token" if per_token else f"{ms(value)} ms"
    if unit == "%":
        return percent(value)
    if unit == "usd":
        return f"{usd(value)} USD"
    if unit == "rps":
        return f"{value:,.2f} /s"
    return count(value)
