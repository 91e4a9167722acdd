"""Thinking share and MAX_TOKENS rate, from hand-made request logs with figures computed by hand."""

from __future__ import annotations

import pytest
from report_html import cells, section

from reports import build_report
from reports import llm_analysis as la
from reports.loading import load_results
from reports.thinking import MAX_TOKENS_ADVICE, thinking_figures


def figures(folder) -> dict[str, dict]:
    table = thinking_figures(la.add_derived(load_results(folder).requests))
    return {row["scenario"]: row for row in table.to_dict("records")}


CHAT = "gemini-3.8-flash"
THINKING_CALLS = [
    # thoughts 100 / none reported (0) / 50; answer tokens 100 / 100 / 50.
    dict(scenario="chat", model=CHAT, thoughts_tokens=100, output_tokens=100, cost_usd=0.003,
         thoughts_cost_usd=0.001, finish_reason="STOP"),
    dict(scenario="chat", model=CHAT, thoughts_tokens=None, output_tokens=100, cost_usd=0.001,
         thoughts_cost_usd=0.0, finish_reason="STOP"),
    dict(scenario="chat", model=CHAT, thoughts_tokens=50, output_tokens=50, cost_usd=0.0015,
         thoughts_cost_usd=0.0005, finish_reason="STOP"),
    # A 429 got no response: not one of the calls the shares are over.
    dict(scenario="chat", model=CHAT, error_kind="rate_limited", http_status=429),
    dict(scenario="vision", model=CHAT, thoughts_tokens=0, output_tokens=40, cost_usd=0.001,
         thoughts_cost_usd=0.0, finish_reason="STOP"),
]  # fmt: skip


def test_thinking_share_of_output_tokens_and_of_cost(request_log):
    folder = request_log(THINKING_CALLS)
    rows = figures(folder)
    chat, total = rows["chat"], rows[la.ALL]
    assert chat["calls"] == 3
    assert chat["thinking_token_share"] == pytest.approx(150 / 400)  # (100 + 0 + 50) / (150 + 250)
    assert chat["thinking_cost_share"] == pytest.approx(0.0015 / 0.0055)
    assert chat["thoughts_per_call"] == pytest.approx(150 / 3)
    assert total["thinking_token_share"] == pytest.approx(150 / 440)  # vision adds 40 answer tokens
    assert total["thinking_cost_share"] == pytest.approx(0.0015 / 0.0065)
    assert total["thoughts_per_call"] == pytest.approx(150 / 4)
    html = build_report(folder).read_text(encoding="utf-8")
    thinking = section(html, "llm-thinking")
    assert cells(thinking, "chat") == [
        "chat", CHAT, "3", "150", "250", "37.50%", "27.27%", "50.0", "0", "0.00%", "0",
    ]  # fmt: skip
    assert cells(thinking, la.ALL)[2:8] == ["4", "150", "290", "34.09%", "23.08%", "37.5"]
    assert MAX_TOKENS_ADVICE not in html, "no call was cut off"


def test_a_log_without_the_thinking_cost_shows_na_not_zero(request_log):
    older = request_log(THINKING_CALLS, without=("thoughts_cost_usd",), name="older")
    rows = figures(older)
    assert rows["chat"]["thinking_cost_share"] != rows["chat"]["thinking_cost_share"], "NaN, not 0"
    assert rows["chat"]["thinking_token_share"] == pytest.approx(150 / 400), "tokens are still known"
    thinking = section(build_report(older).read_text(encoding="utf-8"), "llm-thinking")
    assert cells(thinking, "chat")[5:7] == ["37.50%", "n/a"]
    assert cells(thinking, la.ALL)[6] == "n/a"
    # Known but nothing spent (a run priced at 0): a share of nothing is not 0% either.
    free = request_log(
        [
            dict(
                thoughts_tokens=10,
                output_tokens=10,
                finish_reason="STOP",
                cost_usd=0.0,
                thoughts_cost_usd=0.0,
            )
        ],
        name="free",
    )
    assert cells(section(build_report(free).read_text(encoding="utf-8"), "llm-thinking"), "s")[5:7] == [
        "50.00%",
        "n/a",
    ]


def test_max_tokens_rate_counts_answers_cut_to_nothing(request_log):
    calls = [
        dict(scenario="stream", thoughts_tokens=10, output_tokens=30, finish_reason="STOP"),
        # Cut short, with some answer text.
        dict(scenario="stream", thoughts_tokens=980, output_tokens=20, finish_reason="MAX_TOKENS"),
        # Thinking took the whole cap: no answer tokens reported; the scenario refused the empty
        # answer (invalid_response), yet the model returned it and it is counted.
        dict(scenario="stream", thoughts_tokens=1000, output_tokens=None, finish_reason="MAX_TOKENS",
             error_kind="invalid_response"),
        dict(scenario="stream", thoughts_tokens=1000, output_tokens=0, finish_reason="MAX_TOKENS"),
        dict(scenario="stream", error_kind="rate_limited", http_status=429),  # no response
        dict(scenario="stream", error_kind="cancelled"),  # cut off by the stop: no verdict
    ]  # fmt: skip
    folder = request_log(calls)
    stream = figures(folder)["stream"]
    assert (stream["calls"], stream["max_tokens"], stream["max_tokens_empty"]) == (4, 3, 2)
    assert stream["max_tokens_rate"] == pytest.approx(3 / 4)
    assert stream["thinking_token_share"] == pytest.approx(2990 / 3040)  # 2,990 thinking, 50 answer
    html = build_report(folder).read_text(encoding="utf-8")
    assert cells(section(html, "llm-thinking"), "stream")[8:] == ["3", "75.00%", "2"]
    line = (
        "3 of 4 returned calls ended with MAX_TOKENS (75.00%, 2 without answer text): thinking and "
        "answer share maxOutputTokens: raise --max-output-tokens or lower --thinking-level."
    )
    assert line in section(html, "llm-thinking")
    assert line in section(html, "overview"), "a cut-off answer is a headline"
