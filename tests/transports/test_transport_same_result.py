"""The same emulator answer gives the same CallResult on every transport, streamed or not."""

from __future__ import annotations

import dataclasses
import io

import pytest
from PIL import Image
from transport_helpers import TRANSPORT_NAMES, make_transport, spec

from users.call import CallResult, CallSpec, CallTimer, InlineImage


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["safe", "unsafe"]},
        "reason": {"type": "string", "description": "one sentence"},
    },
    "required": ["verdict", "reason"],
}


def _cases() -> dict[str, CallSpec]:
    return {
        "plain": spec("Tell me about load tests."),
        "max_tokens": spec("Tell me a long story about queues.", max_output_tokens=5),
        "image_and_system": CallSpec(
            scenario="test",
            model="gemini-3.5-flash-lite",  # thinks at MINIMAL (none): the cap is all answer
            parts=("Describe this image.", InlineImage("image/png", _png(500, 300))),
            system_instruction="You describe images in one line.",
            max_output_tokens=100,
            temperature=0.0,
        ),
        "json_schema": spec(
            "Moderate: have a nice day",
            response_mime_type="application/json",
            response_schema=VERDICT_SCHEMA,
        ),
        "prompt_blocked": spec("Moderate this: [[unsafe:hate]]"),
        "answer_blocked": spec("Moderate this: [[unsafe-output:dangerous]]"),
        "block_none": spec(
            "Moderate this: [[unsafe:hate]]",
            safety_settings=(("HARM_CATEGORY_HATE_SPEECH", "BLOCK_NONE"),),
        ),
    }


CASE_NAMES = tuple(_cases())


@pytest.fixture(scope="module")
def emulator(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator("fast", seed=3)


@pytest.fixture(scope="module")
def results(emulator) -> dict[tuple[str, str, bool], CallResult]:  # noqa: ANN001
    cases = _cases()
    out: dict[tuple[str, str, bool], CallResult] = {}
    for name in TRANSPORT_NAMES:
        transport = make_transport(name, emulator.url)
        try:
            for case, base in cases.items():
                for stream in (False, True):
                    call = dataclasses.replace(base, stream=stream)
                    out[(name, case, stream)] = transport.call(call, CallTimer())
        finally:
            transport.close()
    return out


def _facts(result: CallResult) -> tuple[object, ...]:
    return (
        result.text,
        result.prompt_tokens,
        result.output_tokens,
        result.cached_tokens,
        result.finish_reason,
        result.block_reason,
        result.http_status,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("case", CASE_NAMES)
def test_same_result_on_every_transport(results, case, stream) -> None:  # noqa: ANN001
    genai = results[("genai", case, stream)]
    for name in ("legacy", "http"):
        assert _facts(results[(name, case, stream)]) == _facts(genai), f"{name} differs from genai"
    # thoughtsTokenCount: the raw client reads it like google-genai; the legacy protos predate it,
    # and the legacy transport recovers it from totalTokenCount.
    for name in ("legacy", "http"):
        assert results[(name, case, stream)].thoughts_tokens == genai.thoughts_tokens, name


@pytest.mark.parametrize("case", CASE_NAMES)
def test_stream_and_unary_agree(results, case) -> None:  # noqa: ANN001
    for name in TRANSPORT_NAMES:
        assert _facts(results[(name, case, True)]) == _facts(results[(name, case, False)])


def test_cases_cover_what_they_claim(results) -> None:  # noqa: ANN001
    """Guard the fixtures: each case must really produce the reply shape it is named after."""
    got = {case: results[("genai", case, False)] for case in CASE_NAMES}
    assert got["plain"].finish_reason == "STOP" and got["plain"].output_tokens > 5
    assert got["max_tokens"].finish_reason == "MAX_TOKENS"
    assert got["image_and_system"].prompt_tokens > 1120  # one image at the default resolution, plus text
    assert got["json_schema"].text.startswith("{") and '"verdict"' in got["json_schema"].text
    assert got["prompt_blocked"].block_reason == "SAFETY" and not got["prompt_blocked"].text
    assert got["answer_blocked"].finish_reason == "SAFETY"
    assert got["block_none"].finish_reason == "STOP" and not got["block_none"].block_reason
    assert got["plain"].thoughts_tokens, "the default model thinks in the emulator: thoughts must be seen"


def test_unary_response_bytes_agree(results) -> None:  # noqa: ANN001
    sizes = {name: results[(name, "plain", False)].response_bytes for name in TRANSPORT_NAMES}
    assert len(set(sizes.values())) == 1 and sizes["genai"] > 100, sizes
