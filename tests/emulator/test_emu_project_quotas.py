"""Quotas as the real API counts them: per project (keys share one), requests per day up to midnight
Pacific (no RetryInfo then), input tokens only, and one 429 listing every limit it broke."""

from __future__ import annotations

from datetime import datetime

import pytest
from emu_http import FLASH, MODEL, call_json, text_request

from emulator.errors import ApiError
from emulator.profiles import ConfigError, load_profile
from emulator.quotas import PACIFIC, Quotas, daily_limit
from tests.waiting import ManualClock

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
HELP = "type.googleapis.com/google.rpc.Help"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
# One emulated minute before midnight Pacific (a winter day: no DST change in sight).
LATE = datetime(2026, 11, 29, 23, 59, 0, tzinfo=PACIFIC).timestamp()


def by_type(details: list[dict]) -> dict[str, dict]:
    return {d["@type"]: d for d in details}


def generate(url: str, text: str, key: str = "test-key", **config) -> tuple[int, dict]:
    return call_json(url, FLASH + ":generateContent", text_request(text, **config), key=key)


# ---- in process, on a manual clock ------------------------------------------------------------


def test_requests_per_day_429_has_help_and_no_retry_info_and_resets_at_midnight_pacific() -> None:
    # time scale 0.001: an emulated minute is 0.06 s of the manual clock, an emulated day 86.4 s.
    clock = ManualClock(start=100.0)
    profile = load_profile("realistic", {"quotas": {"m": {"rpd": 2}}})
    quotas = Quotas(profile, time_scale=0.001, clock=clock, wall=lambda: LATE)
    quotas.admit("k", "m", 1)
    quotas.admit("k", "m", 1)
    clock.advance(0.059)  # 23:59:59 Pacific: still the same day
    with pytest.raises(ApiError) as caught:
        quotas.admit("k", "m", 1)
    error = caught.value
    details = by_type(error.details)
    assert error.code == 429 and error.fault == "quota_requests_per_day" and error.limits == ("rpd",)
    assert RETRY_INFO not in details, "nothing frees a daily quota before midnight: no time to give"
    assert details[HELP]["links"][0]["url"] == "https://ai.google.dev/gemini-api/docs/rate-limits"
    (violation,) = details[QUOTA_FAILURE]["violations"]
    assert violation["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel"
    assert violation["quotaValue"] == "2" and violation["quotaDimensions"] == {
        "location": "global",
        "model": "m",
    }
    assert "Please retry" not in error.message and "limit: 2, model: m" in error.message
    clock.advance(0.002)  # 00:00:01 Pacific: a new day, a new count
    assert quotas.emulated_time(clock()).hour == 0
    quotas.admit("k", "m", 1)
    quotas.admit("k", "m", 1)
    with pytest.raises(ApiError):
        quotas.admit("k", "m", 1)


def test_keys_of_one_project_share_every_limit() -> None:
    clock = ManualClock(start=0.0)
    profile = load_profile(
        "realistic",
        {"quotas": {"m": {"rpm": 1, "rpd": 5}}, "projects": {"team": ["k1", "k2"], "solo": ["k3"]}},
    )
    quotas = Quotas(profile, time_scale=1.0, clock=clock)
    quotas.admit("k1", "m", 1)
    with pytest.raises(ApiError) as caught:
        quotas.admit("k2", "m", 1)
    assert caught.value.limits == ("rpm",)
    quotas.admit("k3", "m", 1)  # another project
    quotas.admit("team", "m", 1)  # a key named like a project is still its own project
    quotas.admit("k1", "other-model", 1)  # per model too


def test_several_broken_limits_are_one_429_and_a_daily_one_drops_retry_info() -> None:
    clock = ManualClock(start=0.0)
    profile = load_profile("free-tier", {"quotas": {MODEL: {"rpm": 1, "tpm": 100, "rpd": 1}}})
    quotas = Quotas(profile, time_scale=1.0, clock=clock)
    quotas.admit("k", MODEL, 80)
    clock.advance(10.0)
    with pytest.raises(ApiError) as caught:
        quotas.admit("k", MODEL, 80)
    details = by_type(caught.value.details)
    ids = [v["quotaId"] for v in details[QUOTA_FAILURE]["violations"]]
    assert ids == [
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
    ]
    assert caught.value.limits == ("rpm", "tpm", "rpd") and RETRY_INFO not in details
    assert caught.value.message.count("* Quota exceeded for metric:") == 3


def test_daily_figures_come_from_the_tier_table_and_the_config_overrides_them() -> None:
    free = load_profile("free-tier")
    assert daily_limit(free, "gemini-2.5-flash") == 20  # the December 2025 cut
    assert daily_limit(free, "gemini-2.5-pro") == 100 and daily_limit(free, "my-own-model") == 20
    assert daily_limit(load_profile("realistic", {"quota_tier": "tier3"}), MODEL) is None
    assert daily_limit(load_profile("realistic"), MODEL) is None  # paid-high: no daily limit
    overridden = load_profile("free-tier", {"quotas": {MODEL: {"rpd": None}}})
    assert daily_limit(overridden, MODEL) is None


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"projects": {"a": ["secret-key-1"], "b": ["x", "secret-key-1"]}}, "two projects, 'a' and 'b'"),
        ({"projects": ["secret-key-1"]}, "projects must be an object"),
        ({"projects": {"a": "secret-key-1"}}, "projects.a must be a list"),
        ({"projects": {"a": ["ok", ""]}}, "projects.a must be a list"),
        ({"quotas": {MODEL: {"rpd": -1}}}, f"quotas.{MODEL}.rpd must be a whole number"),
        ({"quotas": {MODEL: {"rpx": 1}}}, "'rpd': N"),
    ],
)
def test_config_errors_are_one_line_and_never_name_a_key(config: dict, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("realistic", config)
    message = str(caught.value)
    assert words in message and "\n" not in message and "secret-key-1" not in message


# ---- on the wire ------------------------------------------------------------------------------


def test_two_keys_of_one_project_share_one_quota_on_the_wire(start_emulator) -> None:
    # An unscaled 60 s window and no latency: the later calls are inside it however slow the machine.
    emu = start_emulator(
        profile="fast",
        time_scale=1.0,
        config_dict={"quotas": {MODEL: {"rpm": 1}}, "projects": {"team": ["key-a", "key-b"], "b": ["key-c"]}},
    )
    assert generate(emu.url, "one", key="key-a")[0] == 200
    status, reply = generate(emu.url, "two", key="key-b")
    assert status == 429, "the second key of the project finds the quota the first one used"
    assert "key-" not in str(reply)
    assert generate(emu.url, "three", key="key-c")[0] == 200  # another project
    assert generate(emu.url, "four", key="key-d")[0] == 200  # an unlisted key is its own project
    stats = emu.stats()
    assert stats["quota_429s_by_limit"] == {"rpm": 1, "tpm": 0, "rpd": 0}
    assert stats["limits_hit"] == {"quota_requests": 1}
    status, config = call_json(emu.url, "/emulator/config", key=None)
    assert status == 200 and config["projects"] == {"team": 2, "b": 1}, "counts, never the keys"


def test_rpm_and_tpm_broken_at_once_on_the_wire(start_emulator) -> None:
    emu = start_emulator(
        profile="fast",
        time_scale=1.0,
        config_dict={"quota_tier": "free", "quotas": {MODEL: {"rpm": 1, "tpm": 100}}},
    )
    big = "y" * 300  # 75 prompt tokens: two of them break the 100 TPM
    assert generate(emu.url, big)[0] == 200
    status, reply = generate(emu.url, big + "!")
    assert status == 429 and reply["error"]["status"] == "RESOURCE_EXHAUSTED"
    details = by_type(reply["error"]["details"])
    violations = details[QUOTA_FAILURE]["violations"]
    assert [v["quotaMetric"] for v in violations] == [
        "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
    ]
    assert [v["quotaValue"] for v in violations] == ["1", "100"]
    assert details[RETRY_INFO]["retryDelay"].endswith("s"), "per-minute limits only: a time to come back"
    assert emu.stats()["quota_429s_by_limit"] == {"rpm": 1, "tpm": 1, "rpd": 0}


def test_tpm_counts_input_tokens_only(start_emulator) -> None:
    # Long answers to short prompts: the output is far over the TPM, the prompts far under it.
    answers = {"output_tokens_min": 200, "output_tokens_median": 300}
    config = {"quotas": {MODEL: {"tpm": 100}}, "models": {MODEL: answers}}
    emu = start_emulator(profile="fast", time_scale=1.0, config_dict=config)
    for i in range(3):
        status, reply = generate(emu.url, f"short {i}", generationConfig={"maxOutputTokens": 4000})
        assert status == 200 and reply["usageMetadata"]["candidatesTokenCount"] > 100


def test_requests_per_day_429_on_the_wire(start_emulator) -> None:
    emu = start_emulator(profile="fast", time_scale=1.0, config_dict={"quotas": {MODEL: {"rpd": 1}}})
    assert generate(emu.url, "only one today")[0] == 200
    status, reply = generate(emu.url, "one more")
    details = by_type(reply["error"]["details"])
    assert status == 429 and RETRY_INFO not in details and HELP in details
    assert details[QUOTA_FAILURE]["violations"][0]["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel"
    stats = emu.stats()
    assert stats["quota_429s_by_limit"] == {"rpm": 0, "tpm": 0, "rpd": 1}
    assert stats["limits_hit"] == {"quota_requests_per_day": 1}
