"""Every injected fault gets the same, right error kind on every transport."""

from __future__ import annotations

import time

import pytest
from transport_helpers import API_KEY, TRANSPORT_NAMES, make_transport, spec

from core import outcome
from users.call import CallTimer
from users.errors import CallError

TIMEOUT_S = 0.4  # per-read timeout of the transports; the slow faults below last 3 s
# Emulated seconds, x0.05 = 3 s real: far beyond the timeout, so a busy machine cannot make the fault
# end first. The client hangs up at its timeout, which cancels the stalled handler in the emulator.
SLOW_PARAMS = {"stall_seconds": 60.0, "slow_first_byte_seconds": 60.0}
SLOW_FAULT_S = 3.0

# (fault, stream, kind, http_status)
CASES = [
    ("server_500", False, outcome.SERVER_ERROR, 500),
    ("server_500", True, outcome.SERVER_ERROR, 500),
    ("server_503", False, outcome.SERVER_ERROR, 503),
    ("server_503", True, outcome.SERVER_ERROR, 503),
    ("server_504", False, outcome.SERVER_ERROR, 504),  # the server answered: a 5xx, not our timeout
    ("server_504", True, outcome.SERVER_ERROR, 504),
    ("connection_reset", False, outcome.CONNECTION, None),
    ("connection_reset", True, outcome.CONNECTION, None),
    ("malformed_json", False, outcome.INVALID_RESPONSE, None),
    ("malformed_json", True, outcome.INVALID_RESPONSE, None),
    ("stream_cut", True, outcome.CONNECTION, None),
    ("stream_error_frame", True, outcome.SERVER_ERROR, 500),
    ("stream_stall", True, outcome.TIMEOUT, None),
    ("slow_first_byte", False, outcome.TIMEOUT, None),
    ("slow_first_byte", True, outcome.TIMEOUT, None),
]


@pytest.fixture(scope="module")
def faulty(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator(
        "fast",
        {
            "quota_tier": "tier1",
            "quotas": {"gemini-2.5-flash-lite": {"rpm": 1}},
            "accepted_keys": [API_KEY],
        },
    )


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
@pytest.mark.parametrize(("fault", "stream", "kind", "status"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_fault_gets_its_kind(faulty, transport_name, fault, stream, kind, status) -> None:  # noqa: ANN001
    faulty.set_faults({"reset": True, **SLOW_PARAMS, fault: 1.0})
    transport = make_transport(transport_name, faulty.url, timeout_s=TIMEOUT_S)
    try:
        started = time.perf_counter()
        with pytest.raises(CallError) as caught:
            transport.call(spec(f"fault {fault} {stream}", stream=stream), CallTimer())
        elapsed = time.perf_counter() - started
    finally:
        transport.close()
        faulty.set_faults({"reset": True})
    err = caught.value
    assert (err.kind, err.http_status) == (kind, status), err.message
    assert API_KEY not in err.message and "AIza" not in err.message
    if kind == outcome.TIMEOUT and status is None:
        assert TIMEOUT_S * 0.9 < elapsed < SLOW_FAULT_S, (
            "a read timeout fires after timeout_s, before the fault ends"
        )


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_no_fault_is_success_after_faults(faulty, transport_name) -> None:  # noqa: ANN001
    transport = make_transport(transport_name, faulty.url)
    try:
        for stream in (False, True):
            result = transport.call(spec("a healthy call", stream=stream), CallTimer())
            assert result.http_status == 200 and result.text and result.finish_reason == "STOP"
    finally:
        transport.close()


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_quota_429_is_rate_limited_with_retry_info(faulty, transport_name) -> None:  # noqa: ANN001
    transport = make_transport(transport_name, faulty.url)
    model = "gemini-2.5-flash-lite"  # rpm 1, per key per model; one key per transport run below
    try:
        errors = []
        for stream in (False, True, False):
            try:
                transport.call(spec(f"quota {transport_name}", stream=stream, model=model), CallTimer())
            except CallError as err:
                errors.append(err)
    finally:
        transport.close()
    assert errors, "rpm 1 must reject at least one of three calls in the 3 s window"
    for err in errors:
        assert (err.kind, err.http_status) == (outcome.RATE_LIMITED, 429)
        # The window is 60 emulated s = 3 real s; RetryInfo says how long until the slot frees.
        assert err.retry_after_s is not None and 0 < err.retry_after_s <= 3.0


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_client_errors(faulty, transport_name) -> None:  # noqa: ANN001
    transport = make_transport(transport_name, faulty.url)
    try:
        with pytest.raises(CallError) as unknown_model:
            transport.call(spec(model="gemini-no-such-model"), CallTimer())
    finally:
        transport.close()
    assert (unknown_model.value.kind, unknown_model.value.http_status) == (outcome.CLIENT_ERROR, 404)
    assert "not found" in unknown_model.value.message


@pytest.fixture(scope="module")
def strict(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator("fast", {"accepted_keys": ["only-this-key"]})


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_bad_key_is_client_error_and_never_echoed(strict, transport_name) -> None:  # noqa: ANN001
    transport = make_transport(transport_name, strict.url)
    try:
        with pytest.raises(CallError) as caught:
            transport.call(spec(), CallTimer())
    finally:
        transport.close()
    assert (caught.value.kind, caught.value.http_status) == (outcome.CLIENT_ERROR, 400)
    assert "API key not valid" in caught.value.message
    assert API_KEY not in caught.value.message


@pytest.mark.filterwarnings("ignore:HARM_CATEGORY_NO_SUCH_THING is not a valid:UserWarning")
@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_request_the_api_rejects_is_client_error(faulty, transport_name) -> None:  # noqa: ANN001
    """An unknown safety category: a 400 from the server, or (legacy) refused before sending."""
    transport = make_transport(transport_name, faulty.url)
    bad = spec(safety_settings=(("HARM_CATEGORY_NO_SUCH_THING", "BLOCK_NONE"),))
    try:
        with pytest.raises(CallError) as caught:
            transport.call(bad, CallTimer())
    finally:
        transport.close()
    assert caught.value.kind == outcome.CLIENT_ERROR, caught.value.message
