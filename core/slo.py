"""SLO expressions: parse `ttft_p95<=800ms, error_rate<=1%` and judge them on one window of calls.

Pure code (no pandas), shared by three callers: the capacity shape judges each step's own window,
metrics/ judges the whole run with the same syntax (the --slo option), and reports/ judges each
load window of a results folder. Metrics, in the unit the value is reported in:
  ttft_pNN, e2e_pNN, tpot_pNN, lag_pNN   percentile in ms (nearest rank); NN may be 50, 95, 99.9 ...
  ttft_avg, e2e_avg, tpot_avg, ttft_max, e2e_max ...   ms
                               tpot: time per output token after the first (streaming calls);
                               e2e, ttft and tpot count answered calls (ok or blocked) only
  error_rate                   % of calls that failed (every error kind except blocked and cancelled)
  rate_limited, server_error, timeout, connection, client_error, invalid_response, blocked, cancelled
                               % of calls with that error kind (cancelled: cut off by the run's stop)
  rps                          calls per second over the window
  cost_per_1k                  USD per 1,000 calls
  requests                     number of calls in the window
Times take ms (the default), s or m; rates need %; cost takes usd or $. Operators: <=, <, >=, >.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.options import OptionError
from core.outcome import BLOCKED, CANCELLED, ERROR_KINDS
from core.quantiles import nearest_rank

OPTION = "--slo"


# Sums of floats land a hair off the threshold (10 x 0.001 USD); treat those as equal to it.
def _near(value: float, threshold: float) -> bool:
    return math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12)


_OPS = {
    "<=": lambda v, t: v <= t or _near(v, t),
    "<": lambda v, t: v < t and not _near(v, t),
    ">=": lambda v, t: v >= t or _near(v, t),
    ">": lambda v, t: v > t and not _near(v, t),
}
_EXPR = re.compile(r"^\s*([a-z][a-z0-9_.]*)\s*(<=|>=|<|>)\s*(.+?)\s*$")
# Public so callers that hold latency in another form (metrics' histograms) read the same names.
TIME_METRIC = re.compile(r"^(ttft|e2e|tpot|lag)_(?:p(\d+(?:\.\d+)?)|(avg|max))$")
_KIND_METRICS = frozenset(ERROR_KINDS)
_TIME_UNITS_MS = {"": 1.0, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
METRIC_HELP = (
    "ttft_pNN, e2e_pNN, tpot_pNN, lag_pNN, ttft_avg, e2e_max, error_rate, <error kind>, rps, cost_per_1k, "
    "requests"
)


@dataclass(frozen=True, slots=True)
class SloGate:
    expr: str  # as the user wrote it, trimmed
    metric: str
    op: str
    threshold: float  # in `unit`
    unit: str  # ms | % | rps | usd | count


@dataclass(slots=True)
class WindowStats:
    """The calls of one window. Latency lists hold answered calls only (ok or blocked): errors are
    judged by error_rate, and a fast 429 must not make latency look better."""

    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # error kind -> count, blocked, cancelled out
    blocked: int = 0
    cancelled: int = 0  # cut off by the run's stop: neither a failure nor an answer, never timed
    duration_s: float = 0.0
    e2e_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    tpot_ms: list[float] = field(default_factory=list)  # time per output token (streaming calls)
    cost_usd: float = 0.0
    lag_ms: list[float] = field(default_factory=list)  # open-model schedule lag, when known

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[Any], duration_s: float) -> WindowStats:
        """Fill from Outcome objects or their as_row() dicts (keys of OUTCOME_COLUMNS)."""
        stats = cls(duration_s=duration_s)
        for outcome in outcomes:
            row = outcome if isinstance(outcome, Mapping) else _Attrs(outcome)
            stats.add(
                error_kind=row.get("error_kind") or "",
                e2e_ms=row.get("e2e_ms"),
                ttft_ms=row.get("ttft_ms"),
                tpot_ms=row.get("tpot_ms"),
                cost_usd=row.get("cost_usd") or 0.0,
                lag_ms=row.get("schedule_lag_ms"),
            )
        return stats

    def add(
        self,
        error_kind: str = "",
        e2e_ms: float | None = None,
        ttft_ms: float | None = None,
        cost_usd: float = 0.0,
        lag_ms: float | None = None,
        tpot_ms: float | None = None,
    ) -> None:
        self.requests += 1
        self.cost_usd += float(cost_usd or 0.0)
        if lag_ms is not None and lag_ms == lag_ms:
            self.lag_ms.append(float(lag_ms))
        if error_kind == BLOCKED:
            self.blocked += 1
        elif error_kind == CANCELLED:
            self.cancelled += 1
            return
        elif error_kind:
            self.failures[error_kind] = self.failures.get(error_kind, 0) + 1
            return
        if e2e_ms is not None and e2e_ms == e2e_ms:
            self.e2e_ms.append(float(e2e_ms))
        if ttft_ms is not None and ttft_ms == ttft_ms:
            self.ttft_ms.append(float(ttft_ms))
        if tpot_ms is not None and tpot_ms == tpot_ms:
            self.tpot_ms.append(float(tpot_ms))


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: SloGate
    value: float | None  # None when the window holds nothing to judge (no calls, no TTFT samples)
    passed: bool  # a gate without data does not pass: nothing proved it holds

    def as_dict(self) -> dict[str, Any]:
        value = None if self.value is None else round(self.value, 4)
        return {
            "expr": self.gate.expr,
            "metric": self.gate.metric,
            "threshold": self.gate.threshold,
            "unit": self.gate.unit,
            "value": value,
            "passed": self.passed,
        }


class _Attrs:
    """Mapping-style .get over an object's attributes, so Outcome objects and dicts read alike."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self._obj, key, default)


