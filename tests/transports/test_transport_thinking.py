"""The thinking options reach the server: --thinking-level on a level model (Gemini 3), and
--thinking-budget on a budget model (2.5); the legacy SDK cannot send either and says so."""

from __future__ import annotations

import pytest
from transport_helpers import make_transport, spec

from users.call import CallTimer

BUDGET_MODEL = "gemini-2.5-flash-lite"  # thinks only when given a budget


@pytest.mark.parametrize("transport", ["genai", "http"])
def test_the_thinking_level_reaches_the_server(start_emulator, transport: str) -> None:
    emu = start_emulator("fast")
    client = make_transport(transport, emu.url)
    try:
        low = client.call(spec(thinking_level="LOW"), CallTimer())
        high = client.call(spec(thinking_level="HIGH"), CallTimer())
    finally:
        client.close()
    assert low.thoughts_tokens and high.thoughts_tokens and high.thoughts_tokens > low.thoughts_tokens
    assert low.output_tokens and high.output_tokens


@pytest.mark.parametrize("transport", ["genai", "http"])
def test_a_thinking_budget_reaches_a_budget_model(start_emulator, transport: str) -> None:
    emu = start_emulator("fast")
    client = make_transport(transport, emu.url)
    try:
        default = client.call(spec(model=BUDGET_MODEL), CallTimer())
        budget = client.call(spec(model=BUDGET_MODEL, thinking_budget=1024), CallTimer())
    finally:
        client.close()
    assert not default.thoughts_tokens
    assert budget.thoughts_tokens and 0 < budget.thoughts_tokens <= 1024
    assert budget.output_tokens and budget.output_tokens > 0


def test_legacy_sdk_cannot_send_thinking_options_and_says_so(start_emulator, caplog) -> None:
    from users.transports import legacy_sdk

    legacy_sdk._warn_no_thinking_config.cache_clear()  # it warns once per process
    emu = start_emulator("fast")
    client = make_transport("legacy", emu.url)
    try:
        result = client.call(spec("A different prompt.", thinking_level="LOW"), CallTimer())
    finally:
        client.close()
    assert result.output_tokens and result.output_tokens > 0
    assert "thinkingConfig" in caplog.text and "--thinking-level" in caplog.text
