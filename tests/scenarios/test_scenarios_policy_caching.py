"""A moderation run with the bundled long policy (--policy-file) against the bundled emulator: the
repeated system prompt meets implicit caching, and the report shows the cached tokens and a lower
cost per call than the same calls at the full input price."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from core.options import OptionError
from reports import caching, llm_analysis
from reports.loading import load_results
from tests.e2e.locust_child import run_locust
from users.moderation import INSTRUCTION, POLICY_FILE, system_instruction
from users.pricing import PriceTable
from users.scenario_options import ScenarioSettings

POLICY = "fixtures/data/moderation_policy.md"


def test_long_policy_is_cached_and_cheaper(repo_root: Path, clean_env: dict, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tmp_path / "emulator.json"
    config.write_text('{"caching": {"implicit_hit_probability": 1}}')
    proc = run_locust(
        repo_root, clean_env,
        "-u", "3", "-r", "3", "-t", "6s", "--results-dir", str(out), "--mix", "moderation=1",
        "--policy-file", POLICY, "--emulator-profile", "fast", "--emulator-config", str(config),
        timeout=120,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]

    requests = llm_analysis.add_derived(load_results(out).requests)
    table = caching.caching_figures(requests).set_index("scenario")
    moderation = table.loc["moderation"]
    # Every call after the first of the policy prefix hits (probability 1): most of the prompt.
    assert moderation["cached_calls"] >= moderation["calls"] - 3 > 0  # a first call per user may miss
    assert 0.5 < moderation["cached_share"] < 1
    assert moderation["cost_per_call"] < moderation["full_cost_per_call"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Context caching and cost" in html and "Cost per call without caching (USD)" in html


def test_a_bad_policy_file_is_one_line(repo_root: Path, clean_env: dict, tmp_path: Path) -> None:
    missing = tmp_path / "nope.md"
    proc = run_locust(
        repo_root, clean_env, "-u", "1", "-t", "3s", "--results-dir", str(tmp_path / "r"),
        "--mix", "moderation=1", "--policy-file", str(missing), timeout=60,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 2, log[-2000:]
    assert f"--policy-file {missing}: file not found: give a text file with your policy" in log
    assert "Traceback" not in log


def test_cached_saving_is_what_full_price_input_would_add() -> None:
    prices = PriceTable.load(day=date(2026, 11, 29))  # 3.8 Flash: 0.75 input, 0.075 cached, per 1M
    saving = prices.cached_saving("gemini-3.8-flash", 10_000, 8_000)
    assert saving == pytest.approx(8_000 * (0.75 - 0.075) / 1_000_000)
    with_cache = prices.cost("gemini-3.8-flash", 10_000, 100, 0, 8_000).total
    assert with_cache + saving == pytest.approx(prices.cost("gemini-3.8-flash", 10_000, 100, 0).total)
    assert prices.cached_saving("gemini-3.8-flash", 10_000, None) == 0.0


def test_policy_file_becomes_the_system_instruction(tmp_path: Path) -> None:
    def settings(path: Path) -> ScenarioSettings:
        return ScenarioSettings(extra=((POLICY_FILE.flag, str(path)),))

    policy = tmp_path / "policy.md"
    policy.write_text("# Our policy\nNo spam.\n")
    instruction = system_instruction(settings(policy))
    assert instruction.startswith("# Our policy\nNo spam.") and instruction.endswith(INSTRUCTION)
    assert system_instruction(ScenarioSettings()) == INSTRUCTION
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    with pytest.raises(OptionError, match="the file is empty"):
        system_instruction(settings(empty))
    with pytest.raises(OptionError, match="is a folder"):
        system_instruction(settings(tmp_path))


def test_explicit_cache_holds_the_policy_for_every_call(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    """--context-cache explicit: one cachedContents entry per process, named by every call, so every
    answered call's policy tokens are cached (no implicit chance), and the cache is gone at the end."""
    out = tmp_path / "run"
    config = tmp_path / "emulator.json"
    config.write_text('{"caching": {"implicit_hit_probability": 0}}')  # only the explicit cache hits
    proc = run_locust(
        repo_root, clean_env,
        "-u", "3", "-r", "3", "-t", "6s", "--results-dir", str(out), "--mix", "moderation=1",
        "--policy-file", POLICY, "--context-cache", "explicit", "--transport", "http",
        "--emulator-profile", "fast", "--emulator-config", str(config), "--loglevel", "INFO",
        timeout=120,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert log.count("context cache cachedContents/") == 1, log[-3000:]  # one per process
    requests = load_results(out).requests
    answered = requests[requests["error_kind"].fillna("") == ""]
    assert len(answered) > 0
    policy_tokens = answered["cached_tokens"]
    # Every call: the policy's tokens cached, and the post itself not.
    assert (policy_tokens > 4000).all() and (answered["prompt_tokens"] > policy_tokens).all()
    assert (answered["cached_saving_usd"] > 0).all()
    stats = json.loads((out / "emulator_stats.json").read_text())
    assert stats.get("caches_live", 0) == 0, stats


def test_an_explicit_cache_the_api_refuses_fails_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache the API will not make (here: the emulator's 400 below the model's minimum) is each
    call's failure with the API's reason, never a silent run without the cache; the create request is
    sent again only after RETRY_CREATE_S."""
    from users.call import CallSpec
    from users.context_cache import RETRY_CREATE_S, CacheNotCreated, ExplicitCache, cache_failure
    from users.errors import CallError

    sent: list[str] = []

    def refuse(base_url: str, api_key: str, model: str, instruction: str) -> str:
        sent.append(model)
        raise CallError("client_error", "400 INVALID_ARGUMENT Cached content is too small.", http_status=400)

    monkeypatch.setattr("users.context_cache.create_cache", refuse)
    now = [100.0]
    cache = ExplicitCache(clock=lambda: now[0])
    spec = CallSpec(
        scenario="moderation", model="gemini-3.8-flash", parts=("hi",), system_instruction="short"
    )
    with pytest.raises(CacheNotCreated) as first:
        cache.spec_for(spec, base_url="http://127.0.0.1:1", api_key="k")
    outcome = cache_failure(spec, "http", first.value)
    assert outcome.failed and outcome.attempts == 1 and outcome.http_status == 400
    assert "the cache could not be created: 400 INVALID_ARGUMENT" in outcome.error_message
    with pytest.raises(CacheNotCreated) as waiting:
        cache.spec_for(spec, base_url="http://127.0.0.1:1", api_key="k")
    assert not waiting.value.sent and cache_failure(spec, "http", waiting.value).attempts == 0
    assert len(sent) == 1
    now[0] += RETRY_CREATE_S
    with pytest.raises(CacheNotCreated):
        cache.spec_for(spec, base_url="http://127.0.0.1:1", api_key="k")
    assert len(sent) == 2


def test_explicit_cache_is_refused_for_the_legacy_sdk() -> None:
    from users.context_cache import LEGACY_CANNOT_CACHE, context_cache_mode

    assert context_cache_mode("", "genai") == "implicit"
    assert context_cache_mode("EXPLICIT", "http") == "explicit"
    with pytest.raises(OptionError, match="is not known: use implicit or explicit"):
        context_cache_mode("sometimes")
    with pytest.raises(OptionError) as refused:
        context_cache_mode("explicit", "legacy")
    assert str(refused.value) == LEGACY_CANNOT_CACHE


def test_a_call_for_another_model_sends_the_policy_not_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache belongs to one model: an escalation or a fallback re-targets the call as it was built
    (the policy as its system instruction), never naming the first model's cache."""
    from types import SimpleNamespace

    from locust.env import Environment

    from users.call import CallSpec
    from users.context_cache import explicit_cache
    from users.retarget import spec_for_model
    from users.settings import GeminiSettings
    from users.state import use_settings

    monkeypatch.setattr("users.context_cache.create_cache", lambda *_: "cachedContents/abc")
    environment = Environment()
    options = SimpleNamespace(
        model="gemini-3.5-flash-lite", transport="http", max_output_tokens=0, temperature=0.0,
        timeout=5, retries=0, thinking_budget=-1, thinking_level="", api_key="",
    )  # fmt: skip
    settings = GeminiSettings.from_options(options, emulator=True)
    use_settings(environment, settings, PriceTable.load())
    built = CallSpec(
        scenario="moderation", parts=("post",), system_instruction="the policy", **settings.call_fields()
    )
    cached = explicit_cache(environment).spec_for(built, base_url="http://127.0.0.1:1", api_key="k")
    assert cached.cached_content == "cachedContents/abc" and cached.system_instruction is None
    stronger = spec_for_model(environment, cached, "gemini-3.8-flash")
    assert stronger.model == "gemini-3.8-flash"
    assert stronger.cached_content is None and stronger.system_instruction == "the policy"


def test_a_long_run_renews_its_cache_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache outlives its one-hour TTL only if renewed: every RENEW_S of the run's clock, the
    next call gives it the TTL again (PATCH ttl), once."""
    from users.call import CallSpec
    from users.context_cache import CACHE_TTL, RENEW_S, ExplicitCache

    sent: list[tuple[str, str, object]] = []

    def request(method: str, url: str, api_key: str, body: object) -> object:
        sent.append((method, url, body))
        return {"name": "cachedContents/abc"}

    monkeypatch.setattr("users.context_cache._request", request)
    now = [0.0]
    cache = ExplicitCache(clock=lambda: now[0])
    spec = CallSpec(
        scenario="moderation", model="gemini-3.8-flash", parts=("hi",), system_instruction="policy"
    )
    cache.spec_for(spec, base_url="http://127.0.0.1:1", api_key="k")
    now[0] = RENEW_S - 1
    cache.spec_for(spec, base_url="http://127.0.0.1:1", api_key="k")
    assert [method for method, _, _ in sent] == ["POST"]
    now[0] = RENEW_S
    cache.spec_for(spec, base_url="http://127.0.0.1:1", api_key="k")
    cache.spec_for(spec, base_url="http://127.0.0.1:1", api_key="k")
    assert sent[1:] == [("PATCH", "http://127.0.0.1:1/v1beta/cachedContents/abc", {"ttl": CACHE_TTL})]
