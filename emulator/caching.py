"""Context caching: explicit `cachedContents` with a TTL, and implicit hits on repeated prefixes.

Explicit (what google-genai's `client.caches.*` calls, emulator.cache_routes serves): a cache holds
contents, a systemInstruction, tools and a toolConfig for one model, and is refused below the
model's minimum (core/models.json `caching.min_tokens`) with the real 400 "Cached content is too
small. total_token_count=N, min_total_token_count=M". It lives until its expireTime (default TTL one
hour, as on the real API) on the emulator's emulated clock: at a time scale of 0.01 a "300s" cache
is gone after 3 real seconds. A generateContent request naming it with `cachedContent` is answered
as if the cache's contents came first: promptTokenCount includes them and cachedContentTokenCount
equals them. Such a request may not set systemInstruction, tools or toolConfig itself (400, the
real text). A cache that expired, was deleted, never existed or belongs to another project answers
403 PERMISSION_DENIED "CachedContent not found (or permission denied)", as the real API does.
Cache storage (billed per token-hour on the real API) is not modelled.

Implicit (Gemini 2.5 and newer): a request's prefixes, in token order, are the system instruction
and tools, then each leading content in turn; those of at least the model's minimum are remembered
per (project, model) for `implicit_window_seconds` after their last use. A later request whose
longest remembered prefix is still warm gets cachedContentTokenCount = that prefix's tokens, with
probability `implicit_hit_probability` (the real service does not guarantee hits), drawn from a
seeded RNG. The first request of a prefix always misses. Matching is per whole content, not per
token: a close approximation for the long shared system prompts apps send.

Caches live in the process that made them: with `--workers N` each worker has its own (as with
rate limits). Use one worker to load-test explicit caching.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.catalogue import catalogue
from emulator import protocol, tokens
from emulator.config_values import CACHING_PARAMS
from emulator.errors import ApiError, invalid_argument
from emulator.profiles import ModelProfile, Profile

DEFAULT_TTL_S = 3600.0  # the real API's default when neither ttl nor expireTime is given
# A model the catalogue does not know: the minimum every current (Gemini 3) model has.
FALLBACK_MIN_TOKENS = 4096
NOT_FOUND = "CachedContent not found (or permission denied)"
# The real API's texts (BerriAI/litellm#17696 and openclaw/openclaw#89398 quote them).
TOO_SMALL = "Cached content is too small. total_token_count={count}, min_total_token_count={minimum}"
NOT_WITH_CACHE = (
    "CachedContent can not be used with GenerateContent request setting system_instruction, tools or "
    "tool_config. Proposed fix: move those values to CachedContent from GenerateContent request."
)

CACHED_CONTENT = {
    "name": "str",
    "model": "str",
    "displayName": "str",
    "contents": ("list", protocol.CONTENT),
    "systemInstruction": protocol.CONTENT,
    "tools": protocol.OPAQUE,
    "toolConfig": protocol.OPAQUE,
    "ttl": "str",
    "expireTime": "str",
    "createTime": "str",
    "updateTime": "str",
    "usageMetadata": protocol.OPAQUE,
}
UPDATABLE = ("ttl", "expireTime")
_DURATION = re.compile(r"(\d+(?:\.\d{1,9})?)s")
_ID_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"


def min_tokens(model: str) -> int:
    entry = catalogue().get(model)
    return entry.caching.min_tokens if entry is not None and entry.caching else FALLBACK_MIN_TOKENS


def implicit_enabled(model: str) -> bool:
    entry = catalogue().get(model)
    return entry.caching.implicit if entry is not None and entry.caching else True


@dataclass(slots=True)
class CacheEntry:
    name: str
    model: str
    display_name: str
    scope: tuple[str, str]  # (kind, name) of the project that owns it: other projects get 403
    prompt: dict[str, Any]  # contents, systemInstruction, tools, toolConfig as given
    tokens: int
    created: float  # emulated seconds
    updated: float
    expires: float


Scope = tuple[str, str]
Prefixes = tuple[tuple[bytes, int], ...]  # (digest of the prompt up to here, tokens up to here)


class CacheStore:
    """Every cachedContent of one emulator process, and its implicit prefix cache."""

    def __init__(
        self,
        profile: Profile,
        now: Callable[[], float],
        seed: int | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.now = now  # emulated seconds (emulator.latency.Clock.now)
        self._epoch = wall() - now()  # the wall time emulated second 0 stands for
        settings = {**CACHING_PARAMS, **profile.caching}
        self.hit_probability = settings["implicit_hit_probability"]
        self.window_s = settings["implicit_window_seconds"]
        # Its own stream of draws, so caching never shifts the latency draws of a seeded run.
        self._rng = random.Random(None if seed is None else f"implicit-cache:{seed}")
        self._projects = {key: ("project", name) for name, keys in profile.projects.items() for key in keys}
        self._entries: dict[str, CacheEntry] = {}
        self._warm: dict[tuple[Scope, str, bytes], float] = {}  # insertion order = last use order

    def scope(self, key: str) -> Scope:
        return self._projects.get(key, ("key", key))

    # ---- explicit caches ---------------------------------------------------------------------------

    def create(self, raw: bytes, key: str, resolve: Callable[[str], ModelProfile]) -> dict[str, Any]:
        """Create from a CachedContent body; `resolve` gives the model's profile or raises its 404."""
        body = protocol.normalise(protocol.parse_json_body(raw), CACHED_CONTENT, "")
        model_name = body.get("model") or ""
        if not model_name:
            raise invalid_argument(
                "* CreateCachedContentRequest.cached_content.model: model is required\n", "model"
            )
        model = model_name.removeprefix("models/")
        profile = resolve(model)
        prompt = {k: body[k] for k in ("contents", "systemInstruction", "tools", "toolConfig") if body.get(k)}
        if prompt.get("contents"):
            protocol.check_contents(prompt)  # inline data decoded and checked as in a request
        count, _ = tokens.prompt_tokens(prompt, profile.image_rule)
        minimum = min_tokens(model)
        if count < minimum:
            raise invalid_argument(TOO_SMALL.format(count=count, minimum=minimum))
        now = self.now()
        expires = self._expiry(body, now) if ("ttl" in body or "expireTime" in body) else now + DEFAULT_TTL_S
        name = "cachedContents/" + "".join(secrets.choice(_ID_LETTERS) for _ in range(12))
        entry = CacheEntry(
            name, model, body.get("displayName") or "", self.scope(key), prompt, count, now, now, expires
        )
        self._entries[name] = entry
        return self.resource(entry)

    def get(self, name: str, key: str) -> CacheEntry:
        """The live cache `name` as `key`'s project sees it; 403 like the real API otherwise."""
        entry = self._entries.get(name)
        if entry is not None and entry.expires <= self.now():
            del self._entries[name]
            entry = None
        if entry is None or entry.scope != self.scope(key):
            raise ApiError(403, NOT_FOUND)
        return entry

    def update(self, name: str, key: str, raw: bytes, update_mask: str | None) -> dict[str, Any]:
        entry = self.get(name, key)
        body = protocol.normalise(protocol.parse_json_body(raw), CACHED_CONTENT, "")
        fields = [protocol.camel(f.strip()) for f in update_mask.split(",")] if update_mask else None
        if fields is None:
            fields = [f for f in UPDATABLE if f in body]
        for field in fields:
            if field not in UPDATABLE:
                raise invalid_argument(
                    f"Only ttl and expire_time can be updated, not {field}.", "update_mask"
                )
        if not fields:
            raise invalid_argument("Nothing to update: give ttl or expire_time.", "update_mask")
        now = self.now()
        entry.expires = self._expiry({f: body.get(f) for f in fields}, now)
        entry.updated = now
        return self.resource(entry)

    def delete(self, name: str, key: str) -> None:
        self.get(name, key)
        del self._entries[name]

    def live_count(self) -> int:
        """Caches not yet deleted nor expired, every project's: what a run left behind."""
        now = self.now()
        return sum(1 for entry in self._entries.values() if entry.expires > now)

    def page(self, key: str, size: int, token: str) -> dict[str, Any]:
        """One page of `key`'s project's live caches, oldest first."""
        now, scope = self.now(), self.scope(key)
        for name in [n for n, e in self._entries.items() if e.expires <= now]:
            del self._entries[name]
        mine = [e for e in self._entries.values() if e.scope == scope]
        try:
            start = int(token or 0)
        except ValueError:
            raise invalid_argument("Invalid page_token.", "page_token") from None
        size = max(1, min(size or 100, 1000))
        out: dict[str, Any] = {"cachedContents": [self.resource(e) for e in mine[start : start + size]]}
        if start + size < len(mine):
            out["nextPageToken"] = str(start + size)
        return out

    def resource(self, entry: CacheEntry) -> dict[str, Any]:
        """The CachedContent as the real API returns it: contents are input only, never sent back."""
        out: dict[str, Any] = {"name": entry.name, "model": f"models/{entry.model}"}
        if entry.display_name:
            out["displayName"] = entry.display_name
        out.update(
            createTime=self._timestamp(entry.created),
            updateTime=self._timestamp(entry.updated),
            expireTime=self._timestamp(entry.expires),
            usageMetadata={"totalTokenCount": entry.tokens},
        )
        return out

    def merge_into(self, request: dict[str, Any], model: str) -> CacheEntry:
        """Put the named cache's prompt in front of a generate request's (the first time a body is
        prepared); raises the real API's 400 or 403. Who may use it is checked per call (`get`)."""
        if any(request.get(k) for k in ("systemInstruction", "tools", "toolConfig")):
            raise invalid_argument(NOT_WITH_CACHE)
        name = request["cachedContent"]
        entry = self._entries.get(name)
        if entry is None or entry.expires <= self.now():
            raise ApiError(403, NOT_FOUND)
        if entry.model != model:
            raise invalid_argument(
                f"Model used by GenerateContent request (models/{model}) and CachedContent "
                f"(models/{entry.model}) has to be the same."
            )
        request.update({k: v for k, v in entry.prompt.items() if k != "contents"})
        request["contents"] = [*entry.prompt.get("contents", []), *request["contents"]]
        return entry

    def _expiry(self, body: dict[str, Any], now: float) -> float:
        if body.get("ttl") and body.get("expireTime"):
            raise invalid_argument("Only one of ttl and expire_time may be set.")
        if body.get("ttl"):
            match = _DURATION.fullmatch(body["ttl"])
            if match is None:
                raise invalid_argument(
                    f"Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), "
                    f'"{body["ttl"]}"',
                    "ttl",
                )
            return now + float(match.group(1))
        text = body.get("expireTime") or ""
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError(text)
        except ValueError:
            raise invalid_argument(
                f"Invalid value at 'cached_content.expire_time' (type.googleapis.com/google.protobuf.Timestamp), "
                f'"{text}"',
                "expire_time",
            ) from None
        return moment.timestamp() - self._epoch

    def _timestamp(self, emulated: float) -> str:
        moment = datetime.fromtimestamp(self._epoch + emulated, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    # ---- implicit caching --------------------------------------------------------------------------

    def prefixes(self, request: dict[str, Any], model: str, profile: ModelProfile) -> Prefixes:
        """The request's cacheable prefixes (decided once per body): empty below the model's minimum
        or on a model without implicit caching, so most requests cost nothing per call."""
        if not implicit_enabled(model) or self.hit_probability <= 0:
            return ()
        minimum = min_tokens(model)
        head = {k: request[k] for k in ("systemInstruction", "tools", "toolConfig") if request.get(k)}
        pieces = [head] if head else []
        pieces.extend({"contents": [content]} for content in request.get("contents") or [])
        digest, total, out = hashlib.blake2b(digest_size=16), 0, []
        for piece in pieces:
            # Inline bytes are in their base64 "data" too; the decoded copy is left out of the digest.
            digest.update(json.dumps(piece, sort_keys=True, default=lambda _: "").encode())
            count, _ = tokens.prompt_tokens({"contents": [], **piece}, profile.image_rule)
            total += count
            if total >= minimum:
                out.append((digest.copy().digest(), total))
        return tuple(out)

    def implicit_hit(self, key: str, model: str, prefixes: Prefixes) -> int:
        """Cached tokens of this call (0 on a miss); every prefix is warm again from now on."""
        now, scope = self.now(), self.scope(key)
        cached = 0
        for digest, count in prefixes:
            slot = (scope, model, digest)
            last = self._warm.pop(slot, None)
            if last is not None and now - last <= self.window_s:
                cached = count
            self._warm[slot] = now
        # Forget prefixes gone cold, oldest first (the dict is in order of last use).
        cold = []
        for slot, last in self._warm.items():
            if now - last <= self.window_s or len(cold) >= 64:
                break
            cold.append(slot)
        for slot in cold:
            del self._warm[slot]
        if cached and self._rng.random() >= self.hit_probability:
            return 0
        return cached
