"""Where an app call's time goes (reports/attribution.py and attribution_section.py): app calls of
the request log joined with model_calls.csv by request id, from hand-made results folders of a
service whose pool saturates."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from report_html import cells, section

from core.outcome import OUTCOME_COLUMNS, Outcome
from core.results import MODEL_CALLS, Attribution, RunInfo
from reports import build_report
from reports.attribution import app_calls, crossing, in_flight, load_levels, split_times
from reports.attribution_section import attribution_section, crossing_statement
from reports.compare import SPLIT, compare_runs, text_table
from reports.loading import load_results

START = 1_700_000_000.0
POOL = 4  # the service's workers: beyond this many calls in flight, calls queue before the model
QUEUE_MS, GENERATION_MS, AFTER_MS = 10.0, 190.0, 5.0


def app_call(start: float, e2e_ms: float, request_id: str, **fields: Any) -> dict[str, Any]:
    return dict(scenario="app", transport="app", model="POST /moderate", start_time=start, e2e_ms=e2e_ms,
                request_id=request_id, **{"http_status": 200, **fields})  # fmt: skip


def model_record(rid: str, first: float, last: float, model_ms: float, queue_ms: float = 0.0, calls: int = 1):
    return dict(request_id=rid, model="gemini-2.5-flash", calls=calls, first_received=first, last_sent=last,
                queue_ms=queue_ms, model_ms=model_ms, prompt_tokens=100, output_tokens=20,
                thoughts_tokens=0, status=200)  # fmt: skip


def pool_run(levels=range(1, 11), rounds: int = 12, pool: int = POOL, flat: bool = False):
    """Closed-loop phases, one per load level c: c users call back to back in step, so each call
    starts with exactly c calls in flight. The service answers in before + model + after, where
    before (its queue for a worker) grows by 50 ms per call beyond `pool` (0 when flat)."""
    calls, records, t = [], [], START
    for c in levels:
        before = 0.0 if flat else max(0, c - pool) * 50.0
        e2e = before + QUEUE_MS + GENERATION_MS + AFTER_MS
        for _ in range(rounds):
            for _ in range(c):
                rid = f"r{len(calls)}"
                calls.append(app_call(t, e2e, rid))
                first = t + before / 1000
                records.append(model_record(rid, first, first + 0.2, QUEUE_MS + GENERATION_MS, QUEUE_MS))
            t += e2e / 1000
        t += 1.0
    return calls, records, t


def with_unattributed(calls: list[dict], records: list[dict], t: float) -> None:
    """Three answered and two failed app calls whose ids the service never forwarded, one cut off by
    the stop before its model call finished, and one model record of another run on the same emulator."""
    for index in range(5):
        fields = {} if index < 3 else {"error_kind": "server_error", "http_status": 500}
        calls.append(app_call(t + index, 100.0, f"lost{index}", **fields))
    calls.append(app_call(t + 5, 100.0, "cut", error_kind="cancelled"))
    records.append(model_record("other-run", START, START + 0.1, 100.0))


def write_run(folder: Path, calls: list[dict], records: list[dict] | None, info: Attribution | None = None,
              files: int = 2) -> Path:  # fmt: skip
    """A results folder: the app calls spread over `files` processes' request logs, model_calls.csv
    (unless None) and run.json (with `info` as its attribution)."""
    folder.mkdir(parents=True)
    for number in range(files):
        with (folder / f"requests-gen-{number}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=OUTCOME_COLUMNS)
            writer.writeheader()
            for row in calls[number::files]:
                writer.writerow(Outcome(**row).as_row())
    if records is not None:
        pd.DataFrame(records, columns=list(MODEL_CALLS.columns)).to_csv(
            folder / MODEL_CALLS.name, index=False
        )
    RunInfo(run_id=folder.name, attribution=info).write(folder)
    return folder


def saturating(tmp_path: Path, name: str = "run", **kwargs: Any) -> Path:
    calls, records, t = pool_run(**kwargs)
    with_unattributed(calls, records, t)
    return write_run(tmp_path / name, calls, records, Attribution(source="http://emu", records=len(records)))


def split_of(calls: list[dict], records: list[dict]):
    return split_times(app_calls(pd.DataFrame(calls).assign(error_kind=lambda f: f.get("error_kind", ""))),
                       pd.DataFrame(records))  # fmt: skip


# ---- the analysis ---------------------------------------------------------------------------------


def test_in_flight_counts_the_calls_started_and_not_ended_itself_included() -> None:
    starts = np.array([0.0, 1.0, 2.0, 1.5, 10.0])
    ends = np.array([3.0, 1.5, 4.0, 2.0, 11.0])
    # at 1.5 the second call has just ended and the fourth starts; at 2.0 the fourth has ended
    assert in_flight(starts, ends).tolist() == [1, 2, 2, 2, 1]


def test_the_join_splits_each_call_exactly() -> None:
    s = START
    calls = [
        app_call(s, 300.0, "a"),  # one model call: 50 before, 230 model (30 queue), 20 after
        app_call(s + 1, 200.0, "b"),  # reached the model 10 ms "before" it started: rounding, 0
        app_call(s + 2, 500.0, "c"),  # two model calls in a row with 100 ms of the app between
        app_call(s + 3, 400.0, "d"),  # three model calls side by side: their span, not their sum
    ]
    records = [
        model_record("a", s + 0.05, s + 0.28, 230.0, 30.0),
        model_record("b", s + 1 - 0.01, s + 1.15, 160.0),
        model_record("c", s + 2.1, s + 2.45, 250.0, 0.0, calls=2),
        model_record("d", s + 3.05, s + 3.35, 750.0, 75.0, calls=3),
    ]
    split = split_of(calls, records)
    got = split.calls.set_index("request_id")
    columns = ["before_ms", "model_ms", "queue_ms", "generation_ms", "after_ms", "app_ms"]
    assert got.loc["a", columns].tolist() == pytest.approx([50, 230, 30, 200, 20, 70], abs=1e-3)
    assert got.loc["b", columns].tolist() == pytest.approx([0, 160, 0, 160, 50, 40], abs=1e-3)
    assert got.loc["c", columns].tolist() == pytest.approx([100, 250, 0, 250, 50, 250], abs=1e-3)
    assert got.loc["d", columns].tolist() == pytest.approx([50, 300, 30, 270, 50, 100], abs=1e-3)
    assert (split.skewed, split.parallel, split.ignored) == (0, 1, 0)


def test_badly_negative_times_are_counted_as_clock_skew_not_clamped() -> None:
    s = START
    calls = [app_call(s, 300.0, "a"), app_call(s + 1, 300.0, "b"), app_call(s + 2, 300.0, "c")]
    records = [
        model_record("a", s - 0.2, s + 0.05, 250.0),  # "arrived" 200 ms before the call began
        model_record("b", s + 1 - 0.2, s + 1.05, 250.0),
        model_record("c", s + 2.02, s + 2.27, 250.0),
    ]
    split = split_of(calls, records)
    assert split.skewed == 2
    got = split.calls.set_index("request_id")
    assert got.loc[["a", "b"], "before_ms"].isna().all()  # left out, not clamped to 0
    assert got.loc["a", "app_ms"] == pytest.approx(50.0)  # durations are kept
    section_, _ = attribution_section(pd.DataFrame(calls).assign(error_kind=""), pd.DataFrame(records), None)
    assert section_ is not None
    assert len(section_.warnings) == 1
    assert section_.warnings[0].startswith("2 of 3 answered app calls have a before- or after-the-model time")
    assert "clock disagrees" in section_.warnings[0]


def test_a_saturating_pool_crosses_at_the_level_where_its_queue_outgrows_the_model() -> None:
    calls, records, _ = pool_run()
    split = split_of(calls, records)
    levels = load_levels(split)
    assert levels["level"].tolist() == list(range(1, 11))
    assert levels["calls"].tolist() == [12 * c for c in range(1, 11)]
    # app = before + after = (c - 4) * 50 + 5 against the model's 200: above from 8 calls in flight
    assert levels["app_ms"].tolist() == pytest.approx([5, 5, 5, 5, 55, 105, 155, 205, 255, 305], abs=1e-3)
    assert levels["model_ms"].tolist() == pytest.approx([200] * 10, abs=1e-3)
    index = crossing(levels)
    assert index is not None and levels["level"].iloc[index] == 8
    assert levels["before_ms"].iloc[index] == pytest.approx(200.0, abs=1e-3)


def test_wide_load_levels_are_binned_and_thin_bins_left_out() -> None:
    calls, records, _ = pool_run(levels=(*range(1, 31), 40), rounds=2, pool=1000)
    levels = load_levels(split_of(calls, records))
    # p1..p99 of the levels is 3..40: width 5, 9 bins; levels 1 and 2 join the first bin
    assert levels["label"].tolist() == ["1–4", "5–9", "10–14", "15–19", "20–24", "25–29", "30", "40"]
    assert levels["calls"].tolist()[:2] == [2 * (1 + 2 + 3 + 4), 2 * (5 + 6 + 7 + 8 + 9)]
    assert crossing(levels) is None  # flat: the model stays above


def test_an_app_whose_time_stays_flat_never_crosses(tmp_path) -> None:
    calls, records, _ = pool_run(flat=True)
    section_, headline = attribution_section(
        pd.DataFrame(calls).assign(error_kind=""), pd.DataFrame(records), None
    )
    assert headline is None and section_ is not None
    assert any(
        "The model's time stays above the app's at every load level reached (up to 10 calls in flight)" in n
        for n in section_.notes
    )


# ---- the section in the report --------------------------------------------------------------------


def test_the_report_shows_the_split_the_unattributed_calls_and_the_crossing(tmp_path) -> None:
    html = build_report(saturating(tmp_path)).read_text(encoding="utf-8")
    part = section(html, "app-attribution")
    assert "Where the time goes: app or model" in html
    assert (
        "5 of 665 app calls (0.8%) have no model call under their request id: the service did not forward "
        "the request id header, or made no model call (3 of them answered OK, 2 failed; a failed call may "
        "never have reached the model). 1 more were cut off by the end of the run before a model call of "
        "theirs finished: not counted."
    ) in part
    assert "1 model-call record(s) match no app call of this run" in part
    # 660 answered, attributed calls; before the model p50 is the 330th: 150 ms (7 in flight)
    assert cells(part, "Before the model")[1:] == ["150", "300", "300", "300", "159"]
    assert cells(part, "Model")[1:3] == ["200", "200"]
    assert cells(part, "Model: queue")[1] == "10.0"
    assert cells(part, "After the model")[1] == "5.0"
    assert cells(part, "8")[1:6] == ["96", "200", "200", "5.0", "205"]
    assert "The app&#39;s own time passes the model&#39;s from about 8 calls in flight (its queue: " \
        "before-the-model time p50 200 ms" in part  # fmt: skip
    assert "model(s): gemini-2.5-flash (660 app calls)" in part
    assert 'id="chart-app-attribution"' in part
    overview = section(html, "overview")
    assert "App time passes model time at ~8 calls in flight (before-the-model p50 200 ms)." in overview


def test_a_run_without_model_calls_has_no_section_and_no_warning(tmp_path) -> None:
    calls, _, _ = pool_run(levels=(1, 2))
    folder = write_run(tmp_path / "old", calls, None)
    data = load_results(folder)
    assert data.model_calls is None and not [w for w in data.warnings if "model_calls" in w]
    assert 'id="app-attribution"' not in build_report(folder).read_text(encoding="utf-8")


def test_a_fetch_error_says_why_and_that_no_split_is_possible(tmp_path) -> None:
    calls, _, _ = pool_run(levels=(1, 2))
    info = Attribution(
        source="http://svc-model:9000", records=0, error="not an emulator (404 on /emulator/sends)"
    )
    part = section(build_report(write_run(tmp_path / "r", calls, None, info)).read_text(encoding="utf-8"),
                   "app-attribution")  # fmt: skip
    assert (
        "The model calls could not be fetched from http://svc-model:9000: not an emulator (404 on "
        "/emulator/sends). No split of the 36 app calls&#39; time between the app and the model is possible."
    ) in part
    assert "<table>" not in part


def test_dropped_ids_are_named_beside_the_unattributed_calls(tmp_path) -> None:
    calls, records, t = pool_run(levels=(1, 2))
    with_unattributed(calls, records, t)
    folder = write_run(tmp_path / "r", calls, records, Attribution(source="http://emu", records=9, dropped=7))
    part = section(build_report(folder).read_text(encoding="utf-8"), "app-attribution")
    assert "The emulator&#39;s log let go of 7 request id(s) (its limit)" in part


@pytest.mark.parametrize(
    ("spoil", "warning"),
    [
        (lambda text: text.replace("last_sent", "last"), "model_calls.csv: missing column(s) last_sent; "),
        (lambda text: text.replace(",200.0,", ",abc,", 1), "model_calls.csv: column model_ms, line 2: 'abc' is not a number"),
    ],
)  # fmt: skip
def test_an_unreadable_model_calls_file_is_one_line_and_no_split(tmp_path, spoil, warning) -> None:
    folder = saturating(tmp_path)
    path = folder / MODEL_CALLS.name
    path.write_text(spoil(path.read_text()))
    data = load_results(folder)
    assert data.model_calls is None
    assert [w for w in data.warnings if "model_calls" in w] == [
        next(w for w in data.warnings if warning in w)
    ]
    part = section(build_report(folder).read_text(encoding="utf-8"), "app-attribution")
    assert "model_calls.csv could not be read (see the warnings at the top)" in part


def test_a_partial_last_line_is_dropped_with_a_warning_and_the_rest_kept(tmp_path) -> None:
    folder = saturating(tmp_path)
    path = folder / MODEL_CALLS.name
    path.write_text(path.read_text() + "r99999,gemini-2.5-fl")
    data = load_results(folder)
    assert "model_calls.csv ends with a partial line (killed run?); that line was ignored" in data.warnings
    assert data.model_calls is not None and len(data.model_calls) == 661
    assert "5 of 665 app calls" in section(
        build_report(folder).read_text(encoding="utf-8"), "app-attribution"
    )


def test_compare_adds_the_app_and_model_time_deltas(tmp_path) -> None:
    base = saturating(tmp_path, "base")
    slower = saturating(tmp_path, "slower", pool=2)  # a smaller pool: the app queues sooner
    deltas, _ = compare_runs(base, slower)
    split = {d.metric: d for d in deltas if (d.scenario, d.model) == ("app", SPLIT)}
    assert sorted(split) == ["app_own_p50_ms", "app_own_p95_ms", "model_p50_ms", "model_p95_ms"]
    assert (split["app_own_p50_ms"].base, split["app_own_p50_ms"].candidate) == pytest.approx((155.0, 255.0))
    assert split["app_own_p50_ms"].regression
    assert split["model_p50_ms"].base == pytest.approx(200.0) and not split["model_p50_ms"].regression
    assert "app_own_p50_ms" in text_table(deltas)
    plain = compare_runs(
        write_run(tmp_path / "a", pool_run()[0], None), write_run(tmp_path / "b", pool_run()[0], None)
    )
    assert not any(d.model == SPLIT for d in plain[0])


def test_the_crossing_is_where_the_app_stays_above_not_a_passing_blip() -> None:
    levels = pd.DataFrame(
        {"level": [1, 2, 3, 4, 5, 6], "app_ms": [50, 250, 90, 120, 260, 400], "model_ms": [200] * 6}
    )
    assert crossing(levels) == 4  # level 2 is above, but level 3 falls back below
    assert crossing(levels.assign(app_ms=[300] * 6)) == 0
    falls_back = levels.assign(app_ms=[300, 300, 300, 300, 300, 100], label=[str(n) for n in range(1, 7)])
    assert crossing(falls_back) is None
    sentence, headline = crossing_statement(falls_back, None)
    assert headline is None
    assert sentence.startswith("The app's own time is above the model's at 1, 2, 3, 4, 5 calls in flight, ")
    assert "not at the highest level reached (6)" in sentence and "stays above" not in sentence
    never, _ = crossing_statement(levels.assign(app_ms=[10] * 6, label=[str(n) for n in range(1, 7)]), None)
    assert never.startswith("The model's time stays above the app's at every load level reached (up to 6")
