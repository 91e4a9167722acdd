"""One percentile definition: the report's latency table and its SLO table agree for the same metric."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from core.quantiles import nearest_rank, nearest_rank_quantiles
from reports import build_report
from reports import llm_analysis as la
from reports.loading import load_results
from reports.slo import log_values, slo_rows


@pytest.mark.parametrize("pct", [50, 90, 95, 99, 99.9])
def test_the_numpy_method_is_nearest_rank(pct: float) -> None:
    samples = list(np.random.default_rng(7).exponential(300.0, size=37))
    assert nearest_rank_quantiles(samples, (pct / 100,))[0] == nearest_rank(samples, pct)
    assert nearest_rank(samples, pct) in samples  # an observed value, never an interpolation


def test_latency_table_and_slo_table_give_the_same_number(results_copy: Callable[[str], Path]) -> None:
    folder = results_copy("llm_small")
    run = json.loads((folder / "run.json").read_text())
    run["slo"] = [
        *run["slo"],
        {"expr": "ttft_p95<=800ms", "metric": "ttft_p95", "threshold": 800.0, "unit": "ms", "value": 1.0,
         "passed": True},
    ]  # fmt: skip
    (folder / "run.json").write_text(json.dumps(run))
    data = load_results(folder)
    requests = la.add_derived(data.requests)
    everything = la.summary(requests)
    everything = everything[everything["scenario"] == la.ALL].iloc[0]
    from_log = dict(
        zip([r["expr"] for r in slo_rows(data.run)], log_values(slo_rows(data.run), requests), strict=True)
    )
    assert from_log["e2e_p95<=2s"] == everything["e2e_ms_p95"]
    assert from_log["ttft_p95<=800ms"] == everything["ttft_ms_p95"]

    page = build_report(folder).read_text()
    slo_table = page[page.index('id="slo"') :][:5000]
    shown = re.findall(r"e2e_p95&lt;=2s</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>", slo_table)
    assert shown, slo_table[:2000]
    assert shown[0][1].replace(",", "").split()[0] == f"{everything['e2e_ms_p95']:.0f}"
