"""Fault injection (config and runtime admin endpoint) and per-key rate limits, on the wire."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest
from emu_http import FLASH, MODEL, call, call_json, text_request

from core.catalogue import catalogue
from emulator.tokens import text_tokens

# Thinking and answer share maxOutputTokens: room for both, so the stream has several chunks.
LONG = text_request("a long answer", generationConfig={"maxOutputTokens": 4000})


def raw_post(
    url: str, path: str, body: dict, timeout: float = 10.0
) -> tuple[http.client.HTTPResponse, float]:
    """Send a POST and return the response object (headers read, body not) and seconds to headers."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    started = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"x-goog-api-key": "k", "Content-Type": "application/json"})
    response = conn.getresponse()
    return response, time.perf_counter() - started


def test_runtime_fault_endpoint_validates_and_resets(start_emulator) -> None:
    emu = start_emulator()
    status, reply = call_json(emu.url, "/emulator/faults", {"server_5000": 1}, key=None)
    assert status == 400 and "unknown fault 'server_5000'" in reply["error"]
    status, reply = call_json(emu.url, "/emulator/faults", {"server_503": 1.5}, key=None)
    assert status == 400 and "between 0 and 1" in reply["error"]
    assert emu.set_faults({"server_504": 1.0})["rates"]["server_504"] == 1.0
    status, reply = call_json(emu.url, FLASH + ":generateContent", text_request("x"))
    assert status == 504 and reply["error"]["status"] == "DEADLINE_EXCEEDED"
    assert emu.set_faults({"reset": True})["rates"]["server_504"] == 0.0
    assert call_json(emu.url, FLASH + ":generateContent", text_request("x"))[0] == 200
    assert emu.stats()["faults_injected"] == {"server_504": 1}


def test_connection_reset(start_emulator) -> None:
    emu = start_emulator(config_dict={"faults": {"connection_reset": 1.0}})
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        raw_post(emu.url, FLASH + ":generateContent", text_request("x"))
    stats = emu.stats()
    assert stats["faults_injected"] == {"connection_reset": 1} and stats["responses_by_status"] == {
        "reset": 1
    }


def test_stream_cut_mid_way(start_emulator) -> None:
    emu = start_emulator(config_dict={"faults": {"stream_cut": 1.0}})
    response, _ = raw_post(emu.url, FLASH + ":streamGenerateContent?alt=sse", LONG)
    assert response.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        response.read()


def test_stream_stall_and_slow_first_byte(start_emulator) -> None:
    # time scale 0.1: a 10 s emulated stall is 1 s real. The delays are lower bounds a busy machine
    # cannot break; the headers' upper bound (before the 1 s fault ends) is wide for the same reason.
    emu = start_emulator(
        time_scale=0.1,
        profile="fast",
        config_dict={"faults": {"stall_seconds": 10.0, "slow_first_byte_seconds": 10.0}},
    )
    response, to_headers = raw_post(emu.url, FLASH + ":streamGenerateContent?alt=sse", LONG)
    response.read()
    assert to_headers < 1.0
    emu.set_faults({"stream_stall": 1.0})
    started = time.perf_counter()
    response, to_headers = raw_post(emu.url, FLASH + ":streamGenerateContent?alt=sse", LONG)
    response.read()
    assert to_headers < 1.0, "the stall comes mid-stream, after the headers and first chunks"
    assert time.perf_counter() - started >= 1.0
    emu.set_faults({"reset": True, "slow_first_byte": 1.0, "slow_first_byte_seconds": 10.0})
    response, to_headers = raw_post(emu.url, FLASH + ":generateContent", LONG)
    assert response.status == 200 and to_headers >= 1.0
    assert emu.stats()["faults_injected"] == {"stream_stall": 1, "slow_first_byte": 1}


def test_malformed_json_and_error_frame(start_emulator) -> None:
    emu = start_emulator(config_dict={"faults": {"malformed_json": 1.0}})
    status, data, _ = call(emu.url, FLASH + ":generateContent", text_request("x"))
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)
    emu.set_faults({"reset": True, "stream_error_frame": 1.0})
    status, data, _ = call(emu.url, FLASH + ":streamGenerateContent?alt=sse", LONG)
    frames = [json.loads(f.removeprefix("data: ")) for f in data.decode().split("\r\n\r\n") if f]
    assert status == 200 and len(frames) >= 2
    assert "candidates" in frames[0] and frames[-1]["error"]["code"] == 500


def test_rpm_quota_429_with_details_and_retry(start_emulator) -> None:
    # Free-tier quotas (the catalogue's: 10 requests per minute for the default model) without
    # latency; time scale 0.015 makes the window 0.9 s, far longer than a few instant requests take
    # even on a busy machine (and under 1 s, so RetryInfo keeps its milliseconds instead of
    # rounding up to whole seconds).
    rpm = catalogue().models[MODEL].quotas["free"][0]
    emu = start_emulator(profile="fast", time_scale=0.015, config_dict={"quota_tier": "free"})
    statuses = [call_json(emu.url, FLASH + ":generateContent", text_request(f"q{i}"))[0] for i in range(rpm)]
    assert statuses == [200] * rpm
    status, reply = call_json(emu.url, FLASH + ":generateContent", text_request("over"))
    answered = time.monotonic()
    assert status == 429 and reply["error"]["status"] == "RESOURCE_EXHAUSTED"
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in reply["error"]["details"]}
    violation = details["QuotaFailure"]["violations"][0]
    assert violation["quotaValue"] == str(rpm) and violation["quotaDimensions"]["model"] == MODEL
    assert "FreeTier" in violation["quotaId"]
    delay = float(details["RetryInfo"]["retryDelay"].removesuffix("s"))
    assert 0 < delay <= 0.9, "real seconds until the first request leaves the 0.9 s window"
    # Another key has its own quota; the same key is admitted once it has waited what RetryInfo said.
    assert call_json(emu.url, FLASH + ":generateContent", text_request("x"), key="other-key")[0] == 200
    # The window runs on the emulator's clock in another process: nothing to wait for but the time
    # RetryInfo named, which is the contract under test (waiting exactly that long is enough).
    time.sleep(max(0.0, answered + delay - time.monotonic()))  # why: RetryInfo's delay is under test
    assert call_json(emu.url, FLASH + ":generateContent", text_request("q12"))[0] == 200
    assert emu.stats()["limits_hit"] == {"quota_requests": 1}


def test_tpm_quota(start_emulator) -> None:
    # No latency and an unscaled 60 s window: the second call is inside it however slow the machine.
    emu = start_emulator(profile="fast", time_scale=1.0, config_dict={"quotas": {MODEL: {"tpm": 100}}})
    words = "the quick brown fox jumps over the lazy dog " * 8
    assert 50 < text_tokens(words) <= 100  # one call fits the 100 tokens a minute, two do not
    big = text_request(words)
    assert call_json(emu.url, FLASH + ":generateContent", big)[0] == 200
    status, reply = call_json(emu.url, FLASH + ":generateContent", big)
    assert status == 429 and "input_token_count" in json.dumps(reply)
