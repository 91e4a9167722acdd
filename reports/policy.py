"""The client policy of one run (--client-policy): what the client chose beside what the server said.

"The server said no" is a call's final 429 (rate_limited) or 503 (server_error with HTTP 503); "the
client chose not to ask" is a call the policy shed (error kind shed: an open breaker) or sent to its
fallback model (policy_action fallback), and the time it held calls before sending them (throttle_ms:
the limiter's or aimd's wait). The policy log (core.results.POLICY_LOG) adds the breaker's state
changes and aimd's concurrency limit over time, per process, and the master's run-wide signal in a
distributed run. Frames are reports/loading's (add_derived's flags are not needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.outcome import ATTEMPT_KINDS_SEPARATOR, RATE_LIMITED, SERVER_ERROR, SHED
from core.quantiles import nearest_rank_quantiles
from core.results import RunInfo
from reports import charts
from reports.html import Section, Table, fmt_ms, fmt_number
from reports.items import number_column, text_column
from reports.llm_analysis import attempt_kind_counts

FALLBACK = "fallback"
RETRY_ONLY = "retry"
# run.json options that tune each component of a policy (users/policies/options.py).
COMPONENT_OPTIONS = {
    "retry": ("retries",),
    "aimd": ("aimd_",),
    "breaker": ("breaker_",),
    "limiter": ("limit_", "quota_tier"),
}


def policy_name(requests: pd.DataFrame | None, run: RunInfo) -> str:
    """The run's client policy: from its calls, else its options; "" when it had none."""
    if requests is not None and len(requests):
        named = text_column(requests, "policy")
        named = named[named != ""]
        if len(named):
            return str(named.mode().iloc[0])
    return str(run.options.get("client_policy", "") or "")


def rejections(requests: pd.DataFrame) -> pd.DataFrame:
    """Per call, the flags of what the client's policy chose: `shed` (never sent) and `fallback`
    (sent to the fallback model). The server's refusals are counted per answer: server_refusals."""
    kinds = text_column(requests, "error_kind")
    return pd.DataFrame(
        {
            "shed": (kinds == SHED).to_numpy(),
            "fallback": (text_column(requests, "policy_action") == FALLBACK).to_numpy(),
        },
        index=requests.index,
    )


def held_figures(requests: pd.DataFrame) -> dict[str, float]:
    """Calls the policy held before sending (throttle_ms > 0): count, total seconds, p50 and p95 of
    the held calls' wait, and p95 over every call (a held call's wait counts, an unheld one's 0)."""
    throttle = number_column(requests, "throttle_ms").dropna()
    held = throttle[throttle > 0]
    p50, p95 = nearest_rank_quantiles(held, (0.5, 0.95))
    (p95_all,) = nearest_rank_quantiles(throttle, (0.95,))
    return {
        "held": float(len(held)),
        "held_s": float(held.sum()) / 1000.0,
        "held_p50_ms": p50,
        "held_p95_ms": p95,
        "p95_all_ms": p95_all,
    }


def _settings_rows(policy: str, run: RunInfo) -> list[list[str]]:
    components = [part for part in policy.split("+") if part] or [RETRY_ONLY]
    prefixes = tuple(
        prefix for part in (RETRY_ONLY, *components) for prefix in COMPONENT_OPTIONS.get(part, ())
    )
    rows = [["client_policy", policy]]
    for name, value in sorted(run.options.items()):
        if name.startswith(prefixes) and name != "client_policy":
            rows.append([name, str(value)])
    return rows


