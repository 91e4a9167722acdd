"""A requests-per-day 429 (no RetryInfo) through the real SDKs: the suite records it as rate_limited,
and its retries fall back to their own backoff instead of waiting for a delay nobody gave."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types
from transport_helpers import API_KEY, TRANSPORT_NAMES, make_transport, spec

from core import outcome
from core.catalogue import default_model
from tests.waiting import ManualClock
from users.call import CallTimer
from users.errors import CallError
from users.retry import RetryPolicy

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
HELP = "type.googleapis.com/google.rpc.Help"


def one_request_a_day(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator("fast", {"accepted_keys": [API_KEY], "quotas": {default_model(): {"rpd": 1}}})


def test_genai_sdk_raises_a_client_error_429_without_retry_info(start_emulator) -> None:  # noqa: ANN001
    emu = one_request_a_day(start_emulator)
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emu.url))
    assert client.models.generate_content(model=default_model(), contents="the day's one").text
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=default_model(), contents="one more")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    kinds = [d["@type"] for d in caught.value.details["error"]["details"]]
    assert HELP in kinds and RETRY_INFO not in kinds


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_daily_429_is_rate_limited_and_retries_use_their_own_backoff(start_emulator, transport_name) -> None:  # noqa: ANN001
    emu = one_request_a_day(start_emulator)
    transport = make_transport(transport_name, emu.url)
    transport.call(spec("the day's one"), CallTimer())
    clock = ManualClock()
    policy = RetryPolicy(retries=2, base_s=0.25, cap_s=0.25)
    with pytest.raises(CallError) as caught:
        policy.run(lambda: transport.call(spec("one more"), CallTimer()), sleep=clock.sleep)
    error = caught.value
    assert error.kind == outcome.RATE_LIMITED and error.http_status == 429
    assert error.retry_after_s is None, "no RetryInfo in a daily 429"
    # Both retries happened, each after a backoff within the policy's own cap (a RetryInfo delay
    # would have been honoured as given, or made the policy give up at once).
    assert len(clock.slept) == 2 and all(0 <= s <= 0.25 for s in clock.slept)
    assert emu.stats()["quota_429s_by_limit"]["rpd"] == 3