def parse_slo(text: str | Iterable[str] | None) -> list[SloGate]:
    """Gates from comma-separated expressions, or a list of them (a repeated option)."""
    if text is None:
        return []
    pieces = [text] if isinstance(text, str) else list(text)
    gates = []
    for piece in pieces:
        for expr in str(piece).split(","):
            if expr.strip():
                gates.append(_parse_gate(expr.strip()))
    return gates


def _parse_gate(expr: str) -> SloGate:
    match = _EXPR.match(expr.lower())
    if not match:
        raise OptionError(
            f'{OPTION}: "{expr}" is not an SLO expression (write e.g. ttft_p95<=800ms, error_rate<=1%)'
        )
    metric, op, raw = match.groups()
    raw = raw.replace(" ", "")
    time_match = TIME_METRIC.match(metric)
    if time_match:
        if time_match.group(2) is not None and not 0 < float(time_match.group(2)) <= 100:
            raise OptionError(f'{OPTION}: "{expr}": a percentile must be between 0 and 100')
        return SloGate(expr, metric, op, _time_threshold(expr, raw), "ms")
    if metric == "error_rate" or metric in _KIND_METRICS:
        if not raw.endswith("%"):
            raise OptionError(
                f'{OPTION}: "{expr}": {metric} is a percentage, write it with % (e.g. {metric}<=1%)'
            )
        return SloGate(expr, metric, op, _number(expr, raw[:-1]), "%")
    if metric == "rps":
        return SloGate(expr, metric, op, _number(expr, raw.removesuffix("rps").removesuffix("/s")), "rps")
    if metric == "cost_per_1k":
        return SloGate(expr, metric, op, _number(expr, raw.removesuffix("usd").removeprefix("$")), "usd")
    if metric == "requests":
        return SloGate(expr, metric, op, _number(expr, raw), "count")
    raise OptionError(f'{OPTION}: "{expr}": unknown metric {metric!r} (known: {METRIC_HELP})')


def _time_threshold(expr: str, raw: str) -> float:
    unit_match = re.fullmatch(r"([0-9.]+)(ms|s|m)?", raw)
    if not unit_match:
        raise OptionError(f'{OPTION}: "{expr}": {raw!r} is not a time (write e.g. 800ms or 1.5s)')
    number, unit = unit_match.group(1), unit_match.group(2) or ""
    return _number(expr, number) * _TIME_UNITS_MS[unit]


def _number(expr: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise OptionError(f'{OPTION}: "{expr}": {raw!r} is not a number') from None
    if not math.isfinite(value) or value < 0:
        raise OptionError(f'{OPTION}: "{expr}": threshold must be a finite number >= 0')
    return value


def percentile(samples: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (core.quantiles), the definition every table of the suite uses."""
    return nearest_rank(samples, pct)


def metric_value(metric: str, window: WindowStats) -> float | None:
    """The value of one metric on a window, in the unit its gates use; None when there is no data."""
    time_match = TIME_METRIC.match(metric)
    if time_match:
        source, pct, stat = time_match.groups()
        samples = {
            "ttft": window.ttft_ms,
            "e2e": window.e2e_ms,
            "tpot": window.tpot_ms,
            "lag": window.lag_ms,
        }[source]
        if not samples:
            return None
        if pct is not None:
            return percentile(samples, float(pct))
        return max(samples) if stat == "max" else sum(samples) / len(samples)
    if metric == "rps":
        return window.requests / window.duration_s if window.duration_s > 0 else None
    if metric == "requests":
        return float(window.requests)
    if window.requests == 0:
        return None
    if metric == "error_rate":
        return 100.0 * sum(window.failures.values()) / window.requests
    if metric == BLOCKED:
        return 100.0 * window.blocked / window.requests
    if metric == CANCELLED:
        return 100.0 * window.cancelled / window.requests
    if metric in _KIND_METRICS:
        return 100.0 * window.failures.get(metric, 0) / window.requests
    if metric == "cost_per_1k":
        return 1000.0 * window.cost_usd / window.requests
    raise OptionError(f"{OPTION}: unknown metric {metric!r} (known: {METRIC_HELP})")


def passes(gate: SloGate, value: float | None) -> bool:
    """The pass rule: the value meets the threshold (a float a hair off it counts as on it); no data
    (None or NaN) does not pass, since nothing proved the gate holds."""
    return value is not None and value == value and _OPS[gate.op](value, gate.threshold)


def evaluate(gates: Iterable[SloGate], window: WindowStats) -> list[GateResult]:
    results = []
    for gate in gates:
        value = metric_value(gate.metric, window)
        results.append(GateResult(gate, value, passes(gate, value)))
    return results


def all_passed(results: Iterable[GateResult]) -> bool:
    return all(result.passed for result in results)