def aimd_limits(policies: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """aimd's limit over time: one frame (timestamp, value) per process (`node`), and the master's
    run-wide signal as "signal (master)" when the run was distributed."""
    if policies is None or policies.empty:
        return {}
    aimd = policies[policies["component"].astype(str) == "aimd"]
    found = {}
    for node, rows in aimd[aimd["event"].astype(str) == "limit"].groupby("node", sort=True):
        found[str(node)] = rows[["timestamp", "value"]]
    signal = aimd[aimd["event"].astype(str) == "signal"]
    if len(signal):
        found["signal (master)"] = signal[["timestamp", "value"]]
    return found


def run_wide_limit(policies: pd.DataFrame | None) -> pd.DataFrame | None:
    """aimd's concurrency limit for the whole run over time (timestamp, value): the master's signal
    when there is one, else the processes' own limits added up (each held until it changes)."""
    limits = aimd_limits(policies)
    if not limits:
        return None
    if "signal (master)" in limits:
        return limits["signal (master)"].reset_index(drop=True)
    wide = pd.concat(
        {node: frame.drop_duplicates("timestamp", keep="last").set_index("timestamp")["value"]
         for node, frame in limits.items()},
        axis=1,
    ).sort_index()  # fmt: skip
    return pd.DataFrame({"timestamp": wide.index, "value": wide.ffill().fillna(0).sum(axis=1).to_numpy()})


def step_points(
    times: np.ndarray, values: np.ndarray, until: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A value that holds until it changes, drawn as steps: each value repeated at the next change,
    and held to `until` when given."""
    if len(times) == 0:
        return times, values
    xs = np.repeat(times, 2)[1:]
    ys = np.repeat(values, 2)[:-1]
    if until is not None and until > times[-1]:
        xs, ys = np.append(xs, until), np.append(ys, values[-1])
    return xs, ys


def breaker_timeline(policies: pd.DataFrame | None, origin: float) -> Table | None:
    if policies is None or policies.empty:
        return None
    states = policies[
        (policies["component"].astype(str) == "breaker") & (policies["event"].astype(str) == "state")
    ]
    if states.empty:
        return None
    return Table(
        columns=("Elapsed (s)", "Process", "Breaker now", "Error rate of its window"),
        numeric=(True, False, False, True),
        rows=[
            [
                fmt_number(row.timestamp - origin, 1),
                str(row.node),
                str(row.detail),
                fmt_number(row.value * 100, 1) + "%",
            ]
            for row in states.itertuples()
        ],
        caption="Breaker state changes",
    )


def refusals_per_call(requests: pd.DataFrame) -> np.ndarray:
    """Per call, the 429s and 5xx the server answered it (every attempt's, from attempt_kinds)."""
    kinds = text_column(requests, "attempt_kinds").str.split(ATTEMPT_KINDS_SEPARATOR)
    refused = kinds.map(lambda names: sum(name in (RATE_LIMITED, SERVER_ERROR) for name in names))
    return refused.to_numpy(dtype=float)


def server_refusals(requests: pd.DataFrame) -> tuple[int, int]:
    """(429s, 5xx) the server answered, every attempt's: a retried call's three 429s are three, and
    one hidden by a retry that succeeded, or by the run's stop during a backoff, still counts."""
    counts = attempt_kind_counts(requests)
    return counts.get(RATE_LIMITED, 0), counts.get(SERVER_ERROR, 0)


def _counts_table(requests: pd.DataFrame) -> Table:
    said_no = rejections(requests).sum()
    held = held_figures(requests)
    limited, server_errors = server_refusals(requests)
    rows = [
        ["The server said no", "429 rate limited (answers, retries included)", fmt_number(limited), "", ""],
        [
            "The server said no",
            "5xx server error (answers, retries included)",
            fmt_number(server_errors),
            "",
            "",
        ],
        ["The client chose not to ask", "shed (never sent)", fmt_number(int(said_no["shed"])), "", ""],
        [
            "The client chose not to ask",
            "sent to the fallback model",
            fmt_number(int(said_no["fallback"])),
            "",
            "",
        ],
        [
            "The client chose not to ask",
            f"held before sending ({fmt_number(held['held_s'], 1)} s in all)",
            fmt_number(int(held["held"])),
            fmt_ms(held["held_p50_ms"]),
            fmt_ms(held["held_p95_ms"]),
        ],
    ]
    return Table(
        columns=("Who", "What", "Count", "Held p50 (ms)", "Held p95 (ms)"),
        numeric=(False, False, True, True, True),
        rows=rows,
        caption=f"Of {len(requests):,} calls",
    )


def _limit_chart(policies: pd.DataFrame | None, origin: float, end: float | None) -> charts.Chart | None:
    limits = aimd_limits(policies)
    if not limits:
        return None
    lines: list[Any] = []
    for node, frame in limits.items():
        xs, ys = step_points(
            frame["timestamp"].to_numpy(dtype=float) - origin,
            frame["value"].to_numpy(dtype=float),
            None if end is None else end - origin,
        )
        lines.append((node, xs, ys))
    return charts.time_chart("chart-aimd-limit", "aimd concurrency limit", "Calls in flight allowed", lines)


def policy_section(
    requests: pd.DataFrame | None, policies: pd.DataFrame | None, run: RunInfo, origin: float
) -> Section | None:
    """The "Client policy" section; None when the run had no policy (no policy named, no log)."""
    policy = policy_name(requests, run)
    if policy in ("", RETRY_ONLY) and (policies is None or policies.empty):
        return None  # retries only: the baseline, nothing the client decided
    section = Section("client-policy", "Client policy")
    section.notes.append(
        f"Policy {policy or 'not named'}. The server said no with its 429s and 5xx (every answer it sent, "
        "retries included); the client "
        "chose not to ask when its policy shed a call (an open breaker), sent it to a fallback model, "
        "or held it before sending (the limiter's or aimd's wait, inside the call's end-to-end time)."
    )
    section.tables.append(
        Table(columns=("Setting", "Value"), rows=_settings_rows(policy, run), caption="Settings")
    )
    if requests is not None and len(requests):
        section.tables.append(_counts_table(requests))
    timeline = breaker_timeline(policies, origin)
    if timeline is not None:
        section.tables.append(timeline)
    end = run.ended
    if end is None and requests is not None and len(requests):
        end = float((requests["start_time"] + requests["e2e_ms"] / 1000.0).max())
    chart = _limit_chart(policies, origin, end)
    if chart is not None:
        section.charts.append(chart)
    return section
