"""--thinking-budget reaches the server: on a thinking model, budget 0 means no thought tokens."""

from __future__ import annotations

import pytest
from transport_helpers import make_transport, spec

from users.call import CallTimer


@pytest.mark.parametrize("transport", ["genai", "http"])
def test_thinking_budget_zero_turns_thinking_off(start_emulator, transport: str) -> None:
    emu = start_emulator("fast")
    client = make_transport(transport, emu.url)
    try:
        default = client.call(spec(), CallTimer())
        off = client.call(spec(thinking_budget=0), CallTimer())
    finally:
        client.close()
    assert default.thoughts_tokens and default.thoughts_tokens > 0
    assert not off.thoughts_tokens
    assert off.output_tokens and off.output_tokens > 0


def test_legacy_sdk_cannot_send_a_thinking_budget_and_says_so(start_emulator, caplog) -> None:
    from users.transports import legacy_sdk

    legacy_sdk._warn_no_thinking_config.cache_clear()  # it warns once per process
    emu = start_emulator("fast")
    client = make_transport("legacy", emu.url)
    try:
        result = client.call(spec("A different prompt.", thinking_budget=0), CallTimer())
    finally:
        client.close()
    assert result.output_tokens and result.output_tokens > 0
    assert "thinkingConfig" in caplog.text
