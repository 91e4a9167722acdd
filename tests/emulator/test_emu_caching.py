"""Context caching against the emulator with the real google-genai SDK: caches.create / get / list /
update / delete, generate with cached_content, the real API's refusals, expiry on the emulated
clock, projects; implicit hits on a repeated long system prompt."""

from __future__ import annotations

import functools

import pytest
from emu_http import MODEL, call_json
from google import genai
from google.genai import errors, types

from emulator.caching import CacheStore
from emulator.latency import Clock
from emulator.profiles import ModelProfile, load_profile
from tests.waiting import ManualClock, wait_until

# About 6,000 tokens (4 bytes a token): above every model's minimum (4,096 at most).
POLICY = "Rule: posts that threaten a person or a group are removed. " * 400
SHORT = "Be brief."


def make_client(url: str, key: str = "test-key") -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url))


@pytest.fixture(scope="module")
def client(emulator) -> genai.Client:  # noqa: ANN001 - the shared fixture's EmulatorProcess
    return make_client(emulator.url)


def create(client: genai.Client, system: str = POLICY, ttl: str = "600s") -> types.CachedContent:
    config = types.CreateCachedContentConfig(system_instruction=system, display_name="policy", ttl=ttl)
    return client.caches.create(model=MODEL, config=config)


def cached_call(
    client: genai.Client, name: str, text: str = "Is this post fine?"
) -> types.GenerateContentResponse:
    config = types.GenerateContentConfig(cached_content=name)
    return client.models.generate_content(model=MODEL, contents=text, config=config)


# ---- explicit caches ---------------------------------------------------------------------------


def test_create_get_list_update_delete(client: genai.Client) -> None:
    cache = create(client)
    assert cache.name.startswith("cachedContents/")
    assert cache.model == f"models/{MODEL}"
    assert cache.display_name == "policy"
    assert (
        cache.usage_metadata.total_token_count
        == client.models.count_tokens(model=MODEL, contents=POLICY).total_tokens
    )
    assert (cache.expire_time - cache.create_time).total_seconds() == pytest.approx(600, abs=1)

    assert client.caches.get(name=cache.name).usage_metadata.total_token_count == (
        cache.usage_metadata.total_token_count
    )
    assert cache.name in [c.name for c in client.caches.list()]

    updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="7200s"))
    assert (updated.expire_time - updated.update_time).total_seconds() == pytest.approx(7200, abs=1)
    assert updated.create_time == cache.create_time

    client.caches.delete(name=cache.name)
    with pytest.raises(errors.ClientError) as gone:
        client.caches.get(name=cache.name)
    assert gone.value.code == 403 and gone.value.message == "CachedContent not found (or permission denied)"
    assert cache.name not in [c.name for c in client.caches.list()]


def test_list_pages(client: genai.Client) -> None:
    names = {create(client).name for _ in range(3)}
    pager = client.caches.list(config=types.ListCachedContentsConfig(page_size=2))
    assert len(pager.page) == 2  # the first page holds page_size; the pager fetches the rest
    assert names <= {c.name for c in pager}
    for name in names:
        client.caches.delete(name=name)


@pytest.mark.parametrize("stream", [False, True])
def test_generate_with_cached_content_counts_cached_tokens(client: genai.Client, stream: bool) -> None:
    cache = create(client)
    cached = cache.usage_metadata.total_token_count
    question = "Is this post fine?"
    own = client.models.count_tokens(model=MODEL, contents=question).total_tokens
    config = types.GenerateContentConfig(cached_content=cache.name)
    if stream:
        chunks = list(client.models.generate_content_stream(model=MODEL, contents=question, config=config))
        usages = [chunk.usage_metadata for chunk in chunks]
    else:
        usages = [
            client.models.generate_content(model=MODEL, contents=question, config=config).usage_metadata
        ]
    for usage in usages:
        assert usage.cached_content_token_count == cached
        assert usage.prompt_token_count == cached + own  # promptTokenCount includes the cached part
    client.caches.delete(name=cache.name)


