"""The legacy transport counts thinking tokens: its 2024 protos have no thoughtsTokenCount, so it
recovers them from totalTokenCount, and a legacy call costs what the same call costs on the others."""

from __future__ import annotations

import pytest
from transport_helpers import TRANSPORT_NAMES, make_transport, spec

from users.call import CallResult, CallTimer
from users.pricing import PriceTable

MODEL = "gemini-3.8-flash"  # a thinking model in the emulator, priced in the catalogue


@pytest.fixture(scope="module")
def emulator(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator("fast", seed=5)


def _call(emulator, name: str, stream: bool) -> CallResult:  # noqa: ANN001
    transport = make_transport(name, emulator.url)
    try:
        # Same prompt, seed and model on every transport: the emulator gives the same reply.
        return transport.call(
            spec("Explain backpressure in queues.", stream=stream, model=MODEL), CallTimer()
        )
    finally:
        transport.close()


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_legacy_reports_thoughts_and_costs_the_same(emulator, stream: bool) -> None:  # noqa: ANN001
    results = {name: _call(emulator, name, stream) for name in TRANSPORT_NAMES}
    genai = results["genai"]
    assert genai.thoughts_tokens and genai.thoughts_tokens > 0, "the emulator must think for this test"
    prices = PriceTable.load()
    assert prices.price_for(MODEL) is not None
    counts = {
        name: (r.prompt_tokens, r.output_tokens, r.thoughts_tokens, r.cached_tokens)
        for name, r in results.items()
    }
    assert counts["legacy"] == counts["genai"] == counts["http"], counts
    costs = {
        name: prices.cost(MODEL, r.prompt_tokens, r.output_tokens, r.thoughts_tokens).total
        for name, r in results.items()
    }
    assert costs["legacy"] == costs["genai"] == costs["http"] > 0, costs
