"""Each transport encodes a CallSpec once, keeps it on the spec, and reads it out of one description.

`users.call.rest_body` is the one description of what a spec sends: the http transport sends it,
the SDK transports read their request objects out of it. So a field it learns reaches every
transport, and one an SDK cannot send fails loudly instead of vanishing.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from typing import Any

import pytest
from transport_helpers import API_KEY, TRANSPORT_NAMES, make_transport, rich_spec, spec

import users.call
from core import outcome
from users.call import REST_JSON, CallTimer, rest_body
from users.errors import CallError
from users.transports import prepare_payloads, transport_class

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from users.transports import genai_sdk, legacy_sdk

CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing is sent in the tests that use it: encoding fails first
# The memo key of each transport's payload on CallSpec.payloads.
PAYLOAD_KEY = {"genai": "genai", "legacy": "legacy", "http": REST_JSON}


@pytest.fixture
def encodings(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts how often each transport encodes a spec (rest_body is where every encoding starts)."""
    counts = dict.fromkeys(TRANSPORT_NAMES, 0)

    def counting(module: Any, name: str) -> None:
        def body(*args: Any, **kwargs: Any) -> dict[str, Any]:
            counts[name] += 1
            return rest_body(*args, **kwargs)

        monkeypatch.setattr(module, "rest_body", body)

    counting(genai_sdk, "genai")
    counting(legacy_sdk, "legacy")
    counting(users.call, "http")
    return counts


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_a_spec_is_encoded_once_per_transport_however_often_it_is_sent(
    start_emulator, encodings, transport_name
) -> None:  # noqa: ANN001
    emu = start_emulator("fast")
    specs = [spec("First prompt."), spec("First prompt.", stream=True), spec("Second prompt.")]
    users = [make_transport(transport_name, emu.url) for _ in range(2)]  # two users share the specs
    try:
        for _ in range(3):
            for user in users:
                for call in specs:
                    assert user.call(call, CallTimer()).finish_reason == "STOP"
    finally:
        for user in users:
            user.close()
    assert encodings[transport_name] == len(specs), "one encoding per spec, not per call or per user"
    key = PAYLOAD_KEY[transport_name]
    assert all(key in call.payloads for call in specs), "the encoding is kept on the spec itself"


def test_prepare_payloads_encodes_ahead_so_calls_encode_nothing(encodings) -> None:  # noqa: ANN001
    specs = [spec(f"Prompt {i}") for i in range(3)]
    for name in TRANSPORT_NAMES:
        assert prepare_payloads(name, specs) == 3
        payload = transport_class(name).payload
        assert all(payload(call) is call.payloads[PAYLOAD_KEY[name]] for call in specs)
    assert encodings == dict.fromkeys(TRANSPORT_NAMES, 3)


def test_a_changed_spec_is_encoded_again() -> None:
    """dataclasses.replace (how with_request_bytes and the scenario builders derive specs) must not
    carry the old spec's encodings over to a spec that sends something else."""
    first = spec("Same text.", max_output_tokens=10)
    for name in TRANSPORT_NAMES:
        transport_class(name).payload(first)
    second = dataclasses.replace(first, max_output_tokens=20)
    assert second.payloads == {}
    assert json.loads(transport_class("http").payload(second))["generationConfig"]["maxOutputTokens"] == 20
    assert transport_class("genai").payload(second)[1].max_output_tokens == 20
    assert transport_class("legacy").payload(second).generation_config.max_output_tokens == 20


def _patch_rest_body(monkeypatch: pytest.MonkeyPatch, **generation_config: Any) -> None:
    """rest_body as it would be after a new CallSpec field was added to it."""

    def grown(*args: Any, **kwargs: Any) -> dict[str, Any]:
        body = rest_body(*args, **kwargs)
        body.setdefault("generationConfig", {}).update(generation_config)
        return body

    for module in (users.call, genai_sdk, legacy_sdk):
        monkeypatch.setattr(module, "rest_body", grown)


def test_a_field_rest_body_learns_reaches_every_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_rest_body(monkeypatch, topK=7)
    call = rich_spec()
    assert json.loads(transport_class("http").payload(call))["generationConfig"]["topK"] == 7
    contents, config = transport_class("genai").payload(call)
    assert config.top_k == 7 and config.max_output_tokens == 10 and config.system_instruction == "be brief"
    assert contents[0] == "look" and contents[1].inline_data.data == b"\x89PNG-bytes"
    request = transport_class("legacy").payload(call)
    assert request.generation_config.top_k == 7 and request.generation_config.max_output_tokens == 10
    assert request.contents[0].parts[1].inline_data.data == b"\x89PNG-bytes"
    assert request.generation_config.response_schema.properties["v"].nullable


@pytest.mark.parametrize("transport_name", ["genai", "legacy"])
def test_a_field_an_sdk_cannot_send_fails_loudly(monkeypatch, transport_name) -> None:  # noqa: ANN001
    _patch_rest_body(monkeypatch, noSuchField=1)
    transport = make_transport(transport_name, CLOSED_PORT_URL)
    try:
        with pytest.raises(CallError) as caught:
            transport.call(spec(), CallTimer())
    finally:
        transport.close()
    assert caught.value.kind == outcome.CLIENT_ERROR and "cannot encode" in caught.value.message
    assert API_KEY not in caught.value.message