def test_too_small_cache_is_refused(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as refused:
        create(client, system=SHORT)
    assert refused.value.code == 400
    assert refused.value.status == "INVALID_ARGUMENT"
    count = client.models.count_tokens(model=MODEL, contents=SHORT).total_tokens
    assert refused.value.message == (
        f"Cached content is too small. total_token_count={count}, min_total_token_count=4096"
    )


def test_system_instruction_with_cached_content_is_refused(client: genai.Client) -> None:
    cache = create(client)
    config = types.GenerateContentConfig(cached_content=cache.name, system_instruction="Another one.")
    with pytest.raises(errors.ClientError) as refused:
        client.models.generate_content(model=MODEL, contents="hi", config=config)
    assert refused.value.code == 400
    assert refused.value.message.startswith(
        "CachedContent can not be used with GenerateContent request setting system_instruction, tools"
    )
    client.caches.delete(name=cache.name)


def test_unknown_cache_is_refused(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as refused:
        cached_call(client, "cachedContents/doesnotexist")
    assert refused.value.code == 403 and refused.value.status == "PERMISSION_DENIED"


def test_expired_cache_is_refused(client: genai.Client) -> None:
    # 300 emulated seconds at the fixture's time scale of 0.01: three real seconds.
    cache = create(client, ttl="300s")
    assert cached_call(client, cache.name).usage_metadata.cached_content_token_count

    def refused() -> errors.ClientError | None:
        try:
            cached_call(client, cache.name)
        except errors.ClientError as exc:
            return exc
        return None

    error = wait_until(refused, timeout=60, what="the cache to expire on the emulated clock")
    assert error.code == 403 and error.message == "CachedContent not found (or permission denied)"
    assert cache.name not in [c.name for c in client.caches.list()]


def test_bad_ttl_and_update_mask_get_400(emulator) -> None:  # noqa: ANN001
    base = emulator.url
    body = {"model": f"models/{MODEL}", "systemInstruction": {"parts": [{"text": POLICY}]}, "ttl": "soon"}
    status, reply = call_json(base, "/v1beta/cachedContents", body)
    assert status == 400 and "cached_content.ttl" in reply["error"]["message"]
    body["ttl"] = "60s"
    status, made = call_json(base, "/v1beta/cachedContents", body)
    assert status == 200
    status, reply = call_json(
        base, f"/v1beta/{made['name']}?updateMask=displayName", {"displayName": "x"}, method="PATCH"
    )
    assert status == 400 and reply["error"]["status"] == "INVALID_ARGUMENT"
    status, reply = call_json(base, "/v1beta/cachedContents", {**body, "color": "red"})
    assert status == 400 and 'Unknown name "color"' in reply["error"]["message"]


def test_caches_belong_to_a_project(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator({"projects": {"shop": ["key-a", "key-b"]}})
    owner, colleague, stranger = (make_client(emu.url, key) for key in ("key-a", "key-b", "key-c"))
    cache = create(owner)
    assert cached_call(colleague, cache.name).usage_metadata.cached_content_token_count
    with pytest.raises(errors.ClientError) as refused:
        cached_call(stranger, cache.name)
    assert refused.value.code == 403
    assert [c.name for c in stranger.caches.list()] == []


# ---- implicit caching ----------------------------------------------------------------------------


def policy_call(client: genai.Client, text: str, system: str = POLICY) -> types.GenerateContentUsageMetadata:
    config = types.GenerateContentConfig(system_instruction=system)
    return client.models.generate_content(model=MODEL, contents=text, config=config).usage_metadata


def test_repeated_long_system_prompt_hits_the_implicit_cache(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator({"caching": {"implicit_hit_probability": 1}})
    client = make_client(emu.url)
    first = policy_call(client, "First post to judge.")
    assert not first.cached_content_token_count  # the first call of a prefix misses
    second_text = "A second, rather longer post to judge, with other words in it."
    second = policy_call(client, second_text)
    own = client.models.count_tokens(model=MODEL, contents=second_text).total_tokens
    assert second.cached_content_token_count == second.prompt_token_count - own  # the system prompt
    assert second.cached_content_token_count > 4096
    # The very same body again: the whole prompt is a warm prefix now, and its bytes are not reused
    # from the miss (the emulator caches answers per body).
    again = policy_call(client, second_text)
    assert again.cached_content_token_count == again.prompt_token_count
    # A short prompt is below the minimum: never cached.
    assert not policy_call(client, "hi", system=SHORT).cached_content_token_count
    assert not policy_call(client, "hi", system=SHORT).cached_content_token_count


def test_implicit_hits_can_be_turned_off(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator({"caching": {"implicit_hit_probability": 0}})
    client = make_client(emu.url)
    for text in ("one", "two", "three"):
        assert not policy_call(client, text).cached_content_token_count


def store_at(probability: float, window: float = 300.0) -> tuple[CacheStore, ManualClock]:
    profile = load_profile(
        "fast",
        {"caching": {"implicit_hit_probability": probability, "implicit_window_seconds": window}},
    )
    manual = ManualClock(start=0.0)
    return CacheStore(profile, Clock(1.0, real=manual).now, seed=4), manual


@functools.cache
def model_profile() -> ModelProfile:
    return load_profile("fast").models[MODEL]


def prefixes_of(store: CacheStore, text: str) -> tuple[tuple[bytes, int], ...]:
    request = {"systemInstruction": {"parts": [{"text": POLICY}]}, "contents": [{"parts": [{"text": text}]}]}
    return store.prefixes(request, MODEL, model_profile())


def test_implicit_hit_rate_follows_the_probability() -> None:
    store, _ = store_at(0.5)
    hits = sum(bool(store.implicit_hit("k", MODEL, prefixes_of(store, f"post {i}"))) for i in range(1001))
    assert 430 <= hits <= 570  # 1,000 eligible calls (the first misses), p = 0.5: within ~4.4 sigma


def test_implicit_prefix_goes_cold_after_the_window() -> None:
    store, manual = store_at(1.0, window=300.0)
    assert store.implicit_hit("k", MODEL, prefixes_of(store, "a")) == 0
    manual.advance(299)
    assert store.implicit_hit("k", MODEL, prefixes_of(store, "b")) > 0
    manual.advance(301)  # 301 s after its last use
    assert store.implicit_hit("k", MODEL, prefixes_of(store, "c")) == 0
    # Another project never shares a warm prefix.
    assert store.implicit_hit("other-key", MODEL, prefixes_of(store, "c")) == 0
