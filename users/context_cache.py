"""Caching as a lever: the long moderation policy sent as a stable prefix, or held in an explicit cache.

`--context-cache implicit` (the default) sends the policy (`--policy-file`) as the system instruction
on every call: the API may find the repeated prefix in its implicit cache and bill those tokens at
the cached price, when it does. `explicit` creates one `cachedContents` entry per process holding the
policy, before the process's first moderation call and outside any timed call, and every call names
it (`cachedContent`) instead of sending the policy: every call's policy tokens are cached tokens. The
cache is deleted when the test stops (the real API bills its storage by the hour); its TTL
(`CACHE_TTL`, renewed every `RENEW_S` while the run goes on) bounds what a killed run leaves behind.

Created over plain REST (`POST {host}/v1beta/cachedContents`, the key in `x-goog-api-key`), the way
every transport's SDK does it, so all transports but the legacy SDK use it: google-generativeai needs
a different model object per cache (`GenerativeModel.from_cached_content`) and is refused at start-up.
Cached tokens, their price and the saving are in every Outcome (`cached_tokens`, `cost_usd`,
`cached_saving_usd`) and in the report's "Context caching and cost".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent.lock

from core import outcome
from core.context import run_context
from core.options import OptionError, OptionSpec
from core.outcome import Outcome
from users.call import CallSpec, with_request_bytes
from users.errors import CallError, api_error, redact

CONTEXT_CACHE = OptionSpec(
    "--context-cache",
    "implicit",
    "moderation with --policy-file: implicit (send the policy on every call; the API caches a repeated "
    "prefix when it can) or explicit (one cachedContents entry per process holds the policy and every call "
    "names it; deleted at the end)",
)
MODES = ("implicit", "explicit")
CACHE_TTL = "3600s"  # what a killed run leaves behind expires within the hour
RENEW_S = 1800.0  # a longer run gives its cache the TTL again every half hour
LEGACY_CANNOT_CACHE = (
    "--context-cache explicit does not work with --transport legacy: google-generativeai needs a model "
    "object per cache (GenerativeModel.from_cached_content); use --transport genai or http"
)

logger = logging.getLogger(__name__)


def context_cache_mode(raw: str, transport: str | None = None) -> str:
    """implicit or explicit; OptionError (one line) for another value or the legacy transport."""
    mode = (raw or CONTEXT_CACHE.default).strip().lower()
    if mode not in MODES:
        raise OptionError(f"--context-cache {mode!r} is not known: use {' or '.join(MODES)}")
    if mode == "explicit" and transport == "legacy":
        raise OptionError(LEGACY_CANNOT_CACHE)
    return mode


class CacheNotCreated(Exception):
    """The explicit cache could not be made: `error` is the API's answer, `sent` whether this call
    sent the create request (the calls after a failure wait RETRY_CREATE_S without sending one)."""

    def __init__(self, error: CallError, *, sent: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.sent = sent


RETRY_CREATE_S = 5.0  # after a failed create, calls fail at once for this long, then one tries again


@dataclass
class ExplicitCache:
    """This process's explicit cache: created once (the first user to need it creates it while the
    others wait on the lock), its specs built once per prepared spec, deleted at the test's stop."""

    name: str | None = None
    lock: gevent.lock.Semaphore = field(default_factory=gevent.lock.Semaphore)
    specs: dict[int, tuple[CallSpec, CallSpec]] = field(default_factory=dict)
    originals: dict[int, tuple[CallSpec, CallSpec]] = field(default_factory=dict)  # cached -> as built
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    failed: CallError | None = None
    retry_at: float = 0.0
    renew_at: float = 0.0
    clock: Callable[[], float] = time.monotonic

    def spec_for(self, spec: CallSpec, *, base_url: str, api_key: str) -> CallSpec:
        """`spec` naming the cache (created on first use) instead of carrying its system instruction;
        CacheNotCreated when the cache cannot be made."""
        name = self._ensure(spec, base_url=base_url, api_key=api_key)
        found = self.specs.get(id(spec))
        if found is not None and found[0] is spec and found[1].cached_content == name:
            return found[1]
        cached = with_request_bytes(dataclasses.replace(spec, system_instruction=None, cached_content=name))
        self.specs[id(spec)] = (spec, cached)
        self.originals[id(cached)] = (cached, spec)
        return cached

    def original_of(self, spec: CallSpec) -> CallSpec:
        """The spec as built, before it named the cache (`spec` itself when it names none of ours)."""
        found = self.originals.get(id(spec))
        return found[1] if found is not None and found[0] is spec else spec

    def _ensure(self, spec: CallSpec, *, base_url: str, api_key: str) -> str:
        with self.lock:
            if self.name is not None:
                if self.clock() >= self.renew_at:
                    self._renew()
                return self.name
            if self.failed is not None and self.clock() < self.retry_at:
                raise CacheNotCreated(self.failed, sent=False)
            try:
                self.name = create_cache(base_url, api_key, spec.model, spec.system_instruction or "")
            except CallError as err:
                self.failed, self.retry_at = err, self.clock() + RETRY_CREATE_S
                logger.error("--context-cache explicit: the cache could not be created: %s", err.message)
                raise CacheNotCreated(err, sent=True) from None
            self.failed, self.base_url, self.api_key = None, base_url, api_key
            self.renew_at = self.clock() + RENEW_S
            logger.info("context cache %s created for %s (ttl %s)", self.name, spec.model, CACHE_TTL)
            return self.name

    def _renew(self) -> None:
        """Give the cache its TTL again (a run longer than CACHE_TTL keeps it); a failure is logged
        and tried again later: the calls that then find it expired fail with the API's 403."""
        try:
            _request(
                "PATCH", f"{self.base_url.rstrip('/')}/v1beta/{self.name}", self.api_key, {"ttl": CACHE_TTL}
            )
        except CallError as err:
            logger.warning("context cache %s: its ttl was not renewed (%s)", self.name, err.message)
            self.renew_at = self.clock() + RETRY_CREATE_S
            return
        self.renew_at = self.clock() + RENEW_S

    def delete(self, **_: Any) -> None:
        """Delete the cache, once (a listener of test_stop); a failure is logged, since the TTL ends
        it anyway, never raised."""
        name, self.name = self.name, None
        self.specs.clear()  # the next test's specs may be new ones: no old spec kept alive
        self.originals.clear()
        if name is None:
            return
        try:
            _request("DELETE", f"{self.base_url.rstrip('/')}/v1beta/{name}", self.api_key, None)
        except CallError as err:
            logger.warning("context cache %s not deleted (%s); it expires within %s", name, err, CACHE_TTL)


