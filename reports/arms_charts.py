"""The arms' time series overlaid, one line per arm, each on its own run's clock (seconds since that
arm started): goodput and the server's 429s and 5xx per 5-s bin, and aimd's run-wide concurrency
limit when the arms logged one (reports/policy.py). Bins by completion time, like the run report."""

from __future__ import annotations

from typing import Any

import numpy as np

from reports import charts, policy
from reports.loading import RunData

BIN_S = 5.0


def _binned(data: RunData) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(bin starts, answers per second, the server's 429s and 5xx per bin) over the arm's own clock."""
    requests = data.requests
    if requests is None or requests.empty:
        return None
    ends = (requests["start_time"] + requests["e2e_ms"] / 1000.0).to_numpy(dtype=float) - data.origin
    bins = np.floor(np.clip(ends, 0, None) / BIN_S).astype(int)
    count = int(bins.max()) + 1
    answered = requests["answered"].to_numpy(dtype=bool)
    goodput = np.bincount(bins[answered], minlength=count) / BIN_S
    # As the table counts them: every 429 and 5xx the server answered, at the end of its call.
    rejections = np.bincount(bins, weights=policy.refusals_per_call(requests), minlength=count)
    return np.arange(count) * BIN_S, goodput, rejections


def arm_charts(arms: list[tuple[str, RunData]]) -> list[charts.Chart]:
    """The comparison's charts; arms whose data has no request log are left out."""
    goodput: list[Any] = []
    rejections: list[Any] = []
    limits: list[Any] = []
    for value, data in arms:
        binned = _binned(data)
        if binned is not None:
            xs, answers, refused = binned
            goodput.append((value, xs, answers))
            rejections.append((value, xs, refused))
        limit = policy.run_wide_limit(data.policies)
        if limit is not None and len(limit):
            until = data.run.ended
            xs, ys = policy.step_points(
                limit["timestamp"].to_numpy(dtype=float) - data.origin,
                limit["value"].to_numpy(dtype=float),
                None if until is None else until - data.origin,
            )
            limits.append((value, xs, ys))
    found = []
    if goodput:
        found.append(
            charts.time_chart(
                "chart-arms-goodput", "Goodput per arm", "Answers per second (5-s bins)", goodput
            )
        )
        found.append(
            charts.time_chart(
                "chart-arms-rejections",
                "The server's 429s and 5xx per arm",
                "Answers per 5-s bin",
                rejections,
            )
        )
    if limits:
        found.append(
            charts.time_chart("chart-arms-aimd", "aimd concurrency limit per arm", "Calls in flight", limits)
        )
    return found