def explicit_cache(environment: Any) -> ExplicitCache:
    """This process's explicit cache, deleted at each test's stop (a next test makes a new one)."""
    context = run_context(environment)
    cache = context.get(ExplicitCache)
    if cache is None:
        cache = context.ensure(ExplicitCache)
        environment.events.test_stop.add_listener(cache.delete)
    return cache


def without_cache(environment: Any, spec: CallSpec) -> CallSpec:
    """`spec` as it was before naming this process's cache: a cache belongs to one model, so a call
    re-targeted at another (an escalation, a fallback) sends the instruction itself."""
    if spec.cached_content is None:
        return spec
    cache = run_context(environment).get(ExplicitCache)
    return spec if cache is None else cache.original_of(spec)


def cache_failure(spec: CallSpec, transport: str, failed: CacheNotCreated) -> Outcome:
    """The Outcome of a call that could not be sent because its cache could not be made: the API's
    error (the create request was this call's one attempt), or no attempt while waiting to retry."""
    error = failed.error
    return Outcome(
        scenario=spec.scenario,
        model=spec.model,
        transport=transport,
        start_time=time.time(),
        error_kind=error.kind,
        error_message=f"--context-cache explicit: the cache could not be created: {error.message}",
        http_status=error.http_status,
        attempts=1 if failed.sent else 0,
        attempt_kinds=error.kind if failed.sent else "",
        variant=spec.variant,
        item_id=spec.item_id,
        expected=spec.expected,
        request_bytes=spec.request_bytes,
    )


def create_cache(base_url: str, api_key: str, model: str, instruction: str) -> str:
    """The name (cachedContents/...) of a new cache holding `instruction` for `model`; CallError with
    the API's reason otherwise (e.g. a policy below the model's minimum cacheable size)."""
    body = {
        "model": f"models/{model.removeprefix('models/')}",
        "systemInstruction": {"parts": [{"text": instruction}]},
        "ttl": CACHE_TTL,
    }
    reply = _request("POST", f"{base_url.rstrip('/')}/v1beta/cachedContents", api_key, body)
    name = reply.get("name") if isinstance(reply, dict) else None
    if not isinstance(name, str) or not name:
        raise CallError(outcome.INVALID_RESPONSE, "cachedContents.create answered without a cache name")
    return name


def _request(method: str, url: str, api_key: str, body: dict[str, Any] | None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("x-goog-api-key", api_key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    secrets = (api_key,)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        try:
            error = json.loads(err.read().decode("utf-8", "replace"))["error"]
        except (ValueError, KeyError, TypeError):
            error = {}
        if not isinstance(error, dict):  # e.g. a gateway's {"error": "forbidden"}
            error = {"message": str(error)}
        raise api_error(
            err.code, error.get("status"), error.get("message"), error.get("details"), secrets
        ) from None
    except (urllib.error.URLError, OSError) as err:
        raise CallError(outcome.CONNECTION, redact(f"context cache: {err}", secrets)) from None
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise CallError(
            outcome.INVALID_RESPONSE, "cachedContents answered with a body that is not JSON"
        ) from None
